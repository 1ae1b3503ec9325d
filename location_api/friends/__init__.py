"""The friends tier's HTTP API: friendships, per-friend privacy and blocks, the profile, and
a user's stored locations (``/v1/users/{id}/...``); :func:`location_api.friends.routes.add_friends_routes`
registers them. Its writes are announced to live connections through
:mod:`location_api.friends.presence`, which the app factory opens."""
