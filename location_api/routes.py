"""URL table. A ``read`` instance serves searches and GETs, a ``write`` instance the writes;
both serve the operational routes."""

from __future__ import annotations

from aiohttp import web

from location_api import views
from location_api.friendship_views import add_friendship_routes
from location_api.page_views import add_page_routes
from location_api.settings import Role


def setup_routes(app: web.Application, role: Role) -> None:
    """Register the routes an instance of this role serves."""
    router = app.router
    router.add_get("/healthz", views.healthz)
    router.add_get("/readyz", views.readyz)
    router.add_get("/metrics", views.metrics)
    router.add_get("/openapi.json", views.openapi)
    if role.reads:
        router.add_get("/v1/search/nearby", views.search_nearby)
        router.add_get("/v1/businesses/{id}", views.get_business)
    if role.writes:
        router.add_post("/v1/businesses", views.create_business)
        router.add_put("/v1/businesses/{id}", views.update_business)
        router.add_delete("/v1/businesses/{id}", views.delete_business)
    add_friendship_routes(app)
    add_page_routes(app)
