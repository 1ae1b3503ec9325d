"""Who a bearer token names: local tokens and an identity provider's, checked the same way.

:class:`Authenticator` is built from :class:`~geo_common.settings.Settings` and does two things:

* :meth:`Authenticator.verify` checks a token and returns its :class:`Claims`. The unverified
  ``iss`` picks the key: ``GEO_JWT_ISSUER``, a local token (HS256, ``GEO_JWT_SECRET``, as
  ``geo-token`` mints them); ``GEO_JWT_PROVIDER_ISSUER``, the identity provider's (RS256,
  ES256 or EdDSA; ``GEO_JWT_JWKS_URL`` or ``GEO_JWT_PUBLIC_KEY``). Each issuer is held to its
  own algorithms. ``aud``, ``exp`` and the lifetime are checked by
  :func:`geo_common.tokens.decode_claims`. Every failure, however malformed the token, is a
  :class:`~geo_common.tokens.TokenError`.
* :meth:`Authenticator.identity_of` turns claims into the internal :class:`Identity`. A local
  subject is the user id itself, spelled canonically (``"0012"`` is refused, not user 12). A
  provider's subject is an opaque string (``auth0|abc``), mapped to a user id of its own on
  first use (:func:`geo_common.identity_db.user_id_for`). Provider tokens always act as
  :attr:`Role.USER`: the role claim is the provider's to define, not geo's, so owners and
  admins use local tokens signed with the operator's key.

The provider's keys (a JWKS fetched in a thread, cached, re-read hourly and on an unknown
key id, or one PEM key) are :mod:`geo_common.provider_keys`'s.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import asyncpg
import jwt

from geo_common.friends_db import Executor
from geo_common.identity_db import user_id_for
from geo_common.provider_keys import MIN_REFETCH_S, ProviderKeys, check_jwks_url
from geo_common.settings import Settings, SettingsError
from geo_common.tokens import (
    ALGORITHM,
    Identity,
    Role,
    TokenError,
    check_size,
    decode_claims,
    local_user_id,
    verify_token,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Algorithms an identity provider may sign with (never HS256: its key would be shared).
PROVIDER_ALGORITHMS = ("RS256", "ES256", "EdDSA")
#: The longest provider subject accepted, characters (the identities table's limit).
MAX_SUBJECT_CHARS = 255
#: Provider subjects whose user id is remembered in memory (the mapping never changes).
USER_ID_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says.

    Attributes:
        issuer: ``iss``: the local issuer or the provider's.
        subject: ``sub``: a canonical user id for local tokens, the provider's string otherwise.
        role: the role claim of a local token; always :attr:`Role.USER` for a provider's.
        expires_at: ``exp``, Unix seconds.
    """

    issuer: str
    subject: str
    role: Role
    expires_at: float


def provider_subject(subject: object) -> str:
    """A provider's subject, checked: 1 to :data:`MAX_SUBJECT_CHARS` characters of text.

    Raises:
        TokenError: not a string, empty, too long, or holding control characters or lone
            surrogates (which PostgreSQL's ``text`` cannot store).
    """
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise TokenError(f"invalid token: sub must be 1 to {MAX_SUBJECT_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in subject):
        raise TokenError("invalid token: sub holds control characters")
    return subject


def _peek(token: str) -> tuple[dict[str, Any], object]:
    """The unverified header and ``iss`` of a compact JWT (only to choose the key)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("invalid token: not a compact JWT")
    try:
        header = json.loads(jwt.utils.base64url_decode(parts[0]))
        payload = json.loads(jwt.utils.base64url_decode(parts[1]))
    except (ValueError, TypeError, RecursionError):
        raise TokenError("invalid token: malformed") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenError("invalid token: header and payload must be JSON objects")
    return header, payload.get("iss")


class Primary(Protocol):
    """Runs a query on the primary database (each service's database object has ``write``)."""

    async def write(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T: ...


class Authenticator:
    """Verifies bearer tokens and names their users; see the module docstring.

    Args:
        settings: the ``GEO_JWT_*`` settings. Nothing is read or fetched until a token comes.
        min_refetch_s: the least time between two reads of the provider's keys, seconds.

    Raises:
        SettingsError: the provider settings are inconsistent; the message names them.
    """

    def __init__(self, settings: Settings, *, min_refetch_s: float = MIN_REFETCH_S) -> None:
        self._secret = settings.jwt_secret
        self._local_issuer = settings.jwt_issuer
        self._provider_issuer = settings.jwt_provider_issuer
        self._audience = settings.jwt_audience
        self._leeway_s = settings.jwt_leeway_s
        self._max_lifetime_s = settings.jwt_max_lifetime_s
        self._user_ids: dict[tuple[str, str], int] = {}
        self._keys: ProviderKeys | None = None
        url, key = settings.jwt_jwks_url, settings.jwt_public_key
        if not self._provider_issuer:
            if url or key:
                raise SettingsError("GEO_JWT_JWKS_URL and GEO_JWT_PUBLIC_KEY need GEO_JWT_PROVIDER_ISSUER")
            return
        if self._provider_issuer == self._local_issuer:
            raise SettingsError("GEO_JWT_PROVIDER_ISSUER must differ from GEO_JWT_ISSUER")
        if bool(url) == bool(key):
            raise SettingsError("GEO_JWT_PROVIDER_ISSUER needs exactly one of GEO_JWT_JWKS_URL, GEO_JWT_PUBLIC_KEY")
        if url:
            check_jwks_url(url)
        self._keys = ProviderKeys(url, key, min_refetch_s)

    async def verify(self, token: str, *, now: float | None = None) -> Claims:
        """Check a token: signature, issuer, audience, times, subject.

        Args:
            token: the compact JWT, without ``Bearer``.
            now: the time, Unix seconds (default: the clock).

        Returns:
            Its claims.

        Raises:
            KeysUnavailable: a provider's token came and its keys could not be loaded.
            TokenError: anything wrong with the token, said in the message.
        """
        check_size(token)
        header, issuer = _peek(token)
        algorithm = header.get("alg")
        if not isinstance(issuer, str):
            raise TokenError("invalid token: no iss claim")
        if issuer == self._local_issuer:
            if algorithm != ALGORITHM:
                raise TokenError(f"invalid token: tokens of issuer {issuer!r} must be signed with {ALGORITHM}")
            identity = verify_token(
                self._secret,
                token,
                issuer=issuer,
                audience=self._audience,
                leeway_s=self._leeway_s,
                max_lifetime_s=self._max_lifetime_s,
                now=now,
            )
            assert identity.expires_at is not None  # verify_token always sets it
            return Claims(issuer, str(identity.user_id), identity.role, identity.expires_at)
        if self._keys is None or issuer != self._provider_issuer:
            raise TokenError("invalid token: iss is not an issuer this service trusts")
        if algorithm not in PROVIDER_ALGORITHMS:
            raise TokenError(f"invalid token: the identity provider's tokens must use {', '.join(PROVIDER_ALGORITHMS)}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("invalid token: kid must be a string")
        key = await self._keys.key_for(kid, str(algorithm))
        claims = decode_claims(
            token,
            key,
            algorithms=[str(algorithm)],
            issuer=issuer,
            audience=self._audience,
            leeway_s=self._leeway_s,
            max_lifetime_s=self._max_lifetime_s,
            now=now,
        )
        return Claims(issuer, provider_subject(claims["sub"]), Role.USER, float(claims["exp"]))

    def cached_identity(self, claims: Claims) -> Identity | None:
        """The identity of verified claims when it needs no database: a local token's, or a
        provider subject seen before by this process; None otherwise.

        Raises:
            TokenError: the issuer is not trusted, or the subject is not valid for it.
        """
        if claims.issuer == self._local_issuer:
            return Identity(local_user_id(claims.subject), claims.role, claims.expires_at)
        if self._keys is None or claims.issuer != self._provider_issuer:
            raise TokenError("invalid token: iss is not an issuer this service trusts")
        user_id = self._user_ids.get((claims.issuer, provider_subject(claims.subject)))
        return None if user_id is None else Identity(user_id, Role.USER, claims.expires_at)

    async def identity_of(self, claims: Claims, primary: Executor) -> Identity:
        """The internal identity of verified claims.

        Args:
            claims: from :meth:`verify`.
            primary: the primary database (a pool or a connection); used only the first time
                this process sees a provider subject, which may create its user.

        Returns:
            The user id and role; a provider's subject always has :attr:`Role.USER`.

        Raises:
            TokenError: the issuer is not trusted, or the subject is not valid for it.
        """
        known = self.cached_identity(claims)
        if known is not None:
            return known
        user_id = await user_id_for(primary, claims.issuer, claims.subject)
        if len(self._user_ids) >= USER_ID_CACHE_SIZE:
            del self._user_ids[next(iter(self._user_ids))]  # the oldest entry
        self._user_ids[(claims.issuer, claims.subject)] = user_id
        return Identity(user_id, Role.USER, claims.expires_at)

    async def identify(self, token: str, primary: Primary) -> tuple[Claims, Identity]:
        """:meth:`verify` a token, then name its user: :meth:`cached_identity`, else
        :meth:`identity_of` run on ``primary`` (the one time a provider subject is new here).

        Args:
            token: the compact JWT, without ``Bearer``.
            primary: runs a query on the primary database (``write``), under whatever
                breaker the service keeps.

        Raises:
            KeysUnavailable, TokenError: as :meth:`verify`; and whatever ``primary.write`` raises.
        """
        claims = await self.verify(token)
        identity = self.cached_identity(claims)
        if identity is None:
            identity = await primary.write(lambda conn: self.identity_of(claims, conn))
        return claims, identity

    async def close(self) -> None:
        """Release what the authenticator holds (nothing yet: fetches are one-shot threads)."""
