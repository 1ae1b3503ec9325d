"""The OpenAPI 3.1 path items of the friendship routes (``location_api.friendship_views``).

Self-contained (problem responses inline, the ``bearer`` security scheme by name), so the
API's document merges them: ``paths.update(friendship_openapi_paths(role))``.
"""

from __future__ import annotations

from typing import Any

from location_api.settings import Role
from location_api.validate import CONSISTENCY_HEADER

MAX_USER_ID = 2**63 - 1


def friendship_openapi_paths(role: Role) -> dict[str, Any]:
    """The path items of the routes an instance of this role serves."""

    def problem(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/problem+json": {"schema": {"type": "object"}}}}

    def user_id(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
        }

    errors = {
        "400": problem("a malformed id, or a user befriending themself"),
        "401": problem("no valid bearer token"),
        "403": problem("neither the user nor an admin"),
        "503": problem("a database or Redis is unavailable; retrying is safe"),
    }
    token = {CONSISTENCY_HEADER: {"schema": {"type": "string"}, "description": "send back on a GET to read this write"}}
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    json_object = {"application/json": {"schema": {"type": "object"}}}
    paths: dict[str, Any] = {}
    if role.reads:
        paths["/v1/users/{id}/friends"] = {
            "get": {
                "summary": "a user's friends (the user or an admin)",
                "security": secured,
                "parameters": [user_id("id"), {"$ref": "#/components/parameters/ConsistencyToken"}],
                "responses": {
                    "200": {"description": "{user_id, friends: [{user_id, since}]}", "content": json_object},
                    **errors,
                },
            }
        }
    if role.writes:
        pair = [user_id("id"), user_id("friend_id")]
        paths["/v1/users/{id}/friends/{friend_id}"] = {
            "post": {
                "summary": "make two users friends, both ways (the user or an admin)",
                "security": secured,
                "parameters": pair,
                "responses": {
                    "201": {"description": "new", "headers": token, "content": json_object},
                    "200": {"description": "they already were", "headers": token, "content": json_object},
                    **errors,
                },
            },
            "delete": {
                "summary": "end a friendship, both ways (the user or an admin)",
                "security": secured,
                "parameters": pair,
                "responses": {
                    "204": {"description": "ended", "headers": token},
                    "404": problem("they were not friends"),
                    **errors,
                },
            },
        }
        paths["/v1/users/{id}/locations"] = {
            "delete": {
                "summary": "erase a user's location history and cached location (the user or an admin)",
                "security": secured,
                "parameters": [user_id("id")],
                "responses": {
                    "200": {
                        "description": "{user_id, history_rows_deleted, cached_location_deleted}",
                        "headers": token,
                        "content": json_object,
                    },
                    **errors,
                },
            }
        }
    return paths
