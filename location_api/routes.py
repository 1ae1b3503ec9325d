"""URL table."""

from __future__ import annotations

from aiohttp import web

from location_api import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", views.healthz)
