"""One frozen, typed settings object, built once from ``GEO_*`` environment variables.

Every service reads the same :class:`Settings`. Each field declares its variable, its parser
(:mod:`geo_common.setting_values`) and a line of help (rendered for the README by
:func:`settings_table`); a bad value raises :class:`SettingsError` naming the variable. How a
field is read and shown is :mod:`geo_common.setting_fields`; the env file, :mod:`geo_common.env_file`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from geo_common.env_file import default_env_file as default_env_file
from geo_common.env_file import read_env_file as read_env_file
from geo_common.logs import LOG_FORMATS
from geo_common.regions import PUBSUB_BACKENDS, Region, parse_regions
from geo_common.setting_fields import markdown_table, values_from_env
from geo_common.setting_fields import setting as _setting
from geo_common.setting_values import SettingsError as SettingsError
from geo_common.setting_values import (
    parse_bool,
    parse_choice,
    parse_float,
    parse_host_ports,
    parse_int,
    parse_namespace,
    parse_optional_text,
    parse_optional_url,
    parse_pg_url,
    parse_redis_url,
    parse_secret,
    parse_text,
    parse_url_list,
)


DEV_JWT_SECRET = "geo-dev-secret-change-me-in-production"

#: Variables no longer read, and what replaced each: setting one is an error, not ignored.
RETIRED = {"GEO_API_HUGE_PAGES": "GEO_PROCESS_TUNING (on/off), which also covers garbage-collector tuning"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a geo process can be told, with defaults for a local run."""

    # Where the data lives.
    pg_primary: str = _setting(
        "postgresql://postgres@127.0.0.1:5432/geo",
        "GEO_PG_PRIMARY",
        parse_pg_url,
        "PostgreSQL primary (all writes); several hosts with ?target_session_attrs=read-write follow a failover",
    )
    pg_replicas: tuple[str, ...] = _setting(
        (),
        "GEO_PG_REPLICAS",
        parse_url_list("postgresql", "postgres"),
        "streaming replicas for reads, comma-separated (empty: read from the primary)",
    )
    redis_url: str = _setting(
        "redis://127.0.0.1:6379/0",
        "GEO_REDIS_URL",
        parse_redis_url,
        "Redis for locations and pub/sub (and the API's cache unless GEO_API_CACHE_URL): redis://host:port/0, "
        "or redis+sentinel://host:port,.../name for the primary Redis Sentinel watches (followed on failover)",
    )
    redis_tls_ca: str = _setting(
        "",
        "GEO_REDIS_TLS_CA",
        parse_optional_text,
        "CA bundle (PEM path) rediss:// servers are verified with (empty: system's)",
    )
    redis_cluster: tuple[str, ...] = _setting(
        (), "GEO_REDIS_CLUSTER", parse_host_ports, "Redis Cluster seed nodes host:port,... (sharded pub/sub)"
    )
    redis_namespace: str = _setting(
        "geo",
        "GEO_REDIS_NAMESPACE",
        parse_namespace,
        "prefix of every Redis key and channel (several deployments can share one Redis)",
    )
    # Where the services listen.
    api_host: str = _setting("127.0.0.1", "GEO_API_HOST", parse_text, "HTTP API listen address")
    api_port: int = _setting(8080, "GEO_API_PORT", parse_int(0, 65535), "HTTP API port")
    ws_host: str = _setting("127.0.0.1", "GEO_WS_HOST", parse_text, "WebSocket tier listen address")
    ws_port: int = _setting(8081, "GEO_WS_PORT", parse_int(0, 65535), "WebSocket tier port")
    # Identity.
    jwt_secret: str = _setting(
        DEV_JWT_SECRET,
        "GEO_JWT_SECRET",
        parse_secret,
        "HS256 key for bearer tokens (change it outside local use)",
        secret=True,
    )
    jwt_ttl_s: int = _setting(
        86_400, "GEO_JWT_TTL_S", parse_int(60, 31_536_000), "lifetime of tokens minted by geo-token, seconds"
    )
    jwt_issuer: str = _setting(
        "geo-local", "GEO_JWT_ISSUER", parse_text, "required iss of tokens signed with GEO_JWT_SECRET (geo-token's)"
    )
    jwt_audience: str = _setting("geo", "GEO_JWT_AUDIENCE", parse_text, "required aud of every token")
    jwt_provider_issuer: str = _setting(
        "", "GEO_JWT_PROVIDER_ISSUER", parse_optional_text, "required iss of a provider's tokens (empty: none)"
    )
    jwt_jwks_url: str = _setting(
        "", "GEO_JWT_JWKS_URL", parse_optional_text, "the identity provider's JWKS URL (RS256, ES256, EdDSA keys)"
    )
    jwt_public_key: str = _setting(
        "", "GEO_JWT_PUBLIC_KEY", parse_optional_text, "identity provider's public key, PEM text or file path"
    )
    jwt_leeway_s: int = _setting(30, "GEO_JWT_LEEWAY_S", parse_int(0, 300), "clock skew allowed on exp/nbf/iat, s")
    jwt_max_lifetime_s: int = _setting(
        604_800, "GEO_JWT_MAX_LIFETIME_S", parse_int(60, 31_536_000), "longest token lifetime accepted, seconds"
    )
    # Search.
    max_radius_m: float = _setting(
        50_000.0, "GEO_MAX_RADIUS_M", parse_float(1.0, 1_000_000.0), "largest search radius accepted, metres"
    )
    # Operations.
    log_level: str = _setting("info", "GEO_LOG_LEVEL", parse_choice("debug", "info", "warning", "error"), "log level")
    log_format: str = _setting(
        "text", "GEO_LOG_FORMAT", parse_choice(*LOG_FORMATS), "log lines: text, or json (one object a line)"
    )
    access_log_sample: float = _setting(
        0.0, "GEO_ACCESS_LOG_SAMPLE", parse_float(0.0, 1.0), "0 to 1: share of requests logged (docs/deploy.md)"
    )
    dev: bool = _setting(
        False,
        "GEO_DEV",
        parse_bool,
        "enable development-only endpoints (the map page's POST /v1/dev/token mints tokens for anyone)",
    )
    http_rate_per_s: int = _setting(
        20,
        "GEO_HTTP_RATE_PER_S",
        parse_int(1, 100_000),
        "searches per second per client address the nginx in front of geo-api lets through (bursts of twice that)",
    )
    breaker_failures: int = _setting(
        5,
        "GEO_BREAKER_FAILURES",
        parse_int(1, 1000),
        "consecutive failed calls to one PostgreSQL server or Redis that open its circuit breaker (calls then fail fast)",
    )
    breaker_reset_s: float = _setting(
        2.0,
        "GEO_BREAKER_RESET_S",
        parse_float(0.0, 600.0),
        "an open circuit breaker lets one probe call through after this long; its success closes it, seconds",
    )
    process_tuning: bool = _setting(
        True, "GEO_PROCESS_TUNING", parse_bool, "on/off: GC tuning and huge pages, both services (docs/deploy.md)"
    )
    # --- location_api
    api_role: str = _setting(
        "all",
        "GEO_API_ROLE",
        parse_choice("read", "write", "all"),
        "routes the HTTP API serves: read (search, GET), write (POST/PUT/DELETE) or all",
    )
    api_index: str = _setting(
        "geohash",
        "GEO_API_INDEX",
        parse_choice("geohash", "quadtree", "s2", "sql"),
        "default nearby-search strategy: an in-memory index, or sql (geohash prefixes on a replica)",
    )
    api_indexes: tuple[str, ...] = _setting(
        ("geohash", "quadtree", "s2"),
        "GEO_API_INDEXES",
        lambda raw: tuple(parse_choice("geohash", "quadtree", "s2")(i) for i in raw.split(",") if i.strip()),
        "in-memory indexes each read instance builds, comma-separated (a strategy not built is answered by sql)",
    )
    api_cache_ttl_s: int = _setting(
        300, "GEO_API_CACHE_TTL_S", parse_int(1, 86_400), "lifetime of the HTTP API's Redis cache entries, seconds"
    )
    api_cards_max: int = _setting(
        5_000_000,
        "GEO_API_CARDS_MAX",
        parse_int(0, 10**10),
        "businesses up to which a read instance keeps every search card in memory; above it only positions, "
        "and each page's hits are read from the Redis business cache, then a replica",
    )
    api_cache_url: str = _setting(
        "",
        "GEO_API_CACHE_URL",
        lambda raw: parse_redis_url(raw) if raw.strip() else "",
        "Redis of the HTTP API's business cache, evicting at will (empty: GEO_REDIS_URL; docs/deploy.md)",
    )
    api_refresh_s: float = _setting(
        0.25,
        "GEO_API_REFRESH_S",
        parse_float(0.01, 60.0),
        "how often each HTTP API instance polls for business changes to apply to its indexes, seconds",
    )
    friends_public_url: str = _setting(
        "",
        "GEO_FRIENDS_PUBLIC_URL",
        parse_optional_url("ws", "wss"),
        "WebSocket URL the map page (GET / on geo-api) connects to, such as wss://geo.example.com/v1/friends/ws "
        "(empty: /v1/friends/ws on the page's own origin; with GEO_DEV, the page's host, port GEO_WS_PORT)",
    )
    # --- friends_ws
    pubsub_backend: str = _setting(
        "redis",
        "GEO_PUBSUB_BACKEND",
        parse_choice(*PUBSUB_BACKENDS),
        "pub/sub of the friends tier: redis (GEO_REDIS_URL), ring (GEO_PUBSUB_RING) or cluster (GEO_REDIS_CLUSTER)",
    )
    pubsub_ring: tuple[str, ...] = _setting(
        (),
        "GEO_PUBSUB_RING",
        parse_url_list("redis", "rediss"),
        "standalone Redis nodes of the ring pub/sub backend, comma-separated URLs",
    )
    pubsub_probe_s: float = _setting(
        5.0,
        "GEO_PUBSUB_PROBE_S",
        parse_float(0.05, 300.0),
        "an idle pub/sub subscriber connection is sent PING after this long and reconnected if the PING "
        "is not answered within it, seconds",
    )
    pubsub_ring_handoff_s: float = _setting(
        2.0,
        "GEO_PUBSUB_RING_HANDOFF_S",
        parse_float(0.0, 600.0),
        "when the ring's nodes change, each re-homing step lasts this long (every process must start "
        "the change within it), seconds",
    )
    etcd_url: str = _setting(
        "", "GEO_ETCD_URL", parse_optional_url("http"), "etcd keeping the ring's nodes (empty: none; docs/pubsub.md)"
    )
    pubsub_ring_check_s: float = _setting(
        1.0, "GEO_PUBSUB_RING_CHECK_S", parse_float(0.05, 60.0), "with etcd: ring nodes' PING interval and timeout, s"
    )
    regions: tuple[Region, ...] = _setting(
        (),
        "GEO_REGIONS",
        parse_regions,
        "region map as JSON or a JSON file's path: name -> boxes, Redis cache, pub/sub (empty: one region "
        "everywhere; see docs/regions.md)",
    )
    location_ttl_s: int = _setting(
        600,
        "GEO_LOCATION_TTL_S",
        parse_int(1, 86_400),
        "lifetime of a cached location; a user silent this long becomes inactive, seconds",
    )
    friend_radius_m: float = _setting(
        8047.0,
        "GEO_FRIEND_RADIUS_M",
        parse_float(1.0, 1_000_000.0),
        "default radius within which friends are shown, metres (5 miles)",
    )
    friend_radius_min_m: float = _setting(
        100.0, "GEO_FRIEND_RADIUS_MIN_M", parse_float(1.0, 1_000_000.0), "smallest radius a client may set, metres"
    )
    friend_radius_max_m: float = _setting(
        80_467.0,
        "GEO_FRIEND_RADIUS_MAX_M",
        parse_float(1.0, 1_000_000.0),
        "largest radius a client may set, metres (50 miles)",
    )
    friend_hysteresis_m: float = _setting(
        200.0,
        "GEO_FRIEND_HYSTERESIS_M",
        parse_float(0.0, 100_000.0),
        "a friend in view leaves it only beyond the radius plus this margin (no flapping at the edge), metres",
    )
    ws_max_updates_per_s: float = _setting(
        2.0,
        "GEO_WS_MAX_UPDATES_PER_S",
        parse_float(0.01, 10_000.0),
        "location updates per second one user may send; more are answered with rate_limited",
    )
    ws_ping_interval_s: float = _setting(
        20.0,
        "GEO_WS_PING_INTERVAL_S",
        parse_float(0.05, 3600.0),
        "a WebSocket connection silent this long is pinged, and closed when no pong comes back within half of it, seconds",
    )
    discover_radius_m: float = _setting(
        2000.0, "GEO_DISCOVER_RADIUS_M", parse_float(1000.0, 20_000.0), "nearby strangers: seen within this, metres"
    )
    discover_max_shown: int = _setting(
        20, "GEO_DISCOVER_MAX_SHOWN", parse_int(1, 500), "nearby strangers: the most shown to a connection at once"
    )
    ws_queue_size: int = _setting(
        256,
        "GEO_WS_QUEUE_SIZE",
        parse_int(1, 100_000),
        "frames a slow reader may have waiting (the newest per friend replaces older ones); beyond it "
        "the connection is closed",
    )
    ws_drain_s: float = _setting(
        10.0,
        "GEO_WS_DRAIN_S",
        parse_float(0.0, 3600.0),
        "on SIGTERM, the window over which a WebSocket instance tells its clients to reconnect and closes "
        "them in waves, seconds (0: close them all at once); docs/deploy.md",
    )
    pace_fast_s: int = _setting(
        30, "GEO_PACE_FAST_S", parse_int(1, 86_400), "clients send this often while a friend looks at them, seconds"
    )
    pace_slow_s: int = _setting(
        300, "GEO_PACE_SLOW_S", parse_int(1, 86_400), "clients send this often otherwise (below GEO_LOCATION_TTL_S), s"
    )
    ws_resume_s: int = _setting(
        120, "GEO_WS_RESUME_S", parse_int(0, 86_400), "a client back within this long gets only what changed, seconds"
    )
    upload_max_points: int = _setting(
        100, "GEO_UPLOAD_MAX_POINTS", parse_int(1, 10_000), "points one POST /v1/me/locations may carry"
    )
    upload_max_per_min: float = _setting(
        12.0, "GEO_UPLOAD_MAX_PER_MIN", parse_float(0.1, 100_000.0), "uploads a minute one user may make (bursts of 4)"
    )
    ws_max_sockets_per_user: int = _setting(
        5, "GEO_WS_MAX_SOCKETS_PER_USER", parse_int(1, 1000), "WebSocket connections one user may hold per instance"
    )
    ws_max_messages_per_s: float = _setting(
        1.0,
        "GEO_WS_MAX_MESSAGES_PER_S",
        parse_float(0.01, 1000.0),
        "settings, sharing and auth frames per second one user may send (bursts of 5); more get rate_limited",
    )
    history_flush_ms: int = _setting(
        500,
        "GEO_HISTORY_FLUSH_MS",
        parse_int(1, 600_000),
        "location history is written at least this often, milliseconds",
    )
    history_flush_rows: int = _setting(
        1000,
        "GEO_HISTORY_FLUSH_ROWS",
        parse_int(1, 1_000_000),
        "location history is written whenever this many rows wait",
    )
    history_retention_days: int = _setting(
        30,
        "GEO_HISTORY_RETENTION_DAYS",
        parse_int(1, 36_500),
        "location history older than this is deleted (by geo-friends itself, hourly), days",
    )
    history_purge_interval_s: float = _setting(
        3600.0,
        "GEO_HISTORY_PURGE_INTERVAL_S",
        parse_float(1.0, 86_400.0),
        "how often geo-friends deletes history past retention, seconds (one instance at a time)",
    )
    max_friends: int = _setting(5000, "GEO_MAX_FRIENDS", parse_int(1, 1_000_000), "the most friends a user may have")
    max_friend_requests_per_min: int = _setting(
        30, "GEO_MAX_FRIEND_REQUESTS_PER_MIN", parse_int(1, 100_000), "friend requests one user may send a minute"
    )
    max_pending_requests: int = _setting(
        100,
        "GEO_MAX_PENDING_REQUESTS",
        parse_int(1, 100_000),
        "the most friend requests a user may have waiting for an answer (sent, not yet accepted)",
    )
    # --- end friends_ws

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping of environment variables.

        Args:
            environ: usually ``os.environ``; only ``GEO_*`` keys of the fields are read.

        Returns:
            The validated settings; absent variables keep their defaults.

        Raises:
            SettingsError: a variable's value is malformed, or a retired variable
                (:data:`RETIRED`) is set; the message names the variable (and shows the value,
                but never a secret's, nor the password of a URL).
        """
        return cls(**values_from_env(cls, environ, RETIRED))


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Settings for a command-line entry point: the env file's values (the local stack's
    ``.stack/env``) under the real environment, which wins.

    Args:
        environ: the environment (default ``os.environ``).
        env_file: the file of defaults (default :func:`default_env_file`).

    Raises:
        SettingsError: a value is malformed.
    """
    merged = read_env_file(env_file if env_file is not None else default_env_file())
    merged.update(environ if environ is not None else os.environ)
    return Settings.from_env(merged)


def settings_table() -> str:
    """The settings as a Markdown table (variable, default, meaning), for the README."""
    return markdown_table(Settings)
