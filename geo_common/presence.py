"""Where a user's live location is kept and how processes tell each other about it (pure).

Both services use these names and formats: the WebSocket tier writes locations and
publishes them; the HTTP API publishes friendship changes and erases cached locations.

Redis names, all under ``GEO_REDIS_NAMESPACE`` and the user's home region, with the user id
as the hash tag so that a user's key and channels share one Redis Cluster slot:

* ``{ns}:{region}:loc:{<id>}``: the cached location (JSON, with a TTL);
* ``{ns}:{region}:ch:{<id>}``: the location channel (updates and departures);
* ``{ns}:{region}:ctl:{<id>}``: the control channel (friendship changes for that user).

Messages are compact JSON objects with a ``t`` (type) field; see ``docs/pubsub.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

LeftReason = Literal["offline", "sharing_off"]


class PresenceFormatError(ValueError):
    """A pub/sub message or cached value is not in the expected format."""


def location_key(namespace: str, region: str, user_id: int) -> str:
    """The Redis key of a user's cached location."""
    return f"{namespace}:{region}:loc:{{{user_id}}}"


def location_channel(namespace: str, region: str, user_id: int) -> str:
    """The channel a user's location updates and departures are published on."""
    return f"{namespace}:{region}:ch:{{{user_id}}}"


def control_channel(namespace: str, region: str, user_id: int) -> str:
    """The channel on which a user's live connections hear about friendship changes."""
    return f"{namespace}:{region}:ctl:{{{user_id}}}"


# --- the location channel -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """A shared location (already coarsened when the user shares coarsely).

    Attributes:
        user_id: whose.
        latitude: degrees.
        longitude: degrees.
        updated_at: when the server received it, Unix milliseconds.
        sent_at: the client's own timestamp, Unix milliseconds, if it sent one.
        connection: the id of the connection that sent it (so only that connection's close
            clears the cache; not part of the published message).
    """

    user_id: int
    latitude: float
    longitude: float
    updated_at: int
    sent_at: int | None = None
    connection: str = ""


@dataclass(frozen=True, slots=True)
class Left:
    """A user stopped sharing (``sharing_off``) or went away (``offline``)."""

    user_id: int
    reason: LeftReason


def encode_location(location: Location) -> bytes:
    """A location as a location-channel message."""
    return orjson.dumps(
        {
            "t": "loc",
            "u": location.user_id,
            "lat": location.latitude,
            "lon": location.longitude,
            "at": location.updated_at,
            "sent": location.sent_at,
        }
    )


def encode_left(left: Left) -> bytes:
    """A departure as a location-channel message."""
    return orjson.dumps({"t": "left", "u": left.user_id, "r": left.reason})


def decode_channel_message(data: bytes) -> Location | Left:
    """Read a location-channel message.

    Raises:
        PresenceFormatError: not a message of this format.
    """
    try:
        msg = orjson.loads(data)
        kind = msg["t"]
        if kind == "loc":
            return Location(
                int(msg["u"]), float(msg["lat"]), float(msg["lon"]), int(msg["at"]), _opt_int(msg.get("sent"))
            )
        if kind == "left" and msg["r"] in ("offline", "sharing_off"):
            return Left(int(msg["u"]), msg["r"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    raise PresenceFormatError(f"not a location-channel message: {data[:80]!r}")


def encode_cached(location: Location) -> bytes:
    """A location as stored under :func:`location_key`."""
    return orjson.dumps(
        {
            "lat": location.latitude,
            "lon": location.longitude,
            "at": location.updated_at,
            "sent": location.sent_at,
            "c": location.connection,
        }
    )


def decode_cached(user_id: int, data: bytes | str) -> Location:
    """Read a cached location.

    Raises:
        PresenceFormatError: not a cached location.
    """
    try:
        v = orjson.loads(data)
        return Location(
            user_id, float(v["lat"]), float(v["lon"]), int(v["at"]), _opt_int(v.get("sent")), str(v.get("c", ""))
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise PresenceFormatError(f"not a cached location: {data[:80]!r}") from None


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


# --- the control channel --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FriendAdded:
    """The user gained a friend, whose channels live in ``region`` (None: the default)."""

    friend_id: int
    region: str | None


@dataclass(frozen=True, slots=True)
class FriendRemoved:
    """The user lost a friend."""

    friend_id: int


@dataclass(frozen=True, slots=True)
class FriendMoved:
    """A friend's channels moved to another region (the friend got a home region)."""

    friend_id: int
    region: str


@dataclass(frozen=True, slots=True)
class HomeMoved:
    """The user's own channels moved to ``region`` (their other connections follow)."""

    region: str


@dataclass(frozen=True, slots=True)
class SharingChanged:
    """The user changed their sharing preference on one connection (``origin``); the others follow."""

    enabled: bool
    precision: str
    origin: str = ""


Control = FriendAdded | FriendRemoved | FriendMoved | HomeMoved | SharingChanged


def encode_control(event: Control) -> bytes:
    """A control-channel message."""
    if isinstance(event, FriendAdded):
        return orjson.dumps({"t": "friend_added", "u": event.friend_id, "region": event.region})
    if isinstance(event, FriendRemoved):
        return orjson.dumps({"t": "friend_removed", "u": event.friend_id})
    if isinstance(event, FriendMoved):
        return orjson.dumps({"t": "friend_moved", "u": event.friend_id, "region": event.region})
    if isinstance(event, HomeMoved):
        return orjson.dumps({"t": "home_moved", "region": event.region})
    return orjson.dumps(
        {"t": "sharing", "enabled": event.enabled, "precision": event.precision, "origin": event.origin}
    )


def decode_control(data: bytes) -> Control:
    """Read a control-channel message.

    Raises:
        PresenceFormatError: not a control message.
    """
    try:
        msg = orjson.loads(data)
        kind = msg["t"]
        if kind == "friend_added":
            region = msg.get("region")
            return FriendAdded(int(msg["u"]), None if region is None else str(region))
        if kind == "friend_removed":
            return FriendRemoved(int(msg["u"]))
        if kind == "friend_moved":
            return FriendMoved(int(msg["u"]), str(msg["region"]))
        if kind == "home_moved":
            return HomeMoved(str(msg["region"]))
        if kind == "sharing" and isinstance(msg["enabled"], bool) and msg["precision"] in ("exact", "coarse"):
            return SharingChanged(msg["enabled"], msg["precision"], str(msg.get("origin", "")))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    raise PresenceFormatError(f"not a control message: {data[:80]!r}")
