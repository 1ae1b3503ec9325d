"""The friends tier's URL table: a read instance serves the lists, the profile and the export
(from a replica), a write instance the changes. The presence the writes announce through is
opened by the app factory (:func:`location_api.app.create_app`) on write instances."""

from __future__ import annotations

from aiohttp import web

from location_api.friends import erase_views, friendship_views, privacy_views
from location_api.handling import RouteTable
from location_api.keys import role_key


def add_friends_routes(app: web.Application, routes: RouteTable) -> None:
    """Register the ``/v1/users/{id}/...`` routes an instance of the app's role serves.

    Args:
        app: the application; its role decides which routes are served.
        routes: the app's route table.
    """
    role = app[role_key]
    # Friendships (docs/friends-protocol.md, "Friendships over HTTP").
    if role.reads:
        routes.get("/v1/users/{id}/friends", friendship_views.list_friends)
    if role.writes:
        routes.post("/v1/users/{id}/friends/{friend_id}", friendship_views.add_friend)
        routes.delete("/v1/users/{id}/friends/{friend_id}", friendship_views.remove_friend)
    # Per-friend sharing, blocks and the profile.
    if role.reads:
        routes.get("/v1/users/{id}/blocks", privacy_views.list_blocks)
        routes.get("/v1/users/{id}/profile", privacy_views.get_profile)
    if role.writes:
        routes.put("/v1/users/{id}/friends/{friend_id}/sharing", privacy_views.share_with_friend)
        routes.put("/v1/users/{id}/blocks/{blocked_id}", privacy_views.block_user)
        routes.delete("/v1/users/{id}/blocks/{blocked_id}", privacy_views.unblock_user)
        routes.put("/v1/users/{id}/profile", privacy_views.set_profile)
    # A user's stored locations: export and erasure.
    if role.reads:
        routes.get("/v1/users/{id}/locations/export", erase_views.export_locations)
    if role.writes:
        routes.delete("/v1/users/{id}/locations", erase_views.erase_locations)
