"""Opaque tokens the API hands out and takes back (paging cursors): a payload sealed with its
keyed BLAKE2b MAC (``hashlib``), in URL-safe base64 without padding.

A client can read nothing useful from one and change nothing in it: :func:`unseal` gives the
payload back only when the MAC under the API's key holds. ``person`` keeps the tokens of one
use from being taken for another's (BLAKE2b's personalization; empty by default).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

#: Bytes of a token's MAC.
MAC_BYTES = 16


def _mac(key: bytes, payload: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(payload, key=key, digest_size=MAC_BYTES, person=person).digest()


def seal(key: bytes, payload: bytes, *, person: bytes = b"") -> str:
    """The token of ``payload`` under ``key`` (at most 64 bytes)."""
    return base64.urlsafe_b64encode(payload + _mac(key, payload, person)).rstrip(b"=").decode()


def unseal(key: bytes, token: str, size: int, *, person: bytes = b"") -> bytes | None:
    """The payload of a token sealed under ``key``, or ``None`` when it is not one of ``size``
    bytes made by :func:`seal` under that key and person (malformed or tampered with)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(payload) != size or not hmac.compare_digest(mac, _mac(key, payload, person)):
        return None
    return payload
