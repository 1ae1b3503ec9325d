"""The API's edge for every request: a failure becomes a problem document
(:func:`location_api.errors.problem_for`) and every answer is recorded in the app's
:class:`~location_api.metrics.Metrics`, under its route's template, or as :data:`UNMATCHED`
when no route serves the request.

Both happen in one aiohttp middleware, which :meth:`RouteTable.close` installs once every
route is registered. A request no route serves needs nothing of its own: aiohttp resolves it
to a handler that raises aiohttp's :class:`~aiohttp.web.HTTPNotFound`, or its
:class:`~aiohttp.web.HTTPMethodNotAllowed` naming the methods of every resource whose path
matches (``request.match_info.http_exception``, the documented contract of aiohttp's
routers), and the middleware renders that like any other failure. That holds for any request
target: an unknown path, one with a newline that no ``{name:.*}`` template matches,
``OPTIONS *``. A route that caught what the others miss would need aiohttp's private matching,
and would take from aiohttp's 405 the methods a path allows.

What the middleware costs each request is its own coroutine and one layer aiohttp adds to any
app that has middlewares (it sets ``match_info.current_app``); the route's template is a dict
lookup. The views themselves are registered unwrapped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from aiohttp import hdrs, web

from location_api.errors import problem_for
from location_api.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Middleware(Protocol):
    """An aiohttp middleware: it calls ``handler`` (the route's view, or aiohttp's 404/405)."""

    def __call__(self, request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]: ...


#: The route label of requests no route serves (unknown path, or a method the path lacks).
UNMATCHED = "unmatched"


def answering(templates: Mapping[web.AbstractRoute, str], metrics: Metrics) -> Middleware:
    """The middleware that renders failures as problem documents and records every answer.

    Args:
        templates: each served route's template (``/v1/businesses/{id}``), its metrics label.
        metrics: where each answer's route, method, status and latency go.

    Returns:
        The middleware. A request aiohttp found no route for is answered with aiohttp's 404 or
        405 rendered as a problem document and recorded as :data:`UNMATCHED`. A redirect (an
        :class:`aiohttp.web.HTTPException` below 400) is recorded and passed on; a request
        cancelled because its client went away is not recorded.
    """
    observe = metrics.observe
    clock = time.perf_counter

    @web.middleware
    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = clock()
        match_info = request.match_info
        # No route: aiohttp's handler raises its 404 or 405, rendered below like any failure.
        route = UNMATCHED if match_info.http_exception is not None else templates[match_info.route]
        try:
            response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - every failure is answered; problem_for logs the unexpected
            try:
                response = problem_for(request, exc)
            except web.HTTPException as passed:  # a redirect: not an error, passed on
                observe(route, request.method, passed.status, clock() - started)
                raise
        observe(route, request.method, response.status, clock() - started)
        return response

    return answer


class RouteTable:
    """Registers an app's routes; :meth:`close` installs :func:`answering` over all of them.

    Every route of the app is registered here: the middleware labels a request by the
    template its route was registered with.

    Args:
        app: the application.
        metrics: the app's metrics.
    """

    def __init__(self, app: web.Application, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics
        #: Each served route's template, as registered (``/static/{path:.+}``, not aiohttp's
        #: canonical ``/static/{path}``).
        self._templates: dict[web.AbstractRoute, str] = {}

    def get(self, path: str, handler: Handler) -> None:
        """Serve GET (and HEAD) ``path``."""
        self._add(hdrs.METH_HEAD, path, handler)
        self._add(hdrs.METH_GET, path, handler)

    def post(self, path: str, handler: Handler) -> None:
        """Serve POST ``path``."""
        self._add(hdrs.METH_POST, path, handler)

    def put(self, path: str, handler: Handler) -> None:
        """Serve PUT ``path``."""
        self._add(hdrs.METH_PUT, path, handler)

    def delete(self, path: str, handler: Handler) -> None:
        """Serve DELETE ``path``."""
        self._add(hdrs.METH_DELETE, path, handler)

    def _add(self, method: str, path: str, handler: Handler) -> None:
        self._templates[self._app.router.add_route(method, path, handler)] = path

    def close(self) -> None:
        """Install the middleware, after every route: it answers every request, those no route
        serves included (404, or 405 with ``Allow``), and records each under its template or as
        ``unmatched``.
        """
        self._app.middlewares.append(answering(self._templates, self._metrics))


def is_fallback(route: web.AbstractRoute) -> bool:
    """Whether a route answers requests no served route matches rather than serving one.

    Such a route is aiohttp's own, of every method (``*``): the ``match_info.route`` of a
    request it answers 404 or 405. None is registered in the router, so a listing of the
    router's routes holds only served ones.
    """
    return route.method == hdrs.METH_ANY
