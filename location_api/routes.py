"""URL table. A ``read`` instance serves searches and GETs, a ``write`` instance the writes;
both serve the operational routes."""

from __future__ import annotations

from aiohttp import web

from geo_common.request_context import access_log_for
from location_api import views
from location_api.auth import authenticate
from location_api.friends.routes import add_friends_routes
from location_api.handling import RouteTable
from location_api.keys import metrics_key, settings_key
from location_api.me_views import add_me_routes
from location_api.page.views import add_page_routes
from location_api.reference_page import add_reference_routes
from location_api.contract import Role


def setup_routes(app: web.Application, role: Role) -> None:
    """Register the routes an instance of this role serves, then the resource that answers
    every request none of them serves (404 and 405)."""
    access_log = access_log_for(app[settings_key].access_log_sample)
    routes = RouteTable(app, app[metrics_key], authenticate=authenticate, access_log=access_log)
    routes.get("/healthz", views.healthz)
    routes.get("/readyz", views.readyz)
    routes.get("/metrics", views.metrics)
    routes.get("/openapi.json", views.openapi)
    add_reference_routes(routes)
    if role.reads:
        routes.get("/v1/search/nearby", views.search_nearby)
        routes.get("/v1/search/area", views.search_area)
        routes.get("/v1/businesses/{id}", views.get_business)
    if role.writes:
        routes.post("/v1/businesses", views.create_business)
        routes.put("/v1/businesses/{id}", views.update_business)
        routes.delete("/v1/businesses/{id}", views.delete_business)
    add_friends_routes(app, routes)
    add_page_routes(app, routes)
    add_me_routes(routes)
    routes.close()
