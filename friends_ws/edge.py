"""What every HTTP request on the WebSocket tier's port goes through first: the WebSocket
handshake, which then lasts as long as its session, and the operational routes.

Each request gets its id (:func:`geo_common.request_context.begin_request`: the caller's
``X-Request-Id`` when it is a safe one, else a new one) before its handler's work, so every
log line of the handshake and of the session it opens carries it (the WebSocket's tasks run
in the handshake's context, :mod:`friends_ws.connection`); the answer carries it in
``X-Request-Id``: a ``101 Switching Protocols`` or a refusal of the handshake from
:mod:`friends_ws.connection`, aiohttp's answers through ``on_response_prepare``. A sample of
the requests (``GEO_ACCESS_LOG_SAMPLE``) is logged when answered, a WebSocket when its
session ends, under the route's template; an unexpected error is logged under it too, never
with the query string.

No middleware: the operational routes are wrapped one by one (:meth:`Edge.route`); the
WebSocket, served below aiohttp, enters :meth:`Edge.opening`, an object of six slots for the
session's life.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from geo_common.request_context import REQUEST_ID_HEADER, AccessLog, access_log_for, begin_request, current_request_id

log = logging.getLogger(__name__)

#: The route label of requests no route serves.
UNMATCHED = "unmatched"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str:
    """The template of the route serving ``request`` (never its path), or :data:`UNMATCHED`."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


class Edge:
    """Request ids and the sampled access log of one app's routes.

    Args:
        access_log_sample: the share of requests logged (0: none, at no cost per request).
    """

    __slots__ = ("access_log",)

    def __init__(self, access_log_sample: float) -> None:
        self.access_log: AccessLog | None = access_log_for(access_log_sample)

    def answering(self, request: web.Request) -> Answering:
        """The request's id from now on, and its answer logged when the ``with`` ends (set
        :attr:`Answering.status` to the answer's status before it does)."""
        return Answering(self, request.method, route_of(request), request.headers.get(REQUEST_ID_HEADER))

    def opening(self, method: str, route: str, given_id: str | None) -> Answering:
        """:meth:`answering` for a request read below aiohttp (the WebSocket handshake,
        :mod:`friends_ws.connection`): its method, route template and ``X-Request-Id``."""
        return Answering(self, method, route, given_id)

    async def label(self, request: web.Request, response: web.StreamResponse) -> None:
        """``on_response_prepare``: the answer names its request's id. A request no route took
        (404, 405: aiohttp answers it without a handler) gets its id here, and is sampled
        under :data:`UNMATCHED` with no duration (nothing ran)."""
        request_id = current_request_id.get()
        if not request_id:
            request_id = begin_request(request.headers.get(REQUEST_ID_HEADER))
            if self.access_log is not None:
                self.access_log.record(request.method, UNMATCHED, response.status, 0.0)
        response.headers[REQUEST_ID_HEADER] = request_id

    def route(self, handler: Handler) -> Handler:
        """``handler`` answering under :meth:`answering`."""

        async def answer(request: web.Request) -> web.StreamResponse:
            with self.answering(request) as answering:
                response = await handler(request)
                answering.status = response.status
                return response

        answer.__name__ = getattr(handler, "__name__", "answer")
        answer.__doc__ = handler.__doc__
        return answer


class Answering:
    """One request between its id and its answer: :meth:`Edge.answering`'s context manager."""

    __slots__ = ("_edge", "_method", "_route", "_given_id", "_started", "status")

    def __init__(self, edge: Edge, method: str, route: str, given_id: str | None) -> None:
        self._edge = edge
        self._method = method
        self._route = route
        self._given_id = given_id
        self._started = 0.0
        #: The answer's status, set by the handler (an HTTP exception's is taken from it).
        self.status = 0

    def __enter__(self) -> Answering:
        # Not reset afterwards: aiohttp runs each request in a task of its own, and its own
        # lines about this request (the traceback of a failure) should carry the id too.
        begin_request(self._given_id)
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            status = self.status
        elif isinstance(exc, web.HTTPException):
            status = exc.status
        elif isinstance(exc, Exception):
            # aiohttp logs the traceback next ("Error handling request from <address>"); this
            # line names what was asked, by its template: a query string may hold a position.
            log.error("unexpected error answering %s %s: %s", self._method, self._route, type(exc).__name__)
            status = 500
        else:
            return  # cancelled: the client went away, nothing was answered
        access_log = self._edge.access_log
        if access_log is not None:
            access_log.record(self._method, self._route, status, time.perf_counter() - self._started)


def install(app: web.Application, *, access_log_sample: float) -> Edge:
    """Put each answer's request id in its ``X-Request-Id``; returns the app's :class:`Edge`,
    whose :meth:`Edge.route` wraps each route (the WebSocket enters :meth:`Edge.opening`)."""
    edge = Edge(access_log_sample)
    app.on_response_prepare.append(edge.label)
    return edge
