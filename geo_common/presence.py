"""Where a user's live location is kept and how processes tell each other about it (pure).

Both services use these names and formats: the WebSocket tier writes locations and
publishes them; the HTTP API publishes friendship changes and erases cached locations.

Redis names, all under ``GEO_REDIS_NAMESPACE`` and the user's home region, with the user id
as the hash tag so that a user's key and channels share one Redis Cluster slot:

* ``{ns}:{region}:loc:{<id>}``: the cached location (JSON, with a TTL);
* ``{ns}:{region}:seq:{<id>}``: the newest sequence number of the user's background uploads;
* ``{ns}:{region}:ch:{<id>}``: the location channel (updates and departures);
* ``{ns}:{region}:ctl:{<id>}``: the control channel (friendship changes for that user);
* ``{ns}:{region}:erasures``: erasures, heard by every ``geo-friends`` instance (default region).

Messages are compact JSON objects with a ``t`` (type) field; see ``docs/pubsub.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

LeftReason = Literal["offline", "sharing_off"]
#: What a user lets one viewer see (``removed``: they are no longer friends).
AccessLevel = Literal["exact", "coarse", "hidden", "removed"]
#: Every :data:`AccessLevel`.
ACCESS_LEVELS = ("exact", "coarse", "hidden", "removed")


class PresenceFormatError(ValueError):
    """A pub/sub message or cached value is not in the expected format."""


def location_key(namespace: str, region: str, user_id: int) -> str:
    """The Redis key of a user's cached location."""
    return f"{namespace}:{region}:loc:{{{user_id}}}"


def sequence_key(namespace: str, region: str, user_id: int) -> str:
    """The Redis key of the newest sequence number of a user's background uploads."""
    return f"{namespace}:{region}:seq:{{{user_id}}}"


def location_channel(namespace: str, region: str, user_id: int) -> str:
    """The channel a user's location updates and departures are published on."""
    return f"{namespace}:{region}:ch:{{{user_id}}}"


def control_channel(namespace: str, region: str, user_id: int) -> str:
    """The channel on which a user's live connections hear about friendship changes."""
    return f"{namespace}:{region}:ctl:{{{user_id}}}"


def erasures_channel(namespace: str, region: str) -> str:
    """The channel every ``geo-friends`` instance hears erasures on (in the default region)."""
    return f"{namespace}:{region}:erasures"


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
            marks the cached location away; not part of the published message).
        live: sent from an open WebSocket whose user is looking (not a background upload),
            and that socket has not closed since.
        radius_m: the sender's radius then, metres (whom they watch; 0 when not live).
    """

    user_id: int
    latitude: float
    longitude: float
    updated_at: int
    sent_at: int | None = None
    connection: str = ""
    live: bool = False
    radius_m: float = 0.0


@dataclass(frozen=True, slots=True)
class Left:
    """A user stopped sharing (``sharing_off``) or went away (``offline``)."""

    user_id: int
    reason: LeftReason


@dataclass(frozen=True, slots=True)
class Access:
    """What ``user_id`` lets ``viewer`` see changed (``level``): sent on the user's location
    channel, so it reaches the viewer's instance before any location published after it."""

    user_id: int
    viewer: int
    level: AccessLevel


@dataclass(frozen=True, slots=True)
class Moved:
    """The user's channels moved to ``region``: followers follow them there."""

    user_id: int
    region: str


@dataclass(frozen=True, slots=True)
class Watching:
    """Whether the user is connected and looking (``live``), and their radius, metres: sent when
    a socket of theirs closes or their radius changes, so followers' instances know whom they
    watch (the pace of the user's friends, :mod:`friends_ws.pace`)."""

    user_id: int
    live: bool
    radius_m: float


ChannelMessage = Location | Left | Access | Moved | Watching


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
            "w": location.live,
            "rad": location.radius_m,
        }
    )


def encode_watching(watching: Watching) -> bytes:
    """A change of whether the user is connected and looking, as a location-channel message."""
    return orjson.dumps({"t": "watch", "u": watching.user_id, "w": watching.live, "rad": watching.radius_m})


def encode_left(left: Left) -> bytes:
    """A departure as a location-channel message."""
    return orjson.dumps({"t": "left", "u": left.user_id, "r": left.reason})


def encode_access(access: Access) -> bytes:
    """A change of what one viewer may see, as a location-channel message."""
    return orjson.dumps({"t": "access", "u": access.user_id, "v": access.viewer, "l": access.level})


def encode_moved(moved: Moved) -> bytes:
    """A move of the user's channels, as a location-channel message."""
    return orjson.dumps({"t": "moved", "u": moved.user_id, "region": moved.region})


def decode_channel_message(data: bytes) -> ChannelMessage:
    """Read a location-channel message.

    Raises:
        PresenceFormatError: not a message of this format.
    """
    try:
        msg = orjson.loads(data)
        kind = msg["t"]
        if kind == "loc":
            return Location(
                int(msg["u"]),
                float(msg["lat"]),
                float(msg["lon"]),
                int(msg["at"]),
                _opt_int(msg.get("sent")),
                live=msg.get("w") is True,
                radius_m=float(msg.get("rad", 0.0)),
            )
        if kind == "watch":
            return Watching(int(msg["u"]), msg["w"] is True, float(msg["rad"]))
        if kind == "left" and msg["r"] in ("offline", "sharing_off"):
            return Left(int(msg["u"]), msg["r"])
        if kind == "access" and msg["l"] in ACCESS_LEVELS:
            return Access(int(msg["u"]), int(msg["v"]), msg["l"])
        if kind == "moved":
            return Moved(int(msg["u"]), str(msg["region"]))
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
            "w": location.live,
            "rad": location.radius_m,
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
            user_id,
            float(v["lat"]),
            float(v["lon"]),
            int(v["at"]),
            _opt_int(v.get("sent")),
            str(v.get("c", "")),
            live=v.get("w") is True,
            radius_m=float(v.get("rad", 0.0)),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise PresenceFormatError(f"not a cached location: {data[:80]!r}") from None


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
