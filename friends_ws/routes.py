"""URL table."""

from __future__ import annotations

from aiohttp import web

from friends_ws import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", views.healthz)
