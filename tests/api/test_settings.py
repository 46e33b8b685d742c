"""API settings: production refuses development shortcuts and needs its identity and secret."""

from __future__ import annotations

import pytest

from engine.config import load_config
from engine.errors import ConfigError

PRODUCTION = {"COVES_ENV": "production", "INSTANCE_DID": "did:web:coves.example",
              "CURSOR_SECRET": "a-long-enough-secret"}


def test_a_complete_production_configuration_loads() -> None:
    config = load_config(environ=PRODUCTION)
    assert config.service_did == "did:web:coves.example" and not config.auth_skip_verify


@pytest.mark.parametrize(("change", "named"), [
    ({"AUTH_SKIP_VERIFY": "true"}, "AUTH_SKIP_VERIFY"),
    ({"SKIP_DID_WEB_VERIFICATION": "true"}, "SKIP_DID_WEB_VERIFICATION"),
    ({"INSTANCE_DID": ""}, "INSTANCE_DID"),
    ({"CURSOR_SECRET": ""}, "CURSOR_SECRET"),
])
def test_production_refuses_unsafe_or_missing_api_settings(change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(environ={**PRODUCTION, **change})


@pytest.mark.parametrize(("variable", "value"), [
    ("TRUSTED_PROXIES", "10.0.0.0/33"), ("INSTANCE_DID", "web:coves"), ("CURSOR_SECRET", "short"),
    ("INSTANCE_PUBLIC_KEY_MULTIBASE", "abc"), ("API_PORT", "70000"), ("RATE_LIMIT_PER_MINUTE", "0")])
def test_malformed_api_settings_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config(environ={variable: value})


def test_service_did_defaults_to_the_instance_domain() -> None:
    assert load_config(environ={"INSTANCE_DOMAIN": "Coves.Example"}).service_did == "did:web:coves.example"
