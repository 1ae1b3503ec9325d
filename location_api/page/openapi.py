"""The OpenAPI 3.1 path items of the map page's routes (:mod:`location_api.page.views`).

Self-contained (problem responses inline, the ``bearer`` security scheme by name), so the
API's document merges them: ``paths.update(page_openapi_paths(role, dev=dev))``.
"""

from __future__ import annotations

from typing import Any

from geo_common.tokens import MAX_USER_ID
from geo_common.tokens import Role as TokenRole
from location_api.contract import Role
from location_api.page.watch import MAX_WATCH_LIMIT

_PROBLEM = "application/problem+json"


def page_openapi_paths(role: Role, *, dev: bool) -> dict[str, Any]:
    """The path items of the routes an instance of this role (and dev mode) serves."""
    if not role.reads:
        return {}

    def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        response: dict[str, Any] = {"description": description, "content": {_PROBLEM: {"schema": {"type": "object"}}}}
        if headers:
            response["headers"] = headers
        return response

    def json_object(schema: dict[str, Any]) -> dict[str, Any]:
        return {"application/json": {"schema": {"type": "object", **schema}}}

    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "the live map page (search, friends, watch); see docs/map.md",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
            }
        },
        "/static/{path}": {
            "get": {
                "summary": "a file of the map page: scripts, styles, vendored libraries and their licences",
                "parameters": [
                    {"name": "path", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                ],
                "responses": {
                    "200": {"description": "the file", "content": {"*/*": {"schema": {"type": "string"}}}},
                    "404": problem("no such file"),
                },
            }
        },
        "/v1/page/config": {
            "get": {
                "summary": "what the map page needs: the WebSocket tier's URL, search and friends limits",
                "responses": {
                    "200": {
                        "description": "the configuration",
                        "content": json_object(
                            {
                                "required": ["friends_ws_url", "dev", "search", "friends", "watch"],
                                "properties": {"friends_ws_url": {"type": "string"}, "dev": {"type": "boolean"}},
                            }
                        ),
                    }
                },
            }
        },
        "/v1/watch/positions": {
            "get": {
                "summary": "a sample of the users' cached locations, for watching a load test (admin)",
                "description": "Keys are walked with SCAN and the walk stops at `limit` positions; `complete` "
                "says whether every cached location was seen. Unknown query parameters are refused (400).",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_WATCH_LIMIT},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "the sample",
                        "content": json_object(
                            {
                                "required": ["limit", "complete", "positions"],
                                "properties": {
                                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_WATCH_LIMIT},
                                    "complete": {"type": "boolean"},
                                    "positions": {
                                        "type": "array",
                                        "maxItems": MAX_WATCH_LIMIT,
                                        "items": {
                                            "type": "object",
                                            "required": ["user_id", "latitude", "longitude", "updated_at"],
                                            "properties": {
                                                "user_id": {"type": "integer", "minimum": 1},
                                                "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                                                "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                                                "updated_at": {"type": "integer", "description": "Unix milliseconds"},
                                            },
                                        },
                                    },
                                },
                            }
                        ),
                    },
                    "400": problem("an unknown or malformed parameter"),
                    "401": problem("no valid bearer token", {"WWW-Authenticate": {"schema": {"type": "string"}}}),
                    "403": problem("the token is not an admin's"),
                    "503": problem(
                        "a region's location cache did not answer", {"Retry-After": {"schema": {"type": "string"}}}
                    ),
                },
            }
        },
    }
    if dev:
        roles = [r.value for r in TokenRole]
        paths["/v1/dev/token"] = {
            "post": {
                "summary": "development only (GEO_DEV=1): a bearer token for any user and role",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["user_id"],
                                "additionalProperties": False,
                                "properties": {
                                    "user_id": {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
                                    "role": {"enum": roles},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the token",
                        "content": json_object(
                            {
                                "required": ["token", "user_id", "role", "expires_in"],
                                "properties": {
                                    "token": {"type": "string"},
                                    "user_id": {"type": "integer"},
                                    "role": {"enum": roles},
                                    "expires_in": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    "400": problem("the body is not the JSON object described; `errors` names each field"),
                    "413": problem("the body is too large"),
                },
            }
        }
    return paths
