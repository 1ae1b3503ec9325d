"""The messages of the nearby-friends protocol for ``/asyncapi.json`` (:mod:`friends_ws.asyncapi`):
each frame's JSON Schema payload and an example. Server frames are closed
(``additionalProperties: false``), client frames open (the server ignores what it does not know).
"""

from __future__ import annotations

from typing import Any, get_args

from friends_ws.protocol import (
    MAX_TIMESTAMP_MS,
    INTERNAL_ERROR,
    INVALID_JSON,
    INVALID_MESSAGE,
    INVALID_TOKEN,
    INVALID_VALUE,
    MAX_RESUME_FRIENDS,
    RATE_LIMITED,
    SIGNED_OUT,
    UNAVAILABLE,
    LeftReason,
    Precision,
)
from friends_ws.discovery_frames import HANDLE
from friends_ws.strangers import StrangerLeftReason
from geo_common.friends_db import MAX_DISPLAY_NAME
from geo_common.tokens import MAX_USER_ID

ERROR_CODES = (INVALID_JSON, INVALID_MESSAGE, INVALID_VALUE, RATE_LIMITED, INVALID_TOKEN, UNAVAILABLE, INTERNAL_ERROR)


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _message(
    kind: str, summary: str, properties: dict[str, Any], example: dict[str, Any], *, required: list[str] | None = None
) -> dict[str, Any]:
    """The message of a frame ``{"type": kind, ...properties}``, with an example.

    Without ``required`` it is a server frame: every property is sent, and nothing else
    (``additionalProperties: false``). With it, a client frame: the server ignores what it does
    not know, so the payload stays open.
    """
    payload: dict[str, Any] = {
        "type": "object",
        "required": ["type", *(list(properties) if required is None else required)],
        "properties": {"type": {"const": kind}, **properties},
    }
    if required is None:
        payload["additionalProperties"] = False
    return {
        "name": kind,
        "title": kind,
        "summary": summary,
        "payload": payload,
        "examples": [{"payload": {"type": kind, **example}}],
    }


#: A sharing preference in force: in ``init``, and the answer to ``sharing``.
_SHARING: dict[str, Any] = {
    "enabled": {"type": "boolean"},
    "precision": {"enum": list(get_args(Precision))},
    "private_history": {"type": "boolean"},
}
_POSITION = {"latitude": ref("schemas", "Latitude"), "longitude": ref("schemas", "Longitude")}
_NAMED = {"user_id": ref("schemas", "UserId"), "display_name": ref("schemas", "DisplayName")}


def schemas(min_radius_m: float, max_radius_m: float) -> dict[str, Any]:
    return {
        "UserId": {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
        "Latitude": {"type": "number", "minimum": -90, "maximum": 90, "description": "degrees (WGS84)"},
        "Longitude": {"type": "number", "minimum": -180, "maximum": 180, "description": "degrees (WGS84)"},
        "Radius": {"type": "number", "minimum": min_radius_m, "maximum": max_radius_m, "description": "metres"},
        "Distance": {"type": "number", "minimum": 0, "description": "great-circle metres, to a tenth"},
        "UnixMs": {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP_MS, "description": "Unix milliseconds"},
        "DisplayName": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_DISPLAY_NAME},
        "Handle": {
            "type": ["string", "null"],
            "pattern": f"^{HANDLE.pattern}$",
            "description": "the name strangers see; null: no name (and never a user id)",
        },
        "Sharing": {
            "type": "object",
            "required": list(_SHARING),
            "additionalProperties": False,
            "properties": _SHARING,
        },
        "FriendInView": {
            "type": "object",
            "required": ["user_id", "latitude", "longitude", "distance_m", "updated_at"],
            "additionalProperties": False,
            "properties": {
                "user_id": ref("schemas", "UserId"),
                **_POSITION,
                "distance_m": ref("schemas", "Distance"),
                "updated_at": ref("schemas", "UnixMs"),
            },
        },
    }


def client_messages() -> dict[str, Any]:
    maybe_ms = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TIMESTAMP_MS}
    return {
        "location": _message(
            "location",
            "the user's position; the first of a connection is answered with init, or with resumed and only "
            "what changed when it carries a resume within GEO_WS_RESUME_S",
            {
                **_POSITION,
                "timestamp": maybe_ms,
                "resume": {
                    "type": "object",
                    "required": ["at"],
                    "description": "what a reconnecting client holds (its first location only)",
                    "properties": {
                        "at": {**ref("schemas", "UnixMs"), "description": "the newest server time received"},
                        "radius_m": ref("schemas", "Radius"),
                        "friends": {
                            "type": "object",
                            "maxProperties": MAX_RESUME_FRIENDS,
                            "propertyNames": {"pattern": "^[0-9]{1,19}$"},
                            "additionalProperties": ref("schemas", "UnixMs"),
                            "description": "friend id -> updated_at of the position held",
                        },
                    },
                },
            },
            {
                "latitude": 37.7749,
                "longitude": -122.4194,
                "timestamp": 1763890000123,
                "resume": {"at": 1763889990456, "radius_m": 8047.0, "friends": {"43": 1763889990456}},
            },
            required=["latitude", "longitude"],
        ),
        "signOut": _message(
            "sign_out",
            "the user signs out: their location is erased, friends see friend_left offline, the socket closes "
            f"with {SIGNED_OUT}",
            {},
            {},
            required=[],
        ),
        "settings": _message(
            "settings",
            "the radius within which friends are shown; answered with settingsApplied",
            {"radius_m": ref("schemas", "Radius")},
            {"radius_m": 1609.3},
            required=["radius_m"],
        ),
        "sharing": _message(
            "sharing",
            "whether and how precisely friends see the user (absent fields keep their value); answered "
            "with sharingApplied",
            {
                "enabled": {"type": "boolean"},
                "precision": {"enum": [*get_args(Precision), None]},
                "private_history": {"type": ["boolean", "null"]},
            },
            {"enabled": True, "precision": "coarse", "private_history": False},
            required=["enabled"],
        ),
        "discover": _message(
            "discover",
            "be seen by, and see, opted-in strangers nearby (coarse positions only; off by default); an absent "
            "handle keeps the current one; answered with discoverApplied",
            {"enabled": {"type": "boolean"}, "handle": ref("schemas", "Handle")},
            {"enabled": True, "handle": "ana_surfs"},
            required=["enabled"],
        ),
        "auth": _message(
            "auth",
            "a fresh token of the same user, before the connection's expires; answered with authAccepted",
            {"token": {"type": "string", "minLength": 1}},
            {"token": "<a fresh token>"},
            required=["token"],
        ),
    }


def server_messages() -> dict[str, Any]:
    friend_at = {"user_id": 43, "latitude": 37.7849, "longitude": -122.4094, "distance_m": 1417.3}
    return {
        "init": _message(
            "init",
            "after the first location of a connection: the friends in view, nearest first, the sharing in "
            "force, and the server's clock (at - updated_at: how old a friend's position is)",
            {
                "at": ref("schemas", "UnixMs"),
                "radius_m": ref("schemas", "Radius"),
                "friends": {"type": "array", "items": ref("schemas", "FriendInView")},
                "sharing": ref("schemas", "Sharing"),
            },
            {
                "at": 1763890000600,
                "radius_m": 8047.0,
                "friends": [{**friend_at, "updated_at": 1763890000456}],
                "sharing": {"enabled": True, "precision": "exact", "private_history": False},
            },
        ),
        "resumed": _message(
            "resumed",
            "after a first location with a resume within the window: friend_location and friend_left frames "
            "for what changed since what the client holds follow",
            {
                "radius_m": ref("schemas", "Radius"),
                "sharing": ref("schemas", "Sharing"),
                "at": ref("schemas", "UnixMs"),
            },
            {
                "radius_m": 8047.0,
                "sharing": {"enabled": True, "precision": "exact", "private_history": False},
                "at": 1763890000600,
            },
        ),
        "pace": _message(
            "pace",
            "send a location at least every interval_s seconds (GEO_PACE_FAST_S while a friend who shares with "
            "the user is connected and has them within their radius, GEO_PACE_SLOW_S otherwise); after init or "
            "resumed, and whenever it changes",
            {"interval_s": {"type": "integer", "minimum": 1, "description": "seconds"}},
            {"interval_s": 30},
        ),
        "friendLocation": _message(
            "friend_location",
            "a friend in view moved, or came into view",
            {
                "user_id": ref("schemas", "UserId"),
                **_POSITION,
                "distance_m": ref("schemas", "Distance"),
                "updated_at": ref("schemas", "UnixMs"),
                "sent_at": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TIMESTAMP_MS},
            },
            {**friend_at, "updated_at": 1763890030456, "sent_at": 1763890030120},
        ),
        "friendLeft": _message(
            "friend_left",
            "a friend left the user's view (treat an unknown reason like offline)",
            {"user_id": ref("schemas", "UserId"), "reason": {"enum": list(get_args(LeftReason))}},
            {"user_id": 43, "reason": "out_of_range"},
        ),
        "friendRequest": _message(
            "friend_request",
            "another user asked to be friends (answered over HTTP on geo-api)",
            _NAMED,
            {"user_id": 44, "display_name": "Ada"},
        ),
        "friendAdded": _message(
            "friend_added", "the user and user_id are friends now", _NAMED, {"user_id": 44, "display_name": None}
        ),
        "settingsApplied": _message(
            "settings",
            "the radius now in force (the answer to settings)",
            {"radius_m": ref("schemas", "Radius")},
            {"radius_m": 1609.3},
        ),
        "sharingApplied": _message(
            "sharing",
            "the sharing preference now in force (the answer to sharing, also sent to the user's other connections)",
            _SHARING,
            {"enabled": True, "precision": "coarse", "private_history": False},
        ),
        "discoverApplied": _message(
            "discover",
            "the discovery preference in force and the discovery radius (the answer to discover, also sent to "
            "the user's other connections, and after init while it is on)",
            {
                "enabled": {"type": "boolean"},
                "handle": ref("schemas", "Handle"),
                "radius_m": {"type": "number", "minimum": 0, "description": "metres (GEO_DISCOVER_RADIUS_M)"},
            },
            {"enabled": True, "handle": "ana_surfs", "radius_m": 2000.0},
        ),
        "stranger": _message(
            "stranger",
            "an opted-in stranger within the discovery radius, new or at a new coarse position (the centre of "
            "their geohash-6 cell); id is stable for this connection only",
            {
                "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                "handle": ref("schemas", "Handle"),
                **_POSITION,
                "distance_m": {"type": "integer", "minimum": 0, "description": "metres to the coarse position"},
                "updated_at": ref("schemas", "UnixMs"),
            },
            {
                "id": "5f0c2a9e41d7b3c8",
                "handle": None,
                "latitude": 37.7776,
                "longitude": -122.4152,
                "distance_m": 480,
                "updated_at": 1763890030456,
            },
        ),
        "strangerLeft": _message(
            "stranger_left",
            "a stranger shown is not any more (treat an unknown reason like offline)",
            {
                "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                "reason": {"enum": list(get_args(StrangerLeftReason))},
            },
            {"id": "5f0c2a9e41d7b3c8", "reason": "out_of_range"},
        ),
        "authAccepted": _message(
            "auth",
            "a fresh token was accepted: the connection lives until expires_at",
            {"expires_at": ref("schemas", "UnixMs")},
            {"expires_at": 1763893600000},
        ),
        "reconnect": _message(
            "reconnect",
            "the instance is shutting down: it closes this connection with 1001 in after_ms; reconnect then "
            "(elsewhere) and send a location with a resume. Friends do not see the user leave",
            {"after_ms": {"type": "integer", "minimum": 0, "description": "milliseconds"}},
            {"after_ms": 7350},
        ),
        "error": _message(
            "error",
            "a frame the server could not use; the connection stays open",
            {"code": {"enum": list(ERROR_CODES)}, "detail": {"type": "string"}},
            {"code": "invalid_value", "detail": "latitude must be between -90 and 90"},
        ),
    }
