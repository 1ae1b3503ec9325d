"""The messages of a user's control channel and of the erasure channel (pure).

The control channel (``{ns}:{region}:ctl:{<id>}``, :func:`geo_common.presence.control_channel`)
tells each of the user's connections what changed for them: friendships, what a friend shares,
requests, erasure, their home region, their sharing and discovery preferences. The erasure
channel (:func:`geo_common.presence.erasures_channel`) tells every ``geo-friends`` instance to
drop a user's buffered history. Messages are compact JSON objects with a ``t`` (type) field;
see ``docs/pubsub.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from geo_common.presence import ACCESS_LEVELS, AccessLevel, PresenceFormatError, optional_str


@dataclass(frozen=True, slots=True)
class FriendAdded:
    """The user gained a friend, whose channels live in ``region`` (None: the default)."""

    friend_id: int
    region: str | None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class FriendShares:
    """What the friend shares with the user changed; the user's sessions re-read it from the
    primary (the message says when to look, the database what is true)."""

    friend_id: int
    level: AccessLevel


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """Another user asked the user to be friends."""

    from_id: int
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Erased:
    """The user's locations were erased: their home region is forgotten too."""


@dataclass(frozen=True, slots=True)
class FriendRemoved:
    """The user lost a friend."""

    friend_id: int


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
    private_history: bool = False


@dataclass(frozen=True, slots=True)
class DiscoveryChanged:
    """The user changed whether strangers nearby see them on one connection (``origin``)."""

    enabled: bool
    handle: str | None
    origin: str = ""


@dataclass(frozen=True, slots=True)
class SpeakerLeft:
    """The connection (``origin``) that last put the user in their discovery cell closed and
    took them out of it; another connection of theirs with discovery on puts them back."""

    origin: str = ""


Control = (
    FriendAdded
    | FriendRemoved
    | HomeMoved
    | SharingChanged
    | FriendShares
    | RequestReceived
    | Erased
    | DiscoveryChanged
    | SpeakerLeft
)


def encode_control(event: Control) -> bytes:
    """A control-channel message."""
    if isinstance(event, FriendAdded):
        return orjson.dumps(
            {"t": "friend_added", "u": event.friend_id, "region": event.region, "name": event.display_name}
        )
    if isinstance(event, FriendShares):
        return orjson.dumps({"t": "friend_shares", "u": event.friend_id, "l": event.level})
    if isinstance(event, RequestReceived):
        return orjson.dumps({"t": "request", "u": event.from_id, "name": event.display_name})
    if isinstance(event, Erased):
        return orjson.dumps({"t": "erased"})
    if isinstance(event, FriendRemoved):
        return orjson.dumps({"t": "friend_removed", "u": event.friend_id})
    if isinstance(event, HomeMoved):
        return orjson.dumps({"t": "home_moved", "region": event.region})
    if isinstance(event, DiscoveryChanged):
        return orjson.dumps({"t": "discover", "enabled": event.enabled, "handle": event.handle, "origin": event.origin})
    if isinstance(event, SpeakerLeft):
        return orjson.dumps({"t": "speaker_left", "origin": event.origin})
    return orjson.dumps(
        {
            "t": "sharing",
            "enabled": event.enabled,
            "precision": event.precision,
            "origin": event.origin,
            "history": event.private_history,
        }
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
            return FriendAdded(int(msg["u"]), optional_str(msg.get("region")), optional_str(msg.get("name")))
        if kind == "friend_shares" and msg["l"] in ACCESS_LEVELS:
            return FriendShares(int(msg["u"]), msg["l"])
        if kind == "request":
            return RequestReceived(int(msg["u"]), optional_str(msg.get("name")))
        if kind == "erased":
            return Erased()
        if kind == "friend_removed":
            return FriendRemoved(int(msg["u"]))
        if kind == "home_moved":
            return HomeMoved(str(msg["region"]))
        if kind == "discover" and isinstance(msg["enabled"], bool):
            return DiscoveryChanged(msg["enabled"], optional_str(msg.get("handle")), str(msg.get("origin", "")))
        if kind == "speaker_left":
            return SpeakerLeft(str(msg.get("origin", "")))
        if kind == "sharing" and isinstance(msg["enabled"], bool) and msg["precision"] in ("exact", "coarse"):
            return SharingChanged(
                msg["enabled"], msg["precision"], str(msg.get("origin", "")), bool(msg.get("history", False))
            )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    raise PresenceFormatError(f"not a control message: {data[:80]!r}")


def encode_erasure(user_id: int) -> bytes:
    """An erasure-channel message: drop every buffered history row of ``user_id``."""
    return orjson.dumps({"t": "erased", "u": user_id})


def decode_erasure(data: bytes) -> int:
    """The user id of an erasure-channel message.

    Raises:
        PresenceFormatError: not an erasure message.
    """
    try:
        msg = orjson.loads(data)
        if msg["t"] == "erased":
            return int(msg["u"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    raise PresenceFormatError(f"not an erasure message: {data[:80]!r}")
