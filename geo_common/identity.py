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

The JWKS is fetched in a thread, cached, re-read hourly and on a key id it does not hold, at
most every :data:`MIN_REFETCH_S` (tokens with made-up key ids cannot hammer the provider).
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import logging
import time
import unicodedata
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from geo_common.friends_db import Executor
from geo_common.identity_db import user_id_for
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

#: Algorithms an identity provider may sign with (never HS256: its key would be shared).
PROVIDER_ALGORITHMS = ("RS256", "ES256", "EdDSA")
#: The longest provider subject accepted, characters (the identities table's limit).
MAX_SUBJECT_CHARS = 255
#: The JWKS is read again after this long even when every key id is known, seconds.
KEYS_MAX_AGE_S = 3600.0
#: An unknown key id makes the JWKS be read again at most this often, seconds.
MIN_REFETCH_S = 5.0
#: How long fetching the JWKS may take, seconds, and the most it may weigh, bytes.
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1 << 20
#: Provider subjects whose user id is remembered in memory (the mapping never changes).
USER_ID_CACHE_SIZE = 100_000
_KEY_TYPES = ("RSA", "EC", "OKP")


class KeysUnavailable(TokenError):
    """The provider's keys could not be loaded: the token may be fine (503 rather than 401)."""


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


def _key_algorithm(key: Any) -> str | None:
    """The one provider algorithm a public key may verify, or None for a key geo refuses."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256" if key.key_size >= 2048 else None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256" if isinstance(key.curve, ec.SECP256R1) else None
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    return None


def parse_jwks(document: object) -> dict[str | None, tuple[Any, str]]:
    """The signing keys of a JWKS that geo accepts: key id -> (public key, algorithm).

    Keys for encryption, of other types or algorithms, weaker than 2048-bit RSA, or whose
    declared ``alg`` does not match their type are skipped. A key without ``kid`` is filed
    under None.

    Raises:
        ValueError: the document is not a JWKS.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS (a JSON object with a keys list)")
    keys: dict[str | None, tuple[Any, str]] = {}
    for entry in document["keys"]:
        usable = isinstance(entry, dict) and entry.get("use", "sig") == "sig" and entry.get("kty") in _KEY_TYPES
        if not usable:
            continue
        kid = entry.get("kid")
        try:
            jwk = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        algorithm = _key_algorithm(jwk.key)
        if algorithm is None or jwk.algorithm_name != algorithm or not (kid is None or isinstance(kid, str)):
            continue
        keys[kid] = (jwk.key, algorithm)
    return keys


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another https:// URL (urllib would also follow ftp://)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme != "https":
            raise ValueError("the JWKS URL redirects off https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch_jwks(url: str) -> dict[str | None, tuple[Any, str]]:
    """Read and parse the JWKS (blocking: run it in a thread)."""
    # The scheme is checked in Authenticator.__init__ (https, or http on loopback).
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "geo"})  # noqa: S310
    opener = urllib.request.build_opener(_HttpsRedirects)
    with opener.open(request, timeout=FETCH_TIMEOUT_S) as response:
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
    return parse_jwks(json.loads(body))


def _pem_key(pem: bytes) -> tuple[Any, str]:
    key = load_pem_public_key(pem)
    algorithm = _key_algorithm(key)
    if algorithm is None:
        raise ValueError("the key must be RSA (2048 bits or more), EC P-256 or Ed25519/Ed448")
    return key, algorithm


class _ProviderKeys:
    """The provider's public keys: a JWKS URL's (cached, refetched) or one configured key."""

    def __init__(self, jwks_url: str, public_key: str, min_refetch_s: float) -> None:
        self._url = jwks_url
        self._min_refetch_s = min_refetch_s
        self._pem_path: Path | None = None
        self._keys: dict[str | None, tuple[Any, str]] = {}
        self._fetched_at = -float("inf")  # time.monotonic() of the last attempt
        self._loaded = False
        self._lock = asyncio.Lock()
        if public_key.startswith("-----BEGIN"):
            try:
                self._keys = {None: _pem_key(public_key.encode())}
            except ValueError as exc:
                raise SettingsError(f"GEO_JWT_PUBLIC_KEY: {exc}") from None
            self._loaded = True
        elif public_key:
            self._pem_path = Path(public_key)

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        """The key that verifies a token with this ``kid`` header and ``alg``.

        Raises:
            KeysUnavailable: no keys could be loaded.
            TokenError: no key has this id, or the key is not for this algorithm.
        """
        age = time.monotonic() - self._fetched_at
        if (not self._loaded or (self._url and age > KEYS_MAX_AGE_S)) and age >= self._min_refetch_s:
            await self._load()
        if not self._loaded:
            raise KeysUnavailable("the identity provider's keys are unavailable")
        found = self._find(kid)
        if found is None and self._url and time.monotonic() - self._fetched_at >= self._min_refetch_s:
            await self._load()  # the provider may have rotated its keys
            found = self._find(kid)
        if found is None:
            raise TokenError("invalid token: signed with a key the identity provider does not publish")
        key, key_algorithm = found
        if key_algorithm != algorithm:
            raise TokenError(f"invalid token: alg {algorithm} does not match the key ({key_algorithm})")
        return key

    def _find(self, kid: str | None) -> tuple[Any, str] | None:
        if kid in self._keys:
            return self._keys[kid]  # else a token without kid, or one configured key: if no choice
        if (kid is None or not self._url) and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return None

    async def _load(self) -> None:
        attempt = time.monotonic()
        async with self._lock:
            if self._fetched_at >= attempt:
                return  # loaded by another caller while this one waited
            try:
                keys: dict[str | None, tuple[Any, str]]
                if self._pem_path is not None:
                    keys = {None: _pem_key(await asyncio.to_thread(self._pem_path.read_bytes))}
                else:
                    keys = await asyncio.to_thread(_fetch_jwks, self._url)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self._fetched_at = time.monotonic()
                source = str(self._pem_path) if self._pem_path is not None else self._url
                if self._loaded:
                    log.warning("could not refresh the identity provider's keys from %s: %s", source, exc)
                    return
                log.error("could not load the identity provider's keys from %s: %s", source, exc)
                raise KeysUnavailable("the identity provider's keys are unavailable") from None
            self._keys, self._loaded, self._fetched_at = keys, True, time.monotonic()


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SettingsError(f"GEO_JWT_JWKS_URL={url!r}: expected an https:// URL (http:// only on loopback)")


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
        self._keys: _ProviderKeys | None = None
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
            _check_jwks_url(url)
        self._keys = _ProviderKeys(url, key, min_refetch_s)

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

    async def close(self) -> None:
        """Release what the authenticator holds (nothing yet: fetches are one-shot threads)."""
