"""URL table: the WebSocket route, and the HTTP routes, each timed for ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from friends_ws import views
from friends_ws.asyncapi import serve_asyncapi
from friends_ws.edge import install
from friends_ws.keys import edge_key, metrics_key, settings_key
from friends_ws.openapi import serve_openapi
from friends_ws.uploads_view import upload_locations
from friends_ws.ws import not_first
from geo_common.request_metrics import RequestMetrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_routes(app: web.Application) -> None:
    edge = app[edge_key] = install(app, access_log_sample=app[settings_key].access_log_sample)
    # Served below aiohttp (friends_ws.site); this route answers a handshake that is not its
    # connection's first request, and other methods.
    app.router.add_route("*", "/v1/friends/ws", edge.route(not_first))
    app.router.add_get("/asyncapi.json", edge.route(serve_asyncapi))
    app.router.add_get("/openapi.json", edge.route(serve_openapi))
    requests = app[metrics_key].http
    for path, handler in (("/healthz", views.healthz), ("/readyz", views.readyz), ("/metrics", views.metrics)):
        app.router.add_get(path, edge.route(timed(handler, path, requests)))
    uploads = "/v1/me/locations"
    app.router.add_post(uploads, edge.route(timed(upload_locations, uploads, requests)))


def timed(handler: Handler, route: str, requests: RequestMetrics) -> Handler:
    """``handler`` with each answer's route, method, status and latency recorded.

    Args:
        handler: the view.
        route: the route's template, its metrics label.
        requests: where answers are recorded.

    Returns:
        The wrapped handler. An HTTP exception is recorded with its status, any other failure
        as 500 (aiohttp answers it so); a request cancelled because its client went away is
        not recorded.
    """
    clock = time.perf_counter

    async def answer(request: web.Request) -> web.StreamResponse:
        started = clock()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            requests.observe(route, request.method, exc.status, clock() - started)
            raise
        except Exception:
            requests.observe(route, request.method, 500, clock() - started)
            raise
        requests.observe(route, request.method, response.status, clock() - started)
        return response

    answer.__name__ = getattr(handler, "__name__", "answer")
    answer.__doc__ = handler.__doc__
    return answer
