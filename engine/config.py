"""Configuration: every setting is an environment variable with a matching CLI flag.

A flag wins over the variable, the variable over the default. Values are parsed and checked once,
at start; a bad one raises ConfigError naming the variable and the accepted form.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["Config", "DEFAULT_BATCH_MAX_ROWS", "SETTINGS", "Setting", "add_setting_flags",
           "describe_values", "load_config", "production_problems", "read_config"]

PUBLIC_JETSTREAM_URL: Final = "wss://jetstream2.us-east.bsky.network/subscribe"
# An NSID (`social.coves.community.post`) or an NSID prefix with a wildcard (`social.coves.*`),
# the two forms Jetstream's wantedCollections accepts.
_COLLECTION_RE: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)*(\.\*|\.[a-zA-Z][a-zA-Z0-9]*)$")
_MAX_WANTED_COLLECTIONS: Final = 100  # Jetstream refuses more
# Events per batch at most. A batch reaches it only while the writer is behind (group commit,
# engine/batcher.py): then bigger transactions share the per-batch work — one counter update per
# busy post, the commit. Catching up 1.5M forum events here: 20,000 took 19-25 % more events a
# second than 5,000, Postgres 16-22 % less CPU each; the engine's peak RSS 373 against 160 MiB.
DEFAULT_BATCH_MAX_ROWS: Final = 20_000


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One configuration knob: environment variable, flag, parser and help."""

    env: str
    field: str
    parse: Callable[[str], Any]
    default: str | None
    form: str  # the accepted form, shown in errors and --help
    help: str
    secret: bool = False
    # In production: "off" = must be unset or false (development shortcuts), "required" = must
    # be set (secrets and identities the service cannot run safely without), "api" = must be set
    # where the API is served (checked by api/server.py's check_api_config, so an engine-only
    # process does not need it).
    production: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")


# ---- parsers: each raises ValueError with a short description of what was wrong ----


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("empty")
    return value.strip()


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"not a {'/'.join(schemes)} URL")
        try:
            parts.port  # noqa: B018 — a port that is not a number raises here, not at connect
        except ValueError:
            raise ValueError("its port is not a number") from None
        return value.strip()

    return parse


def _urls(*schemes: str) -> Callable[[str], tuple[str, ...]]:
    single = _url(*schemes)

    def parse(value: str) -> tuple[str, ...]:
        items = tuple(single(item) for item in value.split(",") if item.strip())
        if not items:
            raise ValueError("no URL given")
        return items

    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number

    return parse


def _float_range(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(value)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip().lower() not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value.strip().lower()

    return parse


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _existing_file(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"no file at {path}")
    return path


def _directory(value: str) -> Path:
    return Path(_text(value)).expanduser()


def _did(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]", value):
        raise ValueError("not a DID")
    return value


def _domain(value: str) -> str:
    value = value.strip().lower()
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?", value):
        raise ValueError("not a domain name")
    return value


def _cidrs(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return tuple(networks)


def _multibase_key(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"z[1-9A-HJ-NP-Za-km-z]{40,}", value):
        raise ValueError("not a base58btc multibase key (z…)")
    return value


def _secret(value: str) -> str:
    if len(value) < 16:
        raise ValueError("shorter than 16 characters")
    return value


AES_KEY_BYTES: Final = 32  # AES-256


def parse_aes_key(text: str) -> bytes:
    """Decode COVES_ENCRYPTION_KEY: standard or URL-safe base64 of exactly 32 bytes.

    Raises:
        ValueError: not base64, or not 32 bytes once decoded.
    """
    value = text.strip()
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4),
                               altchars=b"-_" if ("-" in value or "_" in value) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != AES_KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes, not {AES_KEY_BYTES} "
                         "(make one with: openssl rand -base64 32)")
    return raw


def _aes_key(value: str) -> str:
    # Checked here so a bad key stops every command at start; api/secretbox.py uses the bytes.
    parse_aes_key(value)
    return value.strip()


def _dids(value: str) -> frozenset[str]:
    return frozenset(_did(item) for item in value.split(",") if item.strip())


def _collections(value: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise ValueError("no collection given")
    if len(items) > _MAX_WANTED_COLLECTIONS:
        raise ValueError(f"{len(items)} collections; Jetstream accepts at most {_MAX_WANTED_COLLECTIONS}")
    for item in items:
        if not _COLLECTION_RE.match(item):
            raise ValueError(f"{item!r} is neither an NSID nor an NSID prefix ending in '.*'")
    return items


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting("COVES_ENV", "env", _choice("development", "production"), "development",
            "development|production", "Deployment mode; production refuses unsafe settings."),
    Setting("DATABASE_URL", "database_url", _url("postgres", "postgresql"), None,
            "postgresql://user:password@host:port/dbname",
            "Postgres to use. Unset: start an embedded Postgres in COVES_DATA_DIR.", secret=True),
    Setting("COVES_DATA_DIR", "data_dir", _directory, "./coves-data", "a directory path",
            "Where the embedded Postgres keeps its data."),
    Setting("JETSTREAM_URL", "jetstream_url", _url("ws", "wss"), PUBLIC_JETSTREAM_URL,
            "ws://… or wss://… ending in /subscribe", "Jetstream v1 endpoint to read."),
    Setting("JETSTREAM_COLLECTIONS", "jetstream_collections", _collections, "social.coves.*",
            "comma-separated NSIDs or NSID prefixes ending in '.*' (at most 100)",
            "Collections to request (wantedCollections)."),
    Setting("JETSTREAM_ZSTD_DICTIONARY", "jetstream_zstd_dictionary", _existing_file, None,
            "path to an existing zstd dictionary file",
            "Jetstream v1 zstd dictionary; when set, ask for compress=true."),
    Setting("JETSTREAM_IDLE_TIMEOUT_S", "jetstream_idle_timeout_s", _float_range(0.1, 3600), "60",
            "seconds, 0.1..3600", "Reconnect when no frame arrives for this long."),
    Setting("JETSTREAM_REWIND_S", "jetstream_rewind_s", _float_range(0, 3600), "5",
            "seconds, 0..3600", "Resume this far before the stored cursor (duplicates are harmless)."),
    # The default is the faster transport as measured end to end (bench/RESULTS.md); it equals
    # engine.sources.jetstream.DEFAULT_TRANSPORT (tests/engine/test_config.py checks).
    Setting("JETSTREAM_TRANSPORT", "jetstream_transport", _choice("trio-websocket", "sansio"),
            "trio-websocket", "trio-websocket|sansio",
            "WebSocket implementation of the Jetstream source: trio-websocket, or websockets' "
            "Sans-I/O protocol driven on a Trio stream (engine/sources/websocket.py)."),
    # ---- raw firehose (replaces Jetstream when set) and backfill ----
    Setting("FIREHOSE_URL", "firehose_urls", _urls("ws", "wss"), None,
            "comma-separated ws://… or wss://… (a PDS or relay; /xrpc/… path optional)",
            "Raw firehose(s) (com.atproto.sync.subscribeRepos) to read instead of Jetstream; "
            "each gets its own cursor and writer. Collections: JETSTREAM_COLLECTIONS, filtered "
            "locally."),
    Setting("FIREHOSE_IDLE_TIMEOUT_S", "firehose_idle_timeout_s", _float_range(0.1, 3600), "60",
            "seconds, 0.1..3600", "Reconnect to a firehose when no frame arrives for this long."),
    Setting("BACKFILL_URL", "backfill_urls", _urls("http", "https"), None,
            "comma-separated http://… or https://… (a PDS or relay)",
            "Hosts `coves backfill` lists and fetches repos from; unset: the FIREHOSE_URL hosts."),
    Setting("BACKFILL_CONCURRENCY", "backfill_concurrency", _int_range(1, 64), "5",
            "an integer, 1..64", "Repos fetched at once from each backfill host."),
    Setting("BACKFILL_RATE", "backfill_rate", _float_range(0.1, 1000), "10",
            "requests per second, 0.1..1000", "Most requests per second to each backfill host."),
    Setting("BATCH_MAX_ROWS", "batch_max_rows", _int_range(1, 100_000),
            str(DEFAULT_BATCH_MAX_ROWS), "an integer, 1..100000",
            "Flush a batch at this many events (reached only while the writer is behind)."),
    Setting("BATCH_MAX_LATENCY_MS", "batch_max_latency_ms", _int_range(1, 60_000), "100",
            "milliseconds, 1..60000", "Flush a batch once its oldest event waited this long."),
    Setting("METRICS_HOST", "metrics_host", _text, "127.0.0.1", "an address to bind",
            "Address of the Prometheus endpoint."),
    Setting("METRICS_PORT", "metrics_port", _int_range(0, 65535), "9464",
            "a TCP port, 0..65535 (0 disables)", "Port of the Prometheus endpoint (/metrics)."),
    Setting("BACKUP_DIR", "backup_dir", _directory, None, "a directory path",
            "Where `coves backup` writes archives. Unset: COVES_DATA_DIR/backups."),
    Setting("BACKUP_KEEP_DAYS", "backup_keep_days", _int_range(1, 3650), "30", "days, 1..3650",
            "`coves backup` deletes archives older than this."),
    Setting("PG_BIN_DIR", "pg_bin_dir", _directory, None, "a directory holding pg_dump",
            "Where pg_dump/pg_restore are. Unset: the embedded Postgres' own, else PATH."),
    Setting("LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"), "info",
            "debug|info|warning|error", "Lowest level logged."),
    Setting("LOG_FORMAT", "log_format", _choice("auto", "json", "console"), "auto",
            "auto|json|console", "Log rendering; auto = JSON in production, readable otherwise."),
    # ---- identity (engine/identity) ----
    Setting("PLC_URL", "plc_url", _url("http", "https"), "https://plc.directory",
            "https://… (http only with IDENTITY_ALLOW_PRIVATE_ADDRESSES)",
            "PLC directory that resolves did:plc identities."),
    Setting("IDENTITY_FETCH_TIMEOUT_S", "identity_fetch_timeout_s", _float_range(0.1, 60), "5",
            "seconds, 0.1..60", "Time limit of one DID document or handle fetch, redirects included."),
    Setting("IDENTITY_FETCH_MAX_BYTES", "identity_fetch_max_bytes", _int_range(1024, 1_048_576),
            "65536", "bytes, 1024..1048576", "Largest DID document or handle file accepted."),
    Setting("DID_CACHE_TTL_S", "did_cache_ttl_s", _float_range(1, 86_400), "3600",
            "seconds, 1..86400", "How long a resolved DID document is reused."),
    Setting("DID_CACHE_FAILURE_TTL_S", "did_cache_failure_ttl_s", _float_range(1, 86_400), "300",
            "seconds, 1..86400", "How long a failed DID resolution is remembered before retrying."),
    Setting("SKIP_DID_WEB_VERIFICATION", "skip_did_web_verification", _bool, "false",
            "true|false", "Development only: accept every community's hostedBy unchecked.",
            production="off"),
    Setting("IDENTITY_ALLOW_PRIVATE_ADDRESSES", "identity_allow_private_addresses", _bool, "false",
            "true|false", "Tests only: let identity fetches reach loopback/private addresses "
            "and plain http.", production="off"),
    Setting("HANDLE_VERIFY_VIA_PDS", "handle_verify_via_pds", _bool, "false", "true|false",
            "Tests only: when DNS and https cannot verify a handle, accept the DID's own PDS's "
            "resolveHandle answer.", production="off"),
    # ---- XRPC API (api/) ----
    Setting("API_HOST", "api_host", _text, "127.0.0.1", "an address to bind",
            "Address the XRPC API listens on."),
    Setting("API_PORT", "api_port", _int_range(0, 65535), "8080",
            "a TCP port, 0..65535 (0 = any free port)", "Port of the XRPC API."),
    Setting("INSTANCE_DOMAIN", "instance_domain", _domain, "localhost", "a domain name",
            "Public domain of this AppView (did:web and !name@domain community names)."),
    Setting("INSTANCE_DID", "instance_did", _did, None, "a DID, e.g. did:web:coves.social",
            "This AppView's DID: the `aud` service-auth tokens must carry. "
            "Unset: did:web:INSTANCE_DOMAIN (production: required to serve the API)."),
    Setting("INSTANCE_PUBLIC_KEY_MULTIBASE", "instance_public_key_multibase", _multibase_key, None,
            "a multikey (z + base58btc)", "Public key published in /.well-known/did.json."),
    Setting("PDS_URL", "pds_url", _url("http", "https"), "http://localhost:3001", "an http(s) URL",
            "PDS that hosts community repos; blob URLs fall back to it."),
    Setting("IMAGE_CDN_URL", "image_cdn_url", _url("http", "https"), None, "an http(s) URL",
            "When set, image URLs are IMAGE_CDN_URL/{did}/{cid} instead of the PDS getBlob URL."),
    Setting("AUTH_SKIP_VERIFY", "auth_skip_verify", _bool, "false", "true|false",
            "Trust a token's `iss` without checking its signature (development only).",
            production="off"),
    Setting("CURSOR_SECRET", "cursor_secret", _secret, None, "at least 16 characters",
            "HMAC key of pagination cursors; every API process must share it. Unset: a random "
            "key per process (cursors die with it; production: required to serve the API).",
            secret=True),
    Setting("TRUSTED_PROXIES", "trusted_proxies", _cidrs, None, "comma-separated CIDRs",
            "Peers whose X-Forwarded-For / X-Real-IP name the client (rate limits)."),
    Setting("RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute", _int_range(1, 1_000_000), "100",
            "requests per minute, 1..1000000", "XRPC requests one client may make per minute."),
    Setting("RATE_LIMIT_COMMENTS_PER_MINUTE", "rate_limit_comments_per_minute",
            _int_range(1, 1_000_000), "20", "requests per minute, 1..1000000",
            "getComments requests one client may make per minute (on top of the overall limit)."),
    Setting("ANONYMOUS_CACHE_TTL_S", "anonymous_cache_ttl_s", _float_range(0, 60), "1",
            "seconds, 0..60", "Logged-out readers asking the same feed, thread, post, community "
            "or profile within this time share one answer (0: every request is read afresh)."),
    Setting("HEALTH_MAX_LAG_S", "health_max_lag_s", _float_range(1, 86_400), "300",
            "seconds, 1..86400", "/xrpc/_health answers 503 when ingestion lags more than this."),
    # ---- write path (api/: community.create, post.create, blob upload) ----
    Setting("COVES_ENCRYPTION_KEY", "encryption_key", _aes_key, None,
            "base64 of 32 random bytes (openssl rand -base64 32)",
            "AES-256-GCM key of the community credentials stored in Postgres. Unset in "
            "development: a key kept in COVES_DATA_DIR/encryption.key (production: required to "
            "serve the API).", secret=True, production="api"),
    Setting("COMMUNITY_CREATORS", "community_creators", _dids, None, "comma-separated DIDs",
            "Only these DIDs may create communities. Unset: any authenticated caller."),
    Setting("COMMUNITY_HANDLE_DOMAIN", "community_handle_domain", _domain, None, "a domain name",
            "Community handles are c-{name}.{this}. Unset: the PDS's first availableUserDomains "
            "entry (com.atproto.server.describeServer)."),
    Setting("TRUSTED_AGGREGATORS", "trusted_aggregators", _dids, None, "comma-separated DIDs",
            "Aggregators exempt from AGGREGATOR_POSTS_PER_HOUR (they still need an enabled "
            "authorization)."),
    Setting("AGGREGATOR_POSTS_PER_HOUR", "aggregator_posts_per_hour", _int_range(1, 100_000), "10",
            "posts per hour, 1..100000", "Posts one aggregator may make per community and hour."),
    Setting("PDS_TIMEOUT_S", "pds_timeout_s", _float_range(0.5, 120), "10", "seconds, 0.5..120",
            "Time limit of one call to PDS_URL (writes, blob uploads, sessions)."),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration, parsed and checked."""

    env: str
    database_url: str | None
    data_dir: Path
    jetstream_url: str
    jetstream_collections: tuple[str, ...]
    jetstream_zstd_dictionary: Path | None
    jetstream_idle_timeout_s: float
    jetstream_rewind_s: float
    jetstream_transport: str
    batch_max_rows: int
    batch_max_latency_ms: int
    metrics_host: str
    metrics_port: int
    backup_dir: Path | None
    backup_keep_days: int
    pg_bin_dir: Path | None
    log_level: str
    log_format: str
    firehose_urls: tuple[str, ...] | None = None
    firehose_idle_timeout_s: float = 60.0
    backfill_urls: tuple[str, ...] | None = None
    backfill_concurrency: int = 5
    backfill_rate: float = 10.0
    plc_url: str = "https://plc.directory"
    identity_fetch_timeout_s: float = 5.0
    identity_fetch_max_bytes: int = 65536
    did_cache_ttl_s: float = 3600.0
    did_cache_failure_ttl_s: float = 300.0
    skip_did_web_verification: bool = False
    identity_allow_private_addresses: bool = False
    handle_verify_via_pds: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    instance_domain: str = "localhost"
    instance_did: str | None = None
    instance_public_key_multibase: str | None = None
    pds_url: str = "http://localhost:3001"
    image_cdn_url: str | None = None
    auth_skip_verify: bool = False
    cursor_secret: str | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    rate_limit_per_minute: int = 100
    rate_limit_comments_per_minute: int = 20
    anonymous_cache_ttl_s: float = 1.0
    health_max_lag_s: float = 300.0
    encryption_key: str | None = None
    community_creators: frozenset[str] | None = None
    community_handle_domain: str | None = None
    trusted_aggregators: frozenset[str] | None = None
    aggregator_posts_per_hour: int = 10
    pds_timeout_s: float = 10.0

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def service_did(self) -> str:
        """This AppView's DID: INSTANCE_DID, or did:web of INSTANCE_DOMAIN."""
        return self.instance_did or "did:web:" + self.instance_domain.replace(":", "%3A")

    def describe(self) -> list[tuple[str, str]]:
        """Return (variable, value) pairs for display, secrets masked."""
        return describe_values({s.field: getattr(self, s.field) for s in SETTINGS})


def describe_values(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(variable, shown value) per setting: secrets masked, lists joined, failures marked."""
    pairs = []
    for setting in SETTINGS:
        if setting.field not in values:
            pairs.append((setting.env, "(invalid: see problems)"))
            continue
        value = values[setting.field]
        if value is None:
            shown = "(unset)"
        elif setting.secret:
            shown = _mask(str(value))
        elif isinstance(value, (tuple, list, frozenset)):
            shown = ", ".join(str(item) for item in value)
        else:
            shown = str(value)
        pairs.append((setting.env, shown))
    return pairs


def _mask(value: str) -> str:
    # Keep a URL's scheme and host so operators can tell which database is meant.
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: shown masked like the rest
        return "***"
    if parts.scheme and parts.hostname:
        return f"{parts.scheme}://***@{parts.hostname}{':' + str(port) if port else ''}{parts.path}"
    return "***"


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    """Problems that involve two settings."""
    problems = []
    plc_url = values.get("plc_url") or ""
    if plc_url.startswith("http:") and not values.get("identity_allow_private_addresses"):
        problems.append(f"PLC_URL = {plc_url!r}: identity fetches use https only; plain http "
                        "needs IDENTITY_ALLOW_PRIVATE_ADDRESSES=true (tests)")
    return problems


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting (e.g. --database-url for DATABASE_URL) to a parser."""
    group = parser.add_argument_group("settings (flag overrides the environment variable)")
    for setting in SETTINGS:
        default = f" [default: {setting.default}]" if setting.default is not None else ""
        group.add_argument(setting.flag, dest=f"setting_{setting.field}", metavar=setting.env,
                           default=None, help=f"{setting.help} Form: {setting.form}.{default}")


def load_config(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None,
                **overrides: Any) -> Config:
    """Build the Config from flags, then environment, then defaults.

    Raises:
        ConfigError: listing every setting that failed, each with its variable and accepted form.
    """
    values, problems = read_config(args, environ, **overrides)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return Config(**values)


def read_config(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None,
                **overrides: Any) -> tuple[dict[str, Any], list[str]]:
    """The parsed values (a setting that failed to parse is absent) and every problem found."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        if setting.field in overrides:
            values[setting.field] = overrides[setting.field]
            continue
        raw = getattr(args, f"setting_{setting.field}", None) if args is not None else None
        origin = setting.flag
        if raw is None:
            raw, origin = environ.get(setting.env), setting.env
        if raw is None or raw == "":
            raw, origin = setting.default, f"{setting.env} default"
        if raw is None:
            values[setting.field] = None
            continue
        try:
            values[setting.field] = setting.parse(raw)
        except (ValueError, TypeError) as exc:
            shown = "***" if setting.secret else repr(raw)
            problems.append(f"{setting.env} ({origin}) = {shown}: {exc}; expected {setting.form}")
    if values.get("env") == "production":
        problems += production_problems(values)
    problems += _cross_checks(values)
    return values, problems


def production_problems(values: Mapping[str, Any]) -> list[str]:
    """What COVES_ENV=production refuses: development shortcuts on, required settings unset."""
    problems = []
    for setting in SETTINGS:
        value = values.get(setting.field)
        if setting.production == "off" and value:
            problems.append(f"{setting.env} must be off in production (it is a development shortcut)")
        elif setting.production == "required" and value in (None, ""):
            problems.append(f"{setting.env} is required in production: {setting.help}")
    return problems
