"""Typed application keys: everything the app holds, in one place."""

from __future__ import annotations

from aiohttp import web

from friends_ws.cache import LocationCache
from friends_ws.drain import Drain
from friends_ws.edge import Edge
from friends_ws.exporter import Exporter
from friends_ws.history import HistoryWriter
from friends_ws.hub import Hub
from friends_ws.retention import Purger
from friends_ws.ring_discovery import RingDiscovery
from friends_ws.services import Services
from geo_common.database import Database
from geo_common.identity import Authenticator
from geo_common.regions import RegionMap
from geo_common.settings import Settings

settings_key = web.AppKey("settings", Settings)
regions_key = web.AppKey("regions", RegionMap)
db_key = web.AppKey("db", Database)
cache_key = web.AppKey("cache", LocationCache)
hub_key = web.AppKey("hub", Hub)
history_key = web.AppKey("history", HistoryWriter)
services_key = web.AppKey("services", Services)
purger_key = web.AppKey("purger", Purger)
authenticator_key = web.AppKey("authenticator", Authenticator)
metrics_key = web.AppKey("metrics", Exporter)
edge_key = web.AppKey("edge", Edge)
drain_key = web.AppKey("drain", Drain)
rings_key = web.AppKey("rings", RingDiscovery)
