"""The WebSocket tier's app factory."""

from __future__ import annotations

from aiohttp import web

from geo_common.settings import Settings
from friends_ws.keys import settings_key
from friends_ws.routes import setup_routes


def create_app(settings: Settings) -> web.Application:
    """Build the API application from validated settings (reads no env, no argv)."""
    app = web.Application()
    app[settings_key] = settings
    setup_routes(app)
    return app
