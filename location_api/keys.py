"""Typed application keys: everything the app holds, in one place."""

from __future__ import annotations

from aiohttp import web

from geo_common.database import Database
from geo_common.identity import Authenticator
from geo_common.settings import Settings
from location_api.cache import Cache
from location_api.friends.presence import Presence
from location_api.metrics import Metrics
from location_api.page.watch import RegionCache
from location_api.refresh import Refresher
from location_api.contract import Role

settings_key = web.AppKey("settings", Settings)
role_key = web.AppKey("role", Role)
#: The signing key of paging cursors (derived from the JWT secret).
cursor_secret_key = web.AppKey("cursor_secret", bytes)
db_key = web.AppKey("db", Database)
#: Verifies bearer tokens (location_api.auth).
authenticator_key = web.AppKey("authenticator", Authenticator)
cache_key = web.AppKey("cache", Cache)
#: Read roles only: the in-memory catalog and what keeps it current.
refresher_key = web.AppKey("refresher", Refresher)
metrics_key = web.AppKey("metrics", Metrics)
#: Write roles only: every region's pub/sub and location cache, which the user routes'
#: writes tell live connections through (location_api.friends.presence).
presence_key = web.AppKey("friends_presence", Presence)
#: Read roles only: every region's location cache, in the region map's order (the map
#: page's watch mode, location_api.page.watch).
watch_caches_key: web.AppKey[tuple[RegionCache, ...]] = web.AppKey("watch_caches")
