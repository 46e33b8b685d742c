"""Identity settings: defaults, validation, and production's refusal of the test-only allowances."""

from __future__ import annotations

import pytest

from engine.config import load_config
from engine.errors import ConfigError
from engine.identity import open_identity


def test_identity_defaults() -> None:
    config = load_config(environ={})
    assert config.plc_url == "https://plc.directory"
    assert (config.identity_fetch_timeout_s, config.identity_fetch_max_bytes) == (5.0, 65536)
    assert (config.did_cache_ttl_s, config.did_cache_failure_ttl_s) == (3600.0, 300.0)
    assert not (config.skip_did_web_verification or config.identity_allow_private_addresses
                or config.handle_verify_via_pds)


@pytest.mark.parametrize("variable", ["SKIP_DID_WEB_VERIFICATION",
                                      "IDENTITY_ALLOW_PRIVATE_ADDRESSES", "HANDLE_VERIFY_VIA_PDS"])
def test_production_refuses_each_test_only_allowance(variable: str) -> None:
    assert getattr(load_config(environ={variable: "true"}), variable.lower())
    with pytest.raises(ConfigError, match=f"{variable} must be off in production"):
        load_config(environ={"COVES_ENV": "production", variable: "true"})
    load_config(environ={"COVES_ENV": "production", variable: "false"})


@pytest.mark.parametrize(("env", "expected"), [
    ({"PLC_URL": "ftp://plc"}, r"PLC_URL .*not a http/https URL"),
    ({"PLC_URL": "http://localhost:2582"}, r"PLC_URL .*https only.*IDENTITY_ALLOW_PRIVATE_ADDRESSES"),
    ({"IDENTITY_FETCH_TIMEOUT_S": "0"}, r"IDENTITY_FETCH_TIMEOUT_S .*outside 0.1..60"),
    ({"IDENTITY_FETCH_MAX_BYTES": "10"}, r"IDENTITY_FETCH_MAX_BYTES .*outside 1024..1048576"),
    ({"DID_CACHE_TTL_S": "soon"}, r"DID_CACHE_TTL_S .*expected seconds"),
    ({"SKIP_DID_WEB_VERIFICATION": "maybe"}, r"SKIP_DID_WEB_VERIFICATION .*not a boolean"),
])
def test_bad_identity_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(environ=env)


def test_plain_http_plc_is_accepted_with_the_test_allowance() -> None:
    config = load_config(environ={"PLC_URL": "http://localhost:2582",
                                  "IDENTITY_ALLOW_PRIVATE_ADDRESSES": "true"})
    assert config.plc_url == "http://localhost:2582"


async def test_open_identity_builds_its_parts_from_the_config() -> None:
    config = load_config(environ={"PLC_URL": "https://plc.example", "SKIP_DID_WEB_VERIFICATION": "1",
                                  "IDENTITY_FETCH_TIMEOUT_S": "2", "DID_CACHE_TTL_S": "60"})
    async with open_identity(config, dns_resolver=None) as identity:
        assert identity.resolver.plc_url == "https://plc.example"
        assert identity.fetcher.timeout_s == 2.0 and identity.hosting.skip
        assert identity.resolver.document_url("did:plc:" + "a" * 24) == \
            "https://plc.example/did:plc:" + "a" * 24
    # Default: the system's DNS resolver (or none, logged, on a machine without one).
    async with open_identity(load_config(environ={})) as identity:
        assert identity.handles is not None
