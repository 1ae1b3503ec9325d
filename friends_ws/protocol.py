"""The client protocol, sans I/O: client frames in, server frames out.

:func:`parse_client_message` turns a text frame into an event or raises
:class:`InvalidMessage` (with the ``code`` the client receives); the ``encode_*`` functions
build the server's frames. Nothing here touches a socket, so every rule is unit-tested with
plain values. The protocol is described, with examples, in ``docs/friends-protocol.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import orjson

from friends_ws.discovery_frames import HANDLE, DiscoverUpdate

#: Why a friend left the user's view.
LeftReason = Literal["out_of_range", "offline", "expired", "sharing_off", "unfriended"]
Precision = Literal["exact", "coarse"]

# Error codes sent in {"type": "error", "code": ...}.
INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
INVALID_VALUE = "invalid_value"
RATE_LIMITED = "rate_limited"
INVALID_TOKEN = "invalid_token"
UNAVAILABLE = "unavailable"
INTERNAL_ERROR = "internal_error"

#: The close code of a connection whose token expired before a fresh one came (an ``auth`` frame).
TOKEN_EXPIRED = 4001
#: Close code: the user signed out (``sign_out``).
SIGNED_OUT = 1000

#: Largest client timestamp accepted (year 9999), Unix milliseconds.
MAX_TIMESTAMP_MS = 253_402_300_799_999


class FriendsError(Exception):
    """Base class of the friends tier's domain errors."""


class InvalidMessage(FriendsError, ValueError):
    """A client frame that cannot be used; the connection stays open.

    Attributes:
        code: the error code sent to the client.
        detail: a human-readable explanation.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Resume:
    """What a reconnecting client holds: ``{"at", "radius_m"?, "friends": {id: updated_at}}``.

    Attributes:
        at: the newest server time the client received, Unix ms (the window is judged on it).
        radius_m: its radius on the connection it lost (None: the default).
        friends: each friend it shows -> the ``updated_at`` of the position it holds.
    """

    at: int
    radius_m: float | None
    friends: dict[int, int] = field(repr=False)


@dataclass(frozen=True, slots=True)
class LocationUpdate:
    """``{"type": "location", "latitude", "longitude", "timestamp"?, "resume"?}``: degrees;
    client Unix ms; what a reconnecting client holds (its first location only)."""

    kind: ClassVar[str] = "location"
    latitude: float
    longitude: float
    timestamp: int | None = None
    resume: Resume | None = None


@dataclass(frozen=True, slots=True)
class SignOut:
    """``{"type": "sign_out"}``: the user leaves; friends see them go at once."""

    kind: ClassVar[str] = "sign_out"


@dataclass(frozen=True, slots=True)
class SettingsUpdate:
    """``{"type": "settings", "radius_m"}``: metres, within the server's bounds."""

    kind: ClassVar[str] = "settings"
    radius_m: float


@dataclass(frozen=True, slots=True)
class SharingUpdate:
    """``{"type": "sharing", "enabled", "precision"?, "private_history"?}``; a None keeps the
    current value."""

    kind: ClassVar[str] = "sharing"
    enabled: bool
    precision: Precision | None = None
    private_history: bool | None = None


@dataclass(frozen=True, slots=True)
class Sharing:
    """A user's sharing preference: whether friends see them, at which precision, and whether
    the history keeps the exact point whatever friends see."""

    enabled: bool = True
    precision: str = "exact"
    private_history: bool = False

    def updated(self, update: SharingUpdate) -> Sharing:
        """The preference after a ``sharing`` message (absent fields keep their value)."""
        return Sharing(
            update.enabled,
            update.precision or self.precision,
            self.private_history if update.private_history is None else update.private_history,
        )

    def as_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "precision": self.precision, "private_history": self.private_history}


@dataclass(frozen=True, slots=True)
class AuthUpdate:
    """``{"type": "auth", "token"}``: a fresh bearer token of the same user, before the
    connection's one expires (never shown in a repr: reprs end up in logs)."""

    kind: ClassVar[str] = "auth"
    token: str = field(repr=False)


ClientEvent = LocationUpdate | SettingsUpdate | SharingUpdate | AuthUpdate | SignOut | DiscoverUpdate

#: The most friends a ``resume`` may name (a 4 KiB frame holds fewer anyway).
MAX_RESUME_FRIENDS = 5000


def _number(msg: dict[str, Any], name: str, lo: float, hi: float) -> float:
    value = msg.get(name)
    # bool is an int in Python; true is not a latitude.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidMessage(INVALID_VALUE, f"{name} must be a number")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidMessage(INVALID_VALUE, f"{name} must be between {lo:g} and {hi:g}")
    return value


def parse_client_message(data: str | bytes, *, min_radius_m: float, max_radius_m: float) -> ClientEvent:
    """Validate one client frame.

    Args:
        data: the frame's text.
        min_radius_m: the smallest radius a client may set, metres.
        max_radius_m: the largest radius a client may set, metres.

    Returns:
        The event.

    Raises:
        InvalidMessage: the frame is not JSON, not an object, of an unknown type, or holds a
            bad value; ``code`` says which.
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidMessage(INVALID_JSON, "the frame is not valid JSON") from None
    if not isinstance(msg, dict):
        raise InvalidMessage(INVALID_MESSAGE, "a message must be a JSON object")
    kind = msg.get("type")
    if kind == "location":
        latitude = _number(msg, "latitude", -90.0, 90.0)
        longitude = _number(msg, "longitude", -180.0, 180.0)
        timestamp = msg.get("timestamp")
        if timestamp is not None and not _is_ms(timestamp):
            raise InvalidMessage(INVALID_VALUE, "timestamp must be a whole number of Unix milliseconds")
        resume = msg.get("resume")
        if resume is not None:
            resume = _resume(resume, min_radius_m, max_radius_m)
        return LocationUpdate(latitude, longitude, timestamp, resume)
    if kind == "sign_out":
        return SignOut()
    if kind == "settings":
        return SettingsUpdate(_number(msg, "radius_m", min_radius_m, max_radius_m))
    if kind == "sharing":
        enabled = msg.get("enabled")
        if not isinstance(enabled, bool):
            raise InvalidMessage(INVALID_VALUE, "enabled must be true or false")
        precision = msg.get("precision")
        if precision is not None and precision not in ("exact", "coarse"):
            raise InvalidMessage(INVALID_VALUE, 'precision must be "exact" or "coarse"')
        private_history = msg.get("private_history")
        if private_history is not None and not isinstance(private_history, bool):
            raise InvalidMessage(INVALID_VALUE, "private_history must be true or false")
        return SharingUpdate(enabled, precision, private_history)
    if kind == "auth":
        token = msg.get("token")
        if not isinstance(token, str) or not token:
            raise InvalidMessage(INVALID_VALUE, "token must be a non-empty string")
        return AuthUpdate(token)
    if kind == "discover":
        enabled = msg.get("enabled")
        if not isinstance(enabled, bool):
            raise InvalidMessage(INVALID_VALUE, "enabled must be true or false")
        if "handle" not in msg:
            return DiscoverUpdate(enabled)
        handle = msg["handle"]
        if handle is not None and not (isinstance(handle, str) and HANDLE.fullmatch(handle)):
            raise InvalidMessage(INVALID_VALUE, "handle must be null or 3 to 30 letters, digits, '_', '.' or '-'")
        return DiscoverUpdate(enabled, handle, keep_handle=False)
    if kind is None:
        raise InvalidMessage(INVALID_MESSAGE, 'a message needs a "type"')
    raise InvalidMessage(INVALID_MESSAGE, f"unknown message type {str(kind)[:40]!r}")


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TIMESTAMP_MS


def _resume(resume: object, min_radius_m: float, max_radius_m: float) -> Resume:
    if not isinstance(resume, dict):
        raise InvalidMessage(INVALID_VALUE, "resume must be an object")
    at = resume.get("at")
    if not _is_ms(at):
        raise InvalidMessage(INVALID_VALUE, "resume.at must be a whole number of Unix milliseconds")
    radius_m = None
    if resume.get("radius_m") is not None:
        radius_m = _number(resume, "radius_m", min_radius_m, max_radius_m)
    held = resume.get("friends", {})
    if not isinstance(held, dict) or len(held) > MAX_RESUME_FRIENDS:
        raise InvalidMessage(INVALID_VALUE, f"resume.friends must be an object of at most {MAX_RESUME_FRIENDS} friends")
    friends = {}
    for key, updated_at in held.items():
        if not (key.isascii() and key.isdigit() and 0 < len(key) <= 19) or not _is_ms(updated_at):
            raise InvalidMessage(
                INVALID_VALUE, "resume.friends maps user ids to the updated_at (Unix ms) of the position held"
            )
        friends[int(key)] = updated_at
    return Resume(at, radius_m, friends)  # type: ignore[arg-type]


# --- server frames -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FriendPosition:
    """A friend in view: degrees, metres, Unix milliseconds."""

    user_id: int
    latitude: float
    longitude: float
    distance_m: float
    updated_at: int
    sent_at: int | None = None


def _metres(distance_m: float) -> float:
    """A distance (metres, >= 0, finite) to the nearest tenth: ``round(distance_m, 1)``, faster.

    Away from a tie the nearest tenth is the nearest whole number of tenths over ten (``fl(10
    d)`` is within 2e-8 of ``10 d`` on Earth); within 1e-4 of a tie ``round`` decides."""
    tenths = distance_m * 10.0
    whole = math.floor(tenths + 0.5)
    if abs(tenths - whole) < 0.4999:
        return whole / 10.0
    return round(distance_m, 1)


def encode_init(radius_m: float, friends: list[FriendPosition], sharing: Sharing, at: int) -> bytes:
    """``init``: the friends in view when the user's first location arrives, nearest first,
    the user's sharing preference in force (stored on the server, so a client learns it
    without changing it), and the server's clock (Unix ms: how old each position is)."""
    return orjson.dumps(
        {
            "type": "init",
            "at": at,
            "radius_m": radius_m,
            "friends": [
                {
                    "user_id": f.user_id,
                    "latitude": f.latitude,
                    "longitude": f.longitude,
                    "distance_m": _metres(f.distance_m),
                    "updated_at": f.updated_at,
                }
                for f in friends
            ],
            "sharing": sharing.as_json(),
        }
    )


def encode_resumed(radius_m: float, sharing: Sharing, at: int) -> bytes:
    """``resumed``: a reconnection within the window; only what changed follows."""
    return orjson.dumps({"type": "resumed", "radius_m": radius_m, "sharing": sharing.as_json(), "at": at})


def encode_pace(interval_s: int) -> bytes:
    """``pace``: send a location at least every ``interval_s`` seconds."""
    return orjson.dumps({"type": "pace", "interval_s": interval_s})


def encode_friend_location(friend: FriendPosition) -> bytes:
    """``friend_location``: a friend in view moved (or came into view)."""
    return orjson.dumps(
        {
            "type": "friend_location",
            "user_id": friend.user_id,
            "latitude": friend.latitude,
            "longitude": friend.longitude,
            "distance_m": _metres(friend.distance_m),
            "updated_at": friend.updated_at,
            "sent_at": friend.sent_at,
        }
    )


FramePattern = tuple[bytes, bytes]
"""A ``friend_location`` frame without its distance: built once per update, completed per viewer."""


def friend_location_pattern(
    user_id: int, latitude: float, longitude: float, updated_at: int, sent_at: int | None
) -> FramePattern:
    """The parts of a ``friend_location`` frame that are the same for every viewer.

    One update fans out to every friend in range and only ``distance_m`` differs, so the rest
    is encoded once; :func:`complete_friend_location` adds the distance. The result equals
    :func:`encode_friend_location`'s.
    """
    head = orjson.dumps(
        {"type": "friend_location", "user_id": user_id, "latitude": latitude, "longitude": longitude, "distance_m": 0}
    )
    tail = orjson.dumps({"updated_at": updated_at, "sent_at": sent_at})
    return head[:-2], b"," + tail[1:]


def complete_friend_location(pattern: FramePattern, distance_m: float) -> bytes:
    """A viewer's ``friend_location`` frame: the pattern plus the distance, metres."""
    return pattern[0] + orjson.dumps(_metres(distance_m)) + pattern[1]


def encode_friend_left(user_id: int, reason: LeftReason) -> bytes:
    """``friend_left``: a friend left the user's view, and why."""
    return orjson.dumps({"type": "friend_left", "user_id": user_id, "reason": reason})


def encode_settings(radius_m: float) -> bytes:
    """``settings``: the radius now in force (the answer to a settings message)."""
    return orjson.dumps({"type": "settings", "radius_m": radius_m})


def encode_sharing(sharing: Sharing) -> bytes:
    """``sharing``: the sharing preference now in force."""
    return orjson.dumps({"type": "sharing", **sharing.as_json()})


def encode_friend_added(user_id: int, display_name: str | None) -> bytes:
    """``friend_added``: the user and ``user_id`` are friends now."""
    return orjson.dumps({"type": "friend_added", "user_id": user_id, "display_name": display_name})


def encode_friend_request(user_id: int, display_name: str | None) -> bytes:
    """``friend_request``: ``user_id`` asked the user to be friends."""
    return orjson.dumps({"type": "friend_request", "user_id": user_id, "display_name": display_name})


def encode_auth(expires_at: int) -> bytes:
    """``auth``: a fresh token was accepted; the connection lives until ``expires_at`` (Unix ms)."""
    return orjson.dumps({"type": "auth", "expires_at": expires_at})


def encode_reconnect(after_ms: int) -> bytes:
    """``reconnect``: the instance is draining; this connection closes (1001) in ``after_ms`` ms."""
    return orjson.dumps({"type": "reconnect", "after_ms": after_ms})


def encode_error(code: str, detail: str) -> bytes:
    """``error``: a message was refused; the connection stays open."""
    return orjson.dumps({"type": "error", "code": code, "detail": detail})
