"""Typed application keys: everything the app holds, in one place."""

from __future__ import annotations

from aiohttp import web

from geo_common.settings import Settings

settings_key = web.AppKey("settings", Settings)
