"""Signed bearer tokens (JWT): who the caller is and what role they hold.

Two kinds of token are accepted (:class:`geo_common.identity.Authenticator` decides which
from the ``iss`` claim): *local* tokens, HS256 with :attr:`Settings.jwt_secret`, minted by
``geo-token`` and the map page's development sign-in, whose subject is the user id itself;
and an identity provider's tokens (RS256, ES256 or EdDSA), whose subject is mapped to an
internal user id on first use. This module is the pure part: minting and checking local
tokens, and the registered-claim checks (``iss``, ``aud``, ``exp``, ``nbf``, ``iat``, the
longest lifetime) that both kinds share. It does no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import jwt

#: The algorithm of local tokens (a shared secret).
ALGORITHM = "HS256"
#: The ``iss`` and ``aud`` of local tokens unless settings say otherwise (the
#: :class:`~geo_common.settings.Settings` defaults of ``GEO_JWT_ISSUER`` and ``GEO_JWT_AUDIENCE``).
DEFAULT_ISSUER = "geo-local"
DEFAULT_AUDIENCE = "geo"
#: Clock skew allowed on ``exp``, ``nbf`` and ``iat`` (``GEO_JWT_LEEWAY_S``), seconds.
DEFAULT_LEEWAY_S = 30
#: The longest lifetime accepted (``GEO_JWT_MAX_LIFETIME_S``), seconds.
DEFAULT_MAX_LIFETIME_S = 604_800
#: A longer token is refused before it is parsed (providers' tokens are 1-2 kB).
MAX_TOKEN_CHARS = 8192
#: The largest user id (PostgreSQL's bigint); a local subject names one from 1 to it.
MAX_USER_ID = 2**63 - 1
#: Claims every token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp")


class Role(str, Enum):
    """What a token allows: ``user`` reads and shares locations; ``owner`` and ``admin`` write businesses."""

    USER = "user"
    OWNER = "owner"
    ADMIN = "admin"


class TokenError(ValueError):
    """The token is missing, malformed, badly signed, expired, or its claims are invalid."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller.

    Attributes:
        user_id: the internal user id.
        role: what the caller may do.
        expires_at: when the token that proved it expires, Unix seconds (None: not known).
    """

    user_id: int
    role: Role
    expires_at: float | None = None


def mint_token(
    secret: str,
    user_id: int,
    role: Role = Role.USER,
    *,
    ttl_s: int = 86_400,
    now: float | None = None,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    """Sign a local token for a user.

    Args:
        secret: the HS256 key.
        user_id: the user, from 1 to :data:`MAX_USER_ID` (the ``sub`` claim, as a string per
            RFC 7519).
        role: the role claim.
        ttl_s: lifetime in seconds.
        now: the issue time, Unix seconds (default: the clock).
        issuer: the ``iss`` claim (``GEO_JWT_ISSUER``).
        audience: the ``aud`` claim (``GEO_JWT_AUDIENCE``).

    Returns:
        The compact JWT.

    Raises:
        TokenError: ``user_id`` is not such an integer.
    """
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 1 <= user_id <= MAX_USER_ID:
        raise TokenError(f"user_id must be an integer from 1 to {MAX_USER_ID}, got {user_id!r}")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "role": Role(role).value,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def local_user_id(subject: object) -> int:
    """The user id a local token's subject names.

    Only the canonical spelling of 1 to :data:`MAX_USER_ID` is accepted: ASCII digits, no
    sign, no leading zero, no spaces. So ``"0012"`` is not user 12, ``"١٢"`` (Arabic-Indic
    digits, which :meth:`str.isdigit` and :func:`int` accept) is no user at all, and a
    30-digit subject never reaches PostgreSQL's ``bigint``.

    Raises:
        TokenError: the subject is anything else.
    """
    if (
        not isinstance(subject, str)
        or not 0 < len(subject) <= len(str(MAX_USER_ID))
        or not subject.isascii()
        or not subject.isdecimal()
        or subject[0] == "0"
        or int(subject) > MAX_USER_ID
    ):
        raise TokenError(f"invalid token: sub must be a user id from 1 to {MAX_USER_ID} in ASCII digits")
    return int(subject)


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError(f"invalid token: {name} must be a number of seconds since the epoch")
    return float(value)


def check_times(claims: Mapping[str, Any], *, leeway_s: float, max_lifetime_s: float, now: float) -> float:
    """Check a token's ``exp``, ``nbf`` and ``iat`` claims and its lifetime.

    Args:
        claims: the token's payload.
        leeway_s: clock skew allowed either way, seconds.
        max_lifetime_s: the longest lifetime accepted (``exp - iat``, and ``exp - now``), seconds.
        now: the time, Unix seconds.

    Returns:
        ``exp``, Unix seconds.

    Raises:
        TokenError: ``exp`` is missing or past (beyond the leeway), ``nbf`` or ``iat`` is in
            the future (beyond it), the lifetime is longer than the maximum, or ``exp`` is
            further ahead than the maximum (a token valid for thirty years is refused even
            without ``iat``); or one of them is not a finite number.
    """
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenError("invalid token: no exp claim")
    nbf = _number(claims, "nbf")
    iat = _number(claims, "iat")
    if exp <= now - leeway_s:
        raise TokenError("token expired")
    if nbf is not None and nbf > now + leeway_s:
        raise TokenError("token not yet valid (nbf)")
    if iat is not None and iat > now + leeway_s:
        raise TokenError("token issued in the future (iat)")
    if iat is not None and exp - iat > max_lifetime_s:
        raise TokenError(f"token lifetime exceeds the {max_lifetime_s:g} s allowed")
    if exp - now > max_lifetime_s + leeway_s:
        raise TokenError(f"token expires more than {max_lifetime_s:g} s from now")
    return exp


def check_size(token: object) -> None:
    """Refuse a token that is not a non-empty string of at most :data:`MAX_TOKEN_CHARS`.

    Raises:
        TokenError: it is not.
    """
    if not isinstance(token, str) or not token:
        raise TokenError("missing token")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"invalid token: longer than {MAX_TOKEN_CHARS} characters")


def decode_claims(
    token: str,
    key: Any,
    *,
    algorithms: Sequence[str],
    issuer: str,
    audience: str,
    leeway_s: float,
    max_lifetime_s: float,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a token's signature and registered claims; the one place both kinds are checked.

    Args:
        token: the compact JWT.
        key: the HS256 secret, or a provider's public key (a ``cryptography`` key object).
        algorithms: the algorithms this key may have signed with.
        issuer: the required ``iss``.
        audience: the required ``aud`` (a token's ``aud`` may be a list containing it).
        leeway_s: clock skew allowed, seconds.
        max_lifetime_s: the longest lifetime accepted, seconds.
        now: the time, Unix seconds (default: the clock).

    Returns:
        The payload; ``sub`` is a string, the rest is unchecked.

    Raises:
        TokenError: anything wrong, malformed input included (never another exception).
    """
    check_size(token)
    options = {
        "require": list(REQUIRED_CLAIMS),
        # Times are checked by check_times: PyJWT accepts "exp": "123" and raises
        # OverflowError on "exp": 1e400.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
    }
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            issuer=issuer,
            audience=audience,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    except (ValueError, TypeError, OverflowError, RecursionError):
        # Whatever a crafted header or payload makes the parser raise, it is a bad token.
        raise TokenError("invalid token: malformed") from None
    if not isinstance(claims, dict):
        raise TokenError("invalid token: the payload is not a JSON object")
    check_times(claims, leeway_s=leeway_s, max_lifetime_s=max_lifetime_s, now=time.time() if now is None else now)
    if not isinstance(claims.get("sub"), str):
        raise TokenError("invalid token: sub must be a string")
    return claims


def verify_token(
    secret: str,
    token: str,
    *,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
    leeway_s: float = DEFAULT_LEEWAY_S,
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
    now: float | None = None,
) -> Identity:
    """Check a local (HS256) token: signature, claims, and a canonical user id subject.

    Args:
        secret: the HS256 key.
        token: the compact JWT, without the ``Bearer`` prefix.
        issuer: the required ``iss`` (``GEO_JWT_ISSUER``).
        audience: the required ``aud`` (``GEO_JWT_AUDIENCE``).
        leeway_s: clock skew allowed, seconds.
        max_lifetime_s: the longest lifetime accepted, seconds.
        now: the time, Unix seconds (default: the clock).

    Returns:
        The caller's identity, with the role the token claims.

    Raises:
        TokenError: with a message saying what is wrong.
    """
    claims = decode_claims(
        token,
        secret,
        algorithms=[ALGORITHM],
        issuer=issuer,
        audience=audience,
        leeway_s=leeway_s,
        max_lifetime_s=max_lifetime_s,
        now=now,
    )
    user_id = local_user_id(claims["sub"])
    raw_role = claims.get("role", Role.USER.value)
    try:
        role = Role(raw_role) if isinstance(raw_role, str) else None
    except ValueError:
        role = None
    if role is None:
        raise TokenError("invalid token: role must be one of user, owner, admin")
    return Identity(user_id, role, float(claims["exp"]))


def bearer_token(authorization: str | None) -> str:
    """Take the token out of an ``Authorization: Bearer <token>`` header value.

    Raises:
        TokenError: the header is absent or not a bearer credential.
    """
    if not authorization:
        raise TokenError("missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("Authorization must be 'Bearer <token>'")
    return token.strip()
