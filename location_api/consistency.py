"""Consistency tokens: a write's WAL position, signed, which a read sends back to see that write.

Every write answers ``X-Consistency-Token: <lsn>.<mac>``: the primary's WAL position right
after the commit, as PostgreSQL prints it (``16/B374D848``), a dot, and a MAC of that position
(HMAC-SHA256 cut to 16 bytes, URL-safe base64 without padding: 22 characters). A read that
sends the token back is answered only from data that includes the write
(:meth:`geo_common.database.Database.read`'s ``min_lsn``).

Why a MAC: a token makes a read skip the in-memory indexes and the cache, and sends it to the
primary while the replicas are behind it, so a position of the client's choosing
(``FFFFFFFF/FFFFFFFF``) would turn every cheap search into primary queries. The key is
derived from ``GEO_JWT_SECRET``, as the paging cursors' is (:func:`location_api.cursor.cursor_key`)
but for another purpose, so every instance of one deployment accepts what any other issued
and nothing else; a token is a position some write really reached. One can still be ahead of
the primary (issued before a failover to a replica that lacked the write, or by a deployment
sharing the secret): the primary is asked only when no replica has replayed the token, and
then a position it has not reached is refused
(:class:`geo_common.database.AheadOfPrimary`, which :mod:`location_api.errors` answers with a
400 naming the header as every other token the API refuses).

Checking a token costs one HMAC and no query: a replica that has replayed it answers as
before (its position is known from the health checks, or asked on the connection the read
uses anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from functools import lru_cache

from geo_common.database_node import format_lsn, lsn_from_text
from location_api.errors import CONSISTENCY_HEADER as CONSISTENCY_HEADER  # the tokens' header, re-exported
from location_api.errors import InvalidRequest

_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
_MAC_BYTES = 16
_MAC_CHARS = 22  # base64 of 16 bytes, without its two "=" of padding
#: What every refused token is told: all a client can do is read without it.
NOT_ISSUED = "is not a token this API issued: send back the X-Consistency-Token of a write response unchanged"


@lru_cache(maxsize=4)
def consistency_key(jwt_secret: str) -> bytes:
    """The token signing key: derived from the JWT secret as the cursor key is, for another purpose.

    (Cached: every write and every read with a token needs it, and the secret never changes
    in a process.)
    """
    return hmac.new(jwt_secret.encode(), b"geo location_api consistency v1", hashlib.sha256).digest()


def _mac(key: bytes, lsn: int) -> str:
    digest = hmac.new(key, lsn.to_bytes(8, "big"), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_lsn(key: bytes, lsn: int) -> str:
    """The token of a WAL position.

    Args:
        key: from :func:`consistency_key`.
        lsn: a WAL position of the primary, 0 to 2**64 - 1.

    Returns:
        ``<lsn>.<mac>``, e.g. ``0/16B3748.Zy9h...`` (at most 40 characters).
    """
    return f"{format_lsn(lsn)}.{_mac(key, lsn)}"


def verify_token(key: bytes, raw: str) -> int:
    """The WAL position of a token this API issued.

    Args:
        key: from :func:`consistency_key`.
        raw: the header's value (surrounding blanks are ignored).

    Returns:
        The position.

    Raises:
        InvalidRequest: naming the header: the value is malformed, unsigned (a bare
            position), signed under another key or altered.
    """
    lsn_text, dot, mac = raw.strip().partition(".")
    if not dot or not _LSN.fullmatch(lsn_text) or len(mac) != _MAC_CHARS:
        raise InvalidRequest.field(CONSISTENCY_HEADER, NOT_ISSUED)
    lsn = lsn_from_text(lsn_text)
    # The position must be spelt as issued (upper case, no leading zeros): one token, one
    # spelling. The MAC is compared as bytes: a header may hold any character.
    if format_lsn(lsn) != lsn_text or not hmac.compare_digest(mac.encode(), _mac(key, lsn).encode()):
        raise InvalidRequest.field(CONSISTENCY_HEADER, NOT_ISSUED)
    return lsn


def issue_token(jwt_secret: str, lsn: int) -> str:
    """The ``X-Consistency-Token`` value of a write that reached ``lsn`` on the primary.

    Args:
        jwt_secret: ``Settings.jwt_secret`` (the key is derived from it).
        lsn: the primary's position after the commit (:func:`location_api.queries.visible_lsn`).
    """
    return sign_lsn(consistency_key(jwt_secret), lsn)


def read_token(headers: Mapping[str, str], jwt_secret: str) -> int | None:
    """The position of the token a read sent back, checked; pass it on as ``min_lsn``.

    Args:
        headers: the request's headers.
        jwt_secret: ``Settings.jwt_secret``.

    Returns:
        The WAL position, or ``None`` when the header is absent.

    Raises:
        InvalidRequest: naming the header, for any value this API did not issue.
    """
    raw = headers.get(CONSISTENCY_HEADER)
    return None if raw is None else verify_token(consistency_key(jwt_secret), raw)
