"""The OpenAPI 3.1 path item of ``GET /v1/me`` (``location_api.me_views``), self-contained so
the API's document merges it: ``paths.update(me_openapi_paths())``."""

from __future__ import annotations

from typing import Any

from geo_common.tokens import MAX_USER_ID, Role

_PROBLEM = "application/problem+json"


def _problem(description: str, header: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {header: {"schema": {"type": "string"}}},
        "content": {_PROBLEM: {"schema": {"type": "object"}}},
    }


def me_openapi_paths() -> dict[str, Any]:
    """The path item of ``GET /v1/me`` (every instance serves it)."""
    caller = {
        "type": "object",
        "required": ["user_id", "role", "issuer"],
        "additionalProperties": False,
        "properties": {
            "user_id": {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
            "role": {"enum": [r.value for r in Role]},
            "issuer": {"type": "string", "description": "the token's iss: GEO_JWT_ISSUER or the provider's"},
        },
    }
    return {
        "/v1/me": {
            "get": {
                "summary": "the caller: the internal user id their token maps to, their role and its issuer",
                "description": "An identity provider's subject is given a user id of its own the first time "
                "it is seen; a local (geo-token) token's user id is its subject. Provider tokens are "
                "always role user.",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "the caller", "content": {"application/json": {"schema": caller}}},
                    "401": _problem("no valid bearer token", "WWW-Authenticate"),
                    "503": _problem("the identity provider's keys or the database are unreachable", "Retry-After"),
                },
            }
        }
    }
