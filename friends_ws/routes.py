"""URL table."""

from __future__ import annotations

from aiohttp import web

from friends_ws import views
from friends_ws.ws import friends_ws


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/v1/friends/ws", friends_ws)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    app.router.add_get("/metrics", views.metrics)
