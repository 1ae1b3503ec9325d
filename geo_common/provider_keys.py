"""An identity provider's public keys: a JWKS URL's (fetched in a thread, cached, refetched)
or one configured PEM key, and which algorithm each key may verify.

Only signing keys geo accepts are kept: RSA of 2048 bits or more (RS256), EC P-256 (ES256),
Ed25519 or Ed448 (EdDSA). The JWKS is re-read hourly, and on a key id it does not hold at most
every :data:`MIN_REFETCH_S` (tokens with made-up key ids cannot hammer the provider). Used by
:class:`geo_common.identity.Authenticator`.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from geo_common.settings import SettingsError
from geo_common.tokens import TokenError

log = logging.getLogger(__name__)

#: The JWKS is read again after this long even when every key id is known, seconds.
KEYS_MAX_AGE_S = 3600.0
#: An unknown key id makes the JWKS be read again at most this often, seconds.
MIN_REFETCH_S = 5.0
#: How long fetching the JWKS may take, seconds, and the most it may weigh, bytes.
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1 << 20

_KEY_TYPES = ("RSA", "EC", "OKP")


class KeysUnavailable(TokenError):
    """The provider's keys could not be loaded: the token may be fine (503 rather than 401)."""


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
    # The scheme was checked by check_jwks_url (https, or http on loopback).
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


class ProviderKeys:
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


def check_jwks_url(url: str) -> None:
    """Refuse a JWKS URL that is not https:// (http:// only on loopback).

    Raises:
        SettingsError: naming GEO_JWT_JWKS_URL.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SettingsError(f"GEO_JWT_JWKS_URL={url!r}: expected an https:// URL (http:// only on loopback)")
