"""The frames of nearby-stranger discovery (pure): the client's ``discover`` message and the
server's ``discover``, ``stranger`` and ``stranger_left`` frames.

A stranger is named by an opaque ``id`` that the connection's own secret derives from their
user id (:func:`stranger_id`): stable for as long as the connection lives, different on every
other connection, so it cannot be used to follow anyone from one session to the next. Their
user id is never sent; their ``handle`` only when they chose one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import ClassVar

import orjson

#: A public handle: what strangers nearby see of a user who chose one (geo_common migration 0017).
HANDLE = re.compile(r"[A-Za-z0-9_.-]{3,30}")


@dataclass(frozen=True, slots=True)
class DiscoverUpdate:
    """``{"type": "discover", "enabled", "handle"?}``: be seen by (and see) strangers nearby;
    an absent ``handle`` keeps the current one (``keep_handle``), null clears it."""

    kind: ClassVar[str] = "discover"
    enabled: bool
    handle: str | None = None
    keep_handle: bool = True


def stranger_id(secret: bytes, user_id: int) -> str:
    """The id one connection shows for a stranger: 16 hex digits of an HMAC of the user id."""
    return hmac.new(secret, user_id.to_bytes(8, "big", signed=True), hashlib.sha256).hexdigest()[:16]


def encode_discover(enabled: bool, handle: str | None, radius_m: float) -> bytes:
    """``discover``: the user's discovery preference in force, and the discovery radius, metres."""
    return orjson.dumps({"type": "discover", "enabled": enabled, "handle": handle, "radius_m": radius_m})


def encode_stranger(
    sid: str, handle: str | None, latitude: float, longitude: float, distance_m: float, updated_at: int
) -> bytes:
    """``stranger``: an opted-in stranger in range (new, or at a new coarse position)."""
    return orjson.dumps(
        {
            "type": "stranger",
            "id": sid,
            "handle": handle,
            "latitude": latitude,
            "longitude": longitude,
            "distance_m": round(distance_m),
            "updated_at": updated_at,
        }
    )


def encode_stranger_left(sid: str, reason: str) -> bytes:
    """``stranger_left``: a stranger shown is no longer (``out_of_range``, ``offline``,
    ``expired`` or ``hidden``)."""
    return orjson.dumps({"type": "stranger_left", "id": sid, "reason": reason})
