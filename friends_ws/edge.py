"""What every HTTP request on the WebSocket tier's port goes through first: the WebSocket
handshake, which then lasts as long as its session, and the operational routes.

Each request gets its id (:func:`geo_common.request_context.begin_request`: the caller's
``X-Request-Id`` when it is a safe one, else a new one) before the handler runs, so every log
line of the handshake and of the session it opens carries it (the session runs in the
request's task, and the tasks it starts copy the request's context); the answer carries it in
``X-Request-Id``, a ``101 Switching Protocols`` included, through ``on_response_prepare``,
the one hook that runs before a WebSocket's headers are sent. A sample of the requests
(``GEO_ACCESS_LOG_SAMPLE``) is logged when answered, a WebSocket when its session ends, under
the route's template; an unexpected error is logged under it too, never with the query string.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from geo_common.request_context import REQUEST_ID_HEADER, AccessLog, access_log_for, begin_request, current_request_id

log = logging.getLogger(__name__)

#: The route label of requests no route serves.
UNMATCHED = "unmatched"


def install(app: web.Application, *, access_log_sample: float) -> None:
    """Give every request of ``app`` its id, and log a sample of them (0: none)."""
    app.middlewares.append(_edge(access_log_for(access_log_sample)))
    app.on_response_prepare.append(_label)


def route_of(request: web.Request) -> str:
    """The template of the route serving ``request`` (never its path), or :data:`UNMATCHED`."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def _edge(access_log: AccessLog | None) -> Middleware:
    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Not reset afterwards: aiohttp runs each request in a task of its own, and its own
        # lines about this request (the traceback of a failure) should carry the id too.
        begin_request(request.headers.get(REQUEST_ID_HEADER))
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _record(access_log, request, exc.status, started)
            raise
        except Exception as exc:
            # aiohttp logs the traceback next ("Error handling request from <address>"); this
            # line names what was asked, by its template: a query string may hold a position.
            log.error("unexpected error answering %s %s: %s", request.method, route_of(request), type(exc).__name__)
            _record(access_log, request, 500, started)
            raise
        _record(access_log, request, response.status, started)
        return response

    return edge


def _record(access_log: AccessLog | None, request: web.Request, status: int, started: float) -> None:
    if access_log is not None:
        access_log.record(request.method, route_of(request), status, time.perf_counter() - started)


async def _label(_request: web.Request, response: web.StreamResponse) -> None:
    request_id = current_request_id.get()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
