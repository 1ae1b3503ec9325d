"""The values ``GEO_*`` variables may hold: one parser per kind (pure).

Each parser takes the raw string and returns the typed value or raises :class:`ValueError`
with what was expected; :class:`geo_common.settings.Settings` names the variable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from urllib.parse import urlsplit

from pubsub.sentinel import is_sentinel_url, parse_sentinel_url


class SettingsError(ValueError):
    """A ``GEO_*`` variable holds a value that cannot be used; the message names it."""


# --- parsers: each takes the raw string and returns the typed value or raises ValueError ---


def parse_int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}")
        return value

    return parse


def parse_float(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number from {lo:g} to {hi:g}") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"expected a number from {lo:g} to {hi:g}")
        return value

    return parse


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"expected a URL like {schemes[0]}://host:port/...")
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError("the URL's port is not a number from 0 to 65535") from None
        return value

    return parse


def parse_redis_url(raw: str) -> str:
    """A Redis URL: one node (``redis://``, ``rediss://``) or a Sentinel-managed primary
    (``redis+sentinel://[user:password@]host:port,.../name[/db]``, :mod:`pubsub.sentinel`)."""
    value = raw.strip()
    if is_sentinel_url(value):
        parse_sentinel_url(value)
        return value
    try:
        return parse_url("redis", "rediss")(value)
    except ValueError:
        raise ValueError(
            "expected a URL like redis://host:port/0 (rediss:// for TLS), or "
            "redis+sentinel://host:port,host:port,.../primary-name for a primary Redis Sentinel watches"
        ) from None


def parse_pg_url(raw: str) -> str:
    """A PostgreSQL URL, with one host or several (``host1:5432,host2:5433``, as libpq takes them)."""
    value = raw.strip()
    parts = urlsplit(value)
    example = "expected a URL like postgresql://user@host:port/db (or host1:port1,host2:port2)"
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(example)
    hosts = parts.netloc.rpartition("@")[2]
    for item in hosts.split(","):
        host = urlsplit(f"//{item}")
        if not host.hostname:
            raise ValueError(example)
        try:
            host.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError("the URL's port is not a number from 0 to 65535") from None
    return value


def parse_url_list(*schemes: str) -> Callable[[str], tuple[str, ...]]:
    one = parse_url(*schemes)

    def parse(raw: str) -> tuple[str, ...]:
        return tuple(one(item) for item in raw.split(",") if item.strip())

    return parse


def parse_host_ports(raw: str) -> tuple[str, ...]:
    nodes = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port items separated by commas, got {item!r}")
        nodes.append(item)
    return tuple(nodes)


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def parse_optional_url(*schemes: str) -> Callable[[str], str]:
    one = parse_url(*schemes)

    def parse(raw: str) -> str:
        return one(raw) if raw.strip() else ""

    return parse


def parse_text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def parse_optional_text(raw: str) -> str:
    return raw.strip()


def parse_namespace(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError("expected 1 to 64 letters, digits, '-', '_' or '.'")
    return value


def parse_secret(raw: str) -> str:
    # HS256 keys shorter than the hash (32 bytes) are brute-forceable (RFC 7518 section 3.2).
    if len(raw.encode()) < 32:
        raise ValueError("must be at least 32 bytes long")
    return raw
