"""The OpenAPI 3.1 path items of the user routes: friendships (``location_api.friends.friendship_views``),
privacy (``location_api.friends.privacy_views``) and stored locations (``location_api.friends.erase_views``).

Self-contained (problem responses inline, the ``bearer`` security scheme and the
``ConsistencyToken`` parameter by name), so the API's document merges them:
``paths.update(friendship_openapi_paths(role))``. The bodies are those of
docs/friends-protocol.md, "Friendships over HTTP".
"""

from __future__ import annotations

from typing import Any

from geo_common.friends_db import MAX_DISPLAY_NAME, PRECISIONS, SHARES
from geo_common.tokens import MAX_USER_ID
from location_api.contract import MAX_BODY_BYTES, Role
from location_api.friends.user_paging import (
    DEFAULT_EXPORT_LIMIT,
    DEFAULT_LIST_LIMIT,
    LIST_STATES,
    MAX_CURSOR_CHARS,
    MAX_EXPORT_LIMIT,
    MAX_LIST_LIMIT,
)
from location_api.consistency import CONSISTENCY_HEADER

_JSON = "application/json"
_PROBLEM = "application/problem+json"
_ID = {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID}
_TIME = {"type": "string", "format": "date-time"}
_NEXT = {"type": ["string", "null"], "description": "the cursor of the next page (opaque); null on the last"}
_REMOVED = {
    "enum": ["friendship", "request_withdrawn", "request_declined", "nothing"],
    "description": "what ended: the friendship, the user's request, the other's request, or nothing",
}
_TOKEN = {
    CONSISTENCY_HEADER: {
        "description": "the primary's WAL position after the write, signed; send it back unchanged on a GET "
        "to read this write",
        "schema": {"type": "string", "pattern": "^[0-9A-F]{1,8}/[0-9A-F]{1,8}[.][A-Za-z0-9_-]{22}$"},
    }
}
_SECURED: list[dict[str, list[str]]] = [{"bearer": []}]


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {_PROBLEM: {"schema": {"type": "object"}}}}
    if headers:
        response["headers"] = headers
    return response


def _object(**properties: Any) -> dict[str, Any]:
    """A JSON object with exactly these properties, all required."""
    return {"type": "object", "required": list(properties), "additionalProperties": False, "properties": properties}


def _answer(description: str, schema: dict[str, Any], *, write: bool) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {_JSON: {"schema": schema}}}
    if write:
        response["headers"] = _TOKEN
    return response


def _path_id(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _ID}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _page_parameters(default: int, maximum: int) -> list[dict[str, Any]]:
    return [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}, "page size"),
        _query(
            "cursor",
            {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_CHARS, "pattern": "^[A-Za-z0-9_-]+$"},
            "`next` of the previous page of the same list (opaque, signed: any other value is a 400)",
        ),
        {"$ref": "#/components/parameters/ConsistencyToken"},
    ]


def _operation(
    summary: str,
    parameters: list[dict[str, Any]],
    answers: dict[str, Any],
    *,
    bad: str,
    body: dict[str, Any] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": f"{summary} (the user or an admin)",
        "security": _SECURED,
        "parameters": parameters,
        "responses": {
            **answers,
            "400": _problem(bad),
            "401": _problem("no bearer token, or a malformed, badly signed or expired one"),
            "403": _problem("a valid token of neither the user nor an admin"),
            "503": _problem(
                "a database is unavailable, or Redis could not tell the live connections (the change is kept; "
                "retrying is safe)",
                {"Retry-After": {"schema": {"type": "string"}}},
            ),
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
        operation["responses"]["413"] = _problem(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if description is not None:
        operation["description"] = description
    return operation


def friendship_openapi_paths(role: Role) -> dict[str, Any]:
    """The path items of the user routes an instance of this role serves."""
    paths: dict[str, Any] = {}
    if role.reads:
        _read_paths(paths)
    if role.writes:
        _write_paths(paths)
    return paths


def _read_paths(paths: dict[str, Any]) -> None:
    user = [_path_id("id", "the user")]
    list_parameters = _page_parameters(DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
    bad_list = "a malformed id, an unknown or repeated parameter, a bad state or limit, or a cursor not of this list"
    friend = _object(
        user_id=_ID, display_name={"type": ["string", "null"]}, since=_TIME, sharing={"enum": list(SHARES)}
    )
    incoming = _object(user_id=_ID, display_name={"type": ["string", "null"]}, since=_TIME)
    outgoing = _object(user_id=_ID, since=_TIME)
    lists = [
        _object(user_id=_ID, **{state: {"type": "array", "maxItems": MAX_LIST_LIMIT, "items": item}}, next=_NEXT)
        for state, item in (("friends", friend), ("incoming", incoming), ("outgoing", outgoing))
    ]
    paths["/v1/users/{id}/friends"] = {
        "get": _operation(
            "a user's friends, incoming or outgoing requests, by user id, a page at a time",
            [
                *user,
                _query(
                    "state",
                    {"enum": list(LIST_STATES), "default": "friends"},
                    "friends (with what the user shares with each), incoming requests (with the asker's name), "
                    "or the user's own requests not answered yet",
                ),
                *list_parameters,
            ],
            {"200": _answer("the page; the list is named by state", {"oneOf": lists}, write=False)},
            bad=bad_list,
            description="Unknown query parameters are refused (400).",
        )
    }
    blocks = _object(user_id=_ID, since=_TIME)
    paths["/v1/users/{id}/blocks"] = {
        "get": _operation(
            "the users a user blocked, by user id, a page at a time",
            [*user, *list_parameters],
            {
                "200": _answer(
                    "the page",
                    _object(
                        user_id=_ID, blocks={"type": "array", "maxItems": MAX_LIST_LIMIT, "items": blocks}, next=_NEXT
                    ),
                    write=False,
                )
            },
            bad=bad_list,
        )
    }
    sharing = _object(
        enabled={"type": "boolean"}, precision={"enum": list(PRECISIONS)}, private_history={"type": "boolean"}
    )
    profile = _object(user_id=_ID, display_name={"type": ["string", "null"]}, sharing=sharing)
    paths.setdefault("/v1/users/{id}/profile", {})["get"] = _operation(
        "a user's display name and the sharing in force (defaults for a user never seen)",
        [*user, {"$ref": "#/components/parameters/ConsistencyToken"}],
        {"200": _answer("the profile", profile, write=False)},
        bad="a malformed id or consistency token",
    )
    location = _object(
        latitude={"type": "number", "minimum": -90, "maximum": 90, "description": "degrees"},
        longitude={"type": "number", "minimum": -180, "maximum": 180, "description": "degrees"},
        recorded_at={**_TIME, "description": "when the server received it"},
        sent_at={"type": ["string", "null"], "format": "date-time", "description": "the client's own time, if sent"},
    )
    paths["/v1/users/{id}/locations/export"] = {
        "get": _operation(
            "a user's own location history, oldest first, a page at a time",
            [*user, *_page_parameters(DEFAULT_EXPORT_LIMIT, MAX_EXPORT_LIMIT)],
            {
                "200": _answer(
                    "the page",
                    _object(
                        user_id=_ID,
                        locations={"type": "array", "maxItems": MAX_EXPORT_LIMIT, "items": location},
                        next=_NEXT,
                    ),
                    write=False,
                )
            },
            bad="a malformed id, an unknown or repeated parameter, a bad limit, or a cursor not of this list",
            description="Unknown query parameters are refused (400).",
        )
    }


def _write_paths(paths: dict[str, Any]) -> None:
    user = [_path_id("id", "the user")]
    pair = [*user, _path_id("friend_id", "the other user")]
    relation = _object(user_id=_ID, friend_id=_ID, state={"enum": ["requested", "friends"]})
    friends = paths.setdefault("/v1/users/{id}/friends/{friend_id}", {})
    friends["post"] = _operation(
        "ask to be friends, or accept friend_id's request by asking back; an admin makes them friends at once",
        pair,
        {
            "202": _answer(
                "requested (also when friend_id blocked the user: the request goes nowhere)", relation, write=True
            ),
            "201": _answer(
                "friends now: friend_id had asked first, or an admin made them friends", relation, write=True
            ),
            "200": _answer("they already were friends", relation, write=True),
            "409": _problem(
                "blocked: the user blocked friend_id (for an admin: either blocked the other); friend-limit: a user "
                "would have more than GEO_MAX_FRIENDS friends; request-limit: the user has GEO_MAX_PENDING_REQUESTS "
                "requests waiting"
            ),
            "429": _problem(
                "too-many-requests: the user asked more than GEO_MAX_FRIEND_REQUESTS_PER_MIN users this minute "
                "(accepting a request is not counted)",
                {"Retry-After": {"description": "seconds until the window ends", "schema": {"type": "integer"}}},
            ),
        },
        bad="a malformed id, or a user befriending themself",
    )
    friends["delete"] = _operation(
        "withdraw the user's request, decline friend_id's, or end the friendship (idempotent)",
        pair,
        {"200": _answer("what ended", _object(user_id=_ID, friend_id=_ID, removed=_REMOVED), write=True)},
        bad="a malformed id, or the same user twice",
    )
    paths["/v1/users/{id}/friends/{friend_id}/sharing"] = {
        "put": _operation(
            "what the user shares with one friend: exact (the global precision), coarse, or hidden",
            pair,
            {
                "200": _answer(
                    "stored", _object(user_id=_ID, friend_id=_ID, sharing={"enum": list(SHARES)}), write=True
                ),
                "404": _problem("they are not friends"),
            },
            bad='a malformed id, or a body that is not {"sharing": one of exact, coarse, hidden}',
            body=_object(sharing={"enum": list(SHARES)}),
        )
    }
    blocked = [*user, _path_id("blocked_id", "the user blocked")]
    block = paths.setdefault("/v1/users/{id}/blocks/{blocked_id}", {})
    block["put"] = _operation(
        "block a user: any friendship or request between them ends at once, and blocked_id's requests go nowhere",
        blocked,
        {"200": _answer("blocked", _object(user_id=_ID, blocked_id=_ID, removed=_REMOVED), write=True)},
        bad="a malformed id, or a user blocking themself",
    )
    block["delete"] = _operation(
        "lift a block",
        blocked,
        {
            "200": _answer(
                "unblocked is false when there was no block",
                _object(user_id=_ID, blocked_id=_ID, unblocked={"type": "boolean"}),
                write=True,
            )
        },
        bad="a malformed id",
    )
    name = {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_DISPLAY_NAME, "pattern": "^[^\\u0000]*$"}
    paths.setdefault("/v1/users/{id}/profile", {})["put"] = _operation(
        "set (or with null clear) the display name friends and the users asked see",
        user,
        {"200": _answer("stored", _object(user_id=_ID, display_name=name), write=True)},
        bad=f'a malformed id, or a body that is not {{"display_name": 1 to {MAX_DISPLAY_NAME} characters or null}}',
        body=_object(display_name=name),
    )
    erased = _object(
        user_id=_ID,
        history_rows_deleted={"type": "integer", "minimum": 0},
        cached_location_deleted={"type": "boolean"},
        home_region_cleared={"type": "boolean"},
        instances_notified={"type": "integer", "minimum": 0, "description": "geo-friends instances that heard it"},
    )
    paths["/v1/users/{id}/locations"] = {
        "delete": _operation(
            "erase a user's location history, cached location and home region",
            user,
            {"200": _answer("erased", erased, write=True)},
            bad="a malformed id",
        )
    }
