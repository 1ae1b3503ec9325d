"""``GET /v1/me``: who the caller's token says they are, as geo knows them.

A client signed in with an identity provider learns here the internal user id its subject
maps to (the id other users befriend and that ``/v1/users/{id}/...`` paths name); a local
token's id is its subject. Served by every instance.
"""

from __future__ import annotations

from aiohttp import web

from location_api.auth import authenticated
from location_api.handling import RouteTable
from location_api.views import json_response

ME_PATH = "/v1/me"


def add_me_routes(routes: RouteTable) -> None:
    """Register ``GET /v1/me``."""
    routes.get(ME_PATH, me)


async def me(request: web.Request) -> web.Response:
    """``GET /v1/me`` (any valid token): ``{"user_id", "role", "issuer"}``; 401 otherwise."""
    caller = authenticated(request)
    return json_response(
        {"user_id": caller.identity.user_id, "role": caller.identity.role.value, "issuer": caller.claims.issuer},
        headers={"Cache-Control": "no-store"},
    )
