"""API settings: production refuses development shortcuts and needs its identity and secret."""

from __future__ import annotations

import pytest

from api.server import check_api_config
from engine.config import load_config
from engine.errors import ConfigError

PRODUCTION = {"COVES_ENV": "production", "INSTANCE_DID": "did:web:coves.example",
              "CURSOR_SECRET": "a-long-enough-secret",
              "COVES_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}


def test_a_complete_production_configuration_serves_the_api() -> None:
    config = load_config(environ=PRODUCTION)
    check_api_config(config)
    assert config.service_did == "did:web:coves.example" and not config.auth_skip_verify


@pytest.mark.parametrize("variable", ["AUTH_SKIP_VERIFY", "SKIP_DID_WEB_VERIFICATION"])
def test_production_refuses_development_shortcuts(variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config(environ={**PRODUCTION, variable: "true"})


@pytest.mark.parametrize("variable", ["INSTANCE_DID", "CURSOR_SECRET", "COVES_ENCRYPTION_KEY"])
def test_production_api_needs_its_did_and_cursor_secret(variable: str) -> None:
    config = load_config(environ={**PRODUCTION, variable: ""})  # an engine alone may run
    with pytest.raises(ConfigError, match=variable):
        check_api_config(config)
    check_api_config(load_config(environ={variable: ""}))  # development: defaults serve


@pytest.mark.parametrize(("variable", "value"), [
    ("TRUSTED_PROXIES", "10.0.0.0/33"), ("INSTANCE_DID", "web:coves"), ("CURSOR_SECRET", "short"),
    ("INSTANCE_PUBLIC_KEY_MULTIBASE", "abc"), ("API_PORT", "70000"), ("RATE_LIMIT_PER_MINUTE", "0"),
    ("COVES_ENCRYPTION_KEY", "not base64!"), ("COVES_ENCRYPTION_KEY", "c2hvcnQ="),
    ("COMMUNITY_CREATORS", "did:plc:ok,alice"), ("AGGREGATOR_POSTS_PER_HOUR", "0")])
def test_malformed_api_settings_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config(environ={variable: value})


def test_service_did_defaults_to_the_instance_domain() -> None:
    assert load_config(environ={"INSTANCE_DOMAIN": "Coves.Example"}).service_did == "did:web:coves.example"
