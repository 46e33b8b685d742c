"""Settings: defaults, environment, flags; errors name the variable and the accepted form."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from engine.config import (DEFAULT_BATCH_MAX_ROWS, PUBLIC_JETSTREAM_URL, SETTINGS, add_setting_flags,
                           load_config)
from engine.errors import ConfigError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    config = load_config(environ={})
    assert config.jetstream_url == PUBLIC_JETSTREAM_URL
    assert config.jetstream_collections == ("social.coves.*",)
    assert config.database_url is None and config.batch_max_rows == DEFAULT_BATCH_MAX_ROWS == 20_000
    assert config.data_dir == Path("coves-data")


def test_flag_beats_environment_beats_default() -> None:
    env = {"BATCH_MAX_ROWS": "200", "BATCH_MAX_LATENCY_MS": "50"}
    config = load_config(parse(["--batch-max-rows", "300"]), environ=env)
    assert (config.batch_max_rows, config.batch_max_latency_ms) == (300, 50)


def test_every_setting_has_a_flag_named_after_its_variable() -> None:
    for setting in SETTINGS:
        assert setting.flag == "--" + setting.env.lower().replace("_", "-")
        assert setting.form and setting.help


def test_collections_are_parsed_and_checked() -> None:
    config = load_config(environ={"JETSTREAM_COLLECTIONS": "social.coves.*, app.bsky.feed.like"})
    assert config.jetstream_collections == ("social.coves.*", "app.bsky.feed.like")
    with pytest.raises(ConfigError, match=r"JETSTREAM_COLLECTIONS .*'social\.\*\.x'"):
        load_config(environ={"JETSTREAM_COLLECTIONS": "social.*.x"})


@pytest.mark.parametrize(("env", "expected"), [
    ({"DATABASE_URL": "mysql://x/y"}, r"DATABASE_URL .*= \*\*\*: not a postgres/postgresql URL"),
    ({"JETSTREAM_URL": "https://example.com"}, r"JETSTREAM_URL .*expected ws://"),
    ({"BATCH_MAX_ROWS": "0"}, r"BATCH_MAX_ROWS .*0 is outside 1..100000"),
    ({"METRICS_PORT": "http"}, r"METRICS_PORT .*expected a TCP port"),
    ({"JETSTREAM_ZSTD_DICTIONARY": "/nonexistent.zdict"}, r"JETSTREAM_ZSTD_DICTIONARY .*no file"),
    ({"COVES_ENV": "staging"}, r"COVES_ENV .*development\|production"),
])
def test_invalid_values_name_the_variable_and_form(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(environ=env)


def test_all_problems_reported_at_once_and_secrets_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"BATCH_MAX_ROWS": "x", "METRICS_PORT": "-1",
                             "DATABASE_URL": "ftp://user:hunter2@db/x"})
    message = str(caught.value)
    assert "BATCH_MAX_ROWS" in message and "METRICS_PORT" in message
    assert "hunter2" not in message


def test_describe_masks_the_database_password() -> None:
    config = load_config(environ={"DATABASE_URL": "postgresql://coves:hunter2@db.internal:5432/coves"})
    shown = dict(config.describe())["DATABASE_URL"]
    assert "hunter2" not in shown and "db.internal" in shown


def test_jetstream_transport_defaults_to_the_sources_default_and_refuses_others() -> None:
    from engine.sources.jetstream import DEFAULT_TRANSPORT
    from engine.sources.websocket import TRANSPORTS

    assert load_config(environ={}).jetstream_transport == DEFAULT_TRANSPORT
    for transport in TRANSPORTS:
        assert load_config(environ={"JETSTREAM_TRANSPORT": transport}).jetstream_transport == transport
    with pytest.raises(ConfigError, match="JETSTREAM_TRANSPORT"):
        load_config(environ={"JETSTREAM_TRANSPORT": "asyncio"})
