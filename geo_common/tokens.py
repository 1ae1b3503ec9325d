"""Signed bearer tokens (HS256 JWT): who the caller is and what role they hold.

In production an identity provider issues these; locally ``geo-token`` mints them with the
key in :attr:`Settings.jwt_secret`. The subject (``sub``) is the user id; the services never
take a user id from anything but a verified token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import jwt

ALGORITHM = "HS256"


class Role(str, Enum):
    """What a token allows: ``user`` reads and shares locations; ``owner`` and ``admin`` write businesses."""

    USER = "user"
    OWNER = "owner"
    ADMIN = "admin"


class TokenError(ValueError):
    """The token is missing, malformed, badly signed, expired, or its claims are invalid."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller."""

    user_id: int
    role: Role


def mint_token(
    secret: str, user_id: int, role: Role = Role.USER, *, ttl_s: int = 86_400, now: float | None = None
) -> str:
    """Sign a token for a user.

    Args:
        secret: the HS256 key.
        user_id: the user, a positive integer (the ``sub`` claim, as a string per RFC 7519).
        role: the role claim.
        ttl_s: lifetime in seconds.
        now: the issue time, Unix seconds (default: the clock).

    Returns:
        The compact JWT.

    Raises:
        TokenError: ``user_id`` is not a positive integer.
    """
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise TokenError(f"user_id must be a positive integer, got {user_id!r}")
    issued = int(time.time() if now is None else now)
    claims = {"sub": str(user_id), "role": Role(role).value, "iat": issued, "exp": issued + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Identity:
    """Check a token's signature, expiry and claims.

    Args:
        secret: the HS256 key.
        token: the compact JWT, without the ``Bearer`` prefix.

    Returns:
        The caller's identity.

    Raises:
        TokenError: with a message saying what is wrong.
    """
    if not token:
        raise TokenError("missing token")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isdigit() or int(sub) < 1:
        raise TokenError("invalid token: sub must be a positive integer user id")
    try:
        role = Role(claims.get("role", Role.USER.value))
    except ValueError:
        raise TokenError(f"invalid token: unknown role {claims.get('role')!r}") from None
    return Identity(int(sub), role)


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
