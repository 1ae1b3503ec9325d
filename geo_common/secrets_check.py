"""Refusing to serve with a key anyone can know, or in development mode off loopback (pure).

``GEO_JWT_SECRET`` signs every bearer token (an ``admin`` token reads every user's position)
and every search cursor. Its default, :data:`~geo_common.settings.DEV_JWT_SECRET`, is in the
source, and the placeholders the deployment files and docs once shipped are public too: a
service that serves with one of them accepts tokens anyone can mint. So a service refuses to
start with such a key (:func:`check_jwt_secret`) unless it runs in development mode
(``GEO_DEV=1``), and development mode, which also mints tokens for anyone on
``POST /v1/dev/token``, is for loopback addresses only (:func:`check_dev_host`).

The local stack (``geo-stack up``) generates a random key once and writes it to its env
file, so ``make run`` and ``make test`` never need the default.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import fields

from geo_common.settings import DEV_JWT_SECRET, Settings, SettingsError

#: The shortest key accepted, bytes: an HS256 key shorter than the hash is brute-forceable
#: (RFC 7518, section 3.2).
MIN_SECRET_BYTES = 32
#: Fewer different characters than this is a pattern ("kkkk...", "abcabc..."), not a random key.
MIN_DISTINCT_CHARACTERS = 10
#: Keys geo has shipped, in its settings, deployment files and docs: public, so never a key.
KNOWN_KEYS = frozenset(
    {
        DEV_JWT_SECRET,
        "geo-local-only-jwt-key-change-me-0123456789",  # the old compose.yaml fallback
        "example-placeholder-replace-me-with-48-random-bytes",  # the old k8s example overlay
        "regions-placeholder-replace-me-with-48-random-bytes",  # the old k8s regions overlay
    }
)
#: What placeholder keys say of themselves.
PLACEHOLDER = re.compile(
    r"change[-_ .]?me|replace[-_ .]?me|placeholder|example|dev[-_ .]?secret|insecure|not[-_ .]?secret"
    r"|your[-_ .]?(?:own[-_ .]?)?(?:secret|key)",
    re.IGNORECASE,
)
#: How to make a key, for the messages.
HOW_TO_GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def secret_problem(secret: str) -> str | None:
    """Why a key must not sign tokens, or None when it may.

    Args:
        secret: the HS256 key.

    Returns:
        A phrase completing "GEO_JWT_SECRET ..." (never the key itself), or None.
    """
    if secret == DEV_JWT_SECRET:
        return "is the built-in development key, which anyone can read in geo's source"
    if secret in KNOWN_KEYS:
        return "is a placeholder geo's deployment files shipped, which anyone can read"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    found = PLACEHOLDER.search(secret)
    if found is not None:
        return f"looks like a placeholder (it says {found.group(0)!r})"
    distinct = len(set(secret))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return f"has only {distinct} different characters: it is a pattern, not a random key"
    return None


def is_loopback(host: str) -> bool:
    """True when a listen address only accepts connections from this machine.

    ``localhost`` (and ``*.localhost``, RFC 6761) or a loopback IP address (``127.0.0.0/8``,
    ``::1``); an empty host, ``0.0.0.0``, ``::`` or any other name is not.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_jwt_secret(settings: Settings) -> None:
    """Refuse a key that anyone could know, unless in development mode.

    Raises:
        SettingsError: naming ``GEO_JWT_SECRET`` and how to make a key (not showing it).
    """
    if settings.dev:
        return
    problem = secret_problem(settings.jwt_secret)
    if problem is not None:
        raise SettingsError(
            f"GEO_JWT_SECRET {problem}: set a random key of at least {MIN_SECRET_BYTES} bytes "
            f"({HOW_TO_GENERATE}), or GEO_DEV=1 on a loopback address for local development"
        )


def check_dev_host(settings: Settings, *, host_field: str, flag: str | None = None) -> None:
    """Refuse development mode on an address other machines can reach.

    Args:
        settings: the settings the service runs with (its listen address already final).
        host_field: the field holding the listen address (``api_host``, ``ws_host``).
        flag: the command-line option that set it (``--host``), to name instead of the variable.

    Raises:
        SettingsError: naming ``GEO_DEV`` and the listen address.
    """
    host = getattr(settings, host_field)
    if settings.dev and not is_loopback(host):
        where = flag or _variable(host_field)
        raise SettingsError(
            f"GEO_DEV=1 is for local development only (it trusts the built-in key and mints tokens "
            f"for anyone), but {where} is {host!r}, not a loopback address: unset GEO_DEV, or listen on 127.0.0.1"
        )


def check_serving(settings: Settings, *, host_field: str, flag: str | None = None) -> None:
    """Everything a service checks before it listens: :func:`check_dev_host`, then
    :func:`check_jwt_secret`.

    Raises:
        SettingsError: the first problem found, in one line.
    """
    check_dev_host(settings, host_field=host_field, flag=flag)
    check_jwt_secret(settings)


def _variable(field_name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == field_name))
