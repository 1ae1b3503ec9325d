"""The API's edge for every request: handlers registered through a :class:`RouteTable` are
wrapped so that a failure becomes a problem document (:func:`location_api.errors.problem_for`)
and every answer is recorded in the app's :class:`~location_api.metrics.Metrics`; the table
also registers fallbacks, so an unknown route or method gets a problem document too.

A wrapper per route rather than an aiohttp middleware, because of what a middleware costs on
every request: aiohttp runs it through the middleware's coroutine, through one more of its own
(it sets ``match_info.current_app``) and through a ``functools.partial`` of each. The wrapper
is one coroutine, and it learns its route's template when it is registered instead of looking
it up per request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from location_api.errors import problem_for
from location_api.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The route label of requests no route serves (unknown path, or a method the path lacks).
UNMATCHED = "unmatched"


def answering(handler: Handler, route: str, metrics: Metrics) -> Handler:
    """``handler`` with failures rendered as problem documents and every answer recorded.

    Args:
        handler: the view.
        route: the route's template (``/v1/businesses/{id}``), its metrics label.
        metrics: where each answer's route, method, status and latency go.

    Returns:
        The wrapped handler. A redirect (an :class:`aiohttp.web.HTTPException` below 400) is
        recorded and passed on; a request cancelled because its client went away is not
        recorded.
    """
    observe = metrics.observe
    clock = time.perf_counter

    async def answer(request: web.Request) -> web.StreamResponse:
        started = clock()
        try:
            response = await handler(request)
        except Exception as exc:
            try:
                response = problem_for(request, exc)
            except web.HTTPException as passed:  # a redirect: not an error, passed on
                observe(route, request.method, passed.status, clock() - started)
                raise
        observe(route, request.method, response.status, clock() - started)
        return response

    answer.__name__ = getattr(handler, "__name__", "answer")
    answer.__doc__ = handler.__doc__
    return answer


class RouteTable:
    """Registers an app's routes, wrapped by :func:`answering`; :meth:`close` adds the fallbacks.

    Args:
        app: the application.
        metrics: the app's metrics.
    """

    def __init__(self, app: web.Application, metrics: Metrics) -> None:
        self._router = app.router
        self._metrics = metrics
        #: Methods served per path template, in registration order.
        self._methods: dict[str, set[str]] = {}

    def get(self, path: str, handler: Handler) -> None:
        """Serve GET (and HEAD) ``path``."""
        self._router.add_get(path, answering(handler, path, self._metrics))
        self._methods.setdefault(path, set()).update((hdrs.METH_GET, hdrs.METH_HEAD))

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
        self._router.add_route(method, path, answering(handler, path, self._metrics))
        self._methods.setdefault(path, set()).add(method)

    def close(self) -> None:
        """Register the fallbacks, after every route: 405 with ``Allow`` for a method a path
        lacks, 404 for any other path. Both are problem documents, recorded as ``unmatched``.

        aiohttp tries a path's own routes before these: they come later, and the catch-all is
        filed under ``/``, the last place aiohttp looks.
        """
        for path, methods in self._methods.items():
            allowed = frozenset(methods)
            self._router.add_resource(path).add_route(
                hdrs.METH_ANY, answering(_method_not_allowed(allowed), UNMATCHED, self._metrics)
            )
        anywhere = _EveryPath()
        self._router.register_resource(anywhere)
        anywhere.add_route(hdrs.METH_ANY, answering(_not_found, UNMATCHED, self._metrics))


def is_fallback(route: web.AbstractRoute) -> bool:
    """Whether a route is one of :meth:`RouteTable.close`'s fallbacks rather than a served route."""
    return route.method == hdrs.METH_ANY


class _EveryPath(web.PlainResource):
    """A resource that matches every request target: any path, one with a newline in it
    (which no ``{name:.*}`` template matches), or ``*`` (``OPTIONS *``).

    ``_match`` is aiohttp's, not public API: pyproject.toml keeps aiohttp to the releases
    tests/location_api/test_handling.py has passed on.
    """

    def __init__(self) -> None:
        super().__init__("/")

    def _match(self, path: str) -> dict[str, str] | None:
        return {}

    def raw_match(self, path: str) -> bool:
        return False  # never the resource add_route reuses for a path


def _method_not_allowed(allowed: frozenset[str]) -> Handler:
    async def method_not_allowed(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return method_not_allowed


async def _not_found(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()
