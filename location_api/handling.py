"""The API's edge for every request: handlers registered through a :class:`RouteTable` are
wrapped so that a failure becomes a problem document (:func:`location_api.errors.problem_for`)
and every answer is recorded in the app's :class:`~location_api.metrics.Metrics`, under its
route's template; :meth:`RouteTable.close` adds one resource that answers every request no
route serves (404, or 405 with ``Allow``), recorded as :data:`UNMATCHED`. A request that carries
an ``Authorization`` header is first given to the table's ``authenticate`` hook
(:func:`location_api.auth.authenticate`), which files its caller on the request for the
views' synchronous checks; a request without one costs a header lookup.

The wrapper also gives each request its id (:func:`geo_common.request_context.begin_request`:
the caller's ``X-Request-Id`` if it is a safe one, else a new one) before anything else runs,
so every log line written while handling it carries the id and every problem document names
it; the answer carries it in ``X-Request-Id``. With an :class:`~geo_common.request_context.AccessLog`
(``GEO_ACCESS_LOG_SAMPLE`` above 0) a sample of the answers is logged under the route's template.

A wrapper per route rather than an aiohttp middleware, because of what a middleware costs on
every request: aiohttp runs it through the middleware's coroutine and through one more of its
own (it sets ``match_info.current_app``), which ``bench/dispatch_bench.py`` measures (figures
in docs/benchmarks.md). The wrapper is one coroutine, and it learns its route's template when
it is registered instead of looking it up per request.

The resource for unmatched requests is a :class:`aiohttp.web.AbstractResource` (aiohttp's
public interface for custom resources), filed under ``/``, the last place aiohttp looks: it
matches any request target (an unknown path, one with a newline that no ``{name:.*}``
template matches, ``OPTIONS *``), so aiohttp reaches it only when no served route matched.
It costs nothing to the requests that are served.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import hdrs, web
from yarl import URL

from geo_common.request_context import REQUEST_ID_HEADER, AccessLog, begin_request
from location_api.errors import problem_for
from location_api.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Runs before a view when the request has an ``Authorization`` header; must not raise for a bad token.
Authenticate = Callable[[web.Request], Awaitable[None]]

#: The route label of requests no route serves (unknown path, or a method the path lacks).
UNMATCHED = "unmatched"


def answering(
    handler: Handler,
    route: str,
    metrics: Metrics,
    authenticate: Authenticate | None = None,
    access_log: AccessLog | None = None,
) -> Handler:
    """``handler`` with failures rendered as problem documents, every answer recorded and
    labelled with its request's id.

    Args:
        handler: the view.
        route: the route's template (``/v1/businesses/{id}``), its metrics label.
        metrics: where each answer's route, method, status and latency go.
        authenticate: awaited before the view when the request has an ``Authorization`` header.
        access_log: where a sample of the answers is logged (None: none).

    Returns:
        The wrapped handler. A redirect (an :class:`aiohttp.web.HTTPException` below 400) is
        recorded and passed on; a request cancelled because its client went away is not
        recorded.
    """
    observe = metrics.observe
    clock = time.perf_counter

    async def answer(request: web.Request) -> web.StreamResponse:
        started = clock()
        # Not reset afterwards: aiohttp runs each request in a task of its own, and its own
        # lines about this request (a failed write of the answer) should carry the id too.
        request_id = begin_request(request.headers.get(REQUEST_ID_HEADER))
        try:
            if authenticate is not None and hdrs.AUTHORIZATION in request.headers:
                await authenticate(request)
            response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - every failure is answered; problem_for logs the unexpected
            try:
                response = problem_for(request, exc, route)
            except web.HTTPException as passed:  # a redirect: not an error, passed on
                passed.headers[REQUEST_ID_HEADER] = request_id
                elapsed = clock() - started
                observe(route, request.method, passed.status, elapsed)
                if access_log is not None:
                    access_log.record(request.method, route, passed.status, elapsed)
                raise
        if not response.prepared:  # a streamed answer has sent its headers already
            response.headers[REQUEST_ID_HEADER] = request_id
        elapsed = clock() - started
        observe(route, request.method, response.status, elapsed)
        if access_log is not None:
            access_log.record(request.method, route, response.status, elapsed)
        return response

    answer.__name__ = getattr(handler, "__name__", "answer")
    answer.__doc__ = handler.__doc__
    return answer


class RouteTable:
    """Registers an app's routes, wrapped by :func:`answering`; :meth:`close` adds the
    resource that answers the requests none of them serves.

    Args:
        app: the application.
        metrics: the app's metrics.
        authenticate: awaited before a served route's view when the request has an
            ``Authorization`` header (see :func:`answering`).
        access_log: where a sample of every route's answers is logged (None: none).
    """

    def __init__(
        self,
        app: web.Application,
        metrics: Metrics,
        *,
        authenticate: Authenticate | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self._router = app.router
        self._metrics = metrics
        self._authenticate = authenticate
        self._access_log = access_log

    def get(self, path: str, handler: Handler) -> None:
        """Serve GET (and HEAD) ``path``."""
        self._router.add_get(path, answering(handler, path, self._metrics, self._authenticate, self._access_log))

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
        self._router.add_route(
            method, path, answering(handler, path, self._metrics, self._authenticate, self._access_log)
        )

    def close(self) -> None:
        """Register the resource for unmatched requests, after every route: 405 with ``Allow``
        for a method a path lacks, 404 for any other request; both problem documents, recorded
        as :data:`UNMATCHED`.
        """
        self._router.register_resource(_Unmatched(self._router, self._metrics, self._access_log))


def is_fallback(route: web.AbstractRoute) -> bool:
    """Whether a route answers requests no served route matches rather than serving one."""
    return route.method == hdrs.METH_ANY


class _Unmatched(web.AbstractResource):
    """Every request target, under ``/``: aiohttp tries it after every served route.

    Its one route, of every method, answers 405 naming the methods of every resource whose
    path matches the request (asking them only now, on a miss), else 404.
    """

    def __init__(self, router: web.UrlDispatcher, metrics: Metrics, access_log: AccessLog | None) -> None:
        super().__init__()
        self._router = router
        self._route = web.ResourceRoute(
            hdrs.METH_ANY, answering(self._refuse, UNMATCHED, metrics, access_log=access_log), self
        )

    async def _refuse(self, request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in self._router.resources():
            if resource is not self:
                allowed |= (await resource.resolve(request))[1]
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    @property
    def canonical(self) -> str:
        return "/"

    def url_for(self, **kwargs: str) -> URL:
        return URL.build(path="/")

    async def resolve(self, request: web.Request) -> tuple[web.UrlMappingMatchInfo | None, set[str]]:
        # A match info of its own each time: aiohttp adds the app to it and freezes it.
        return web.UrlMappingMatchInfo({}, self._route), set()

    def add_prefix(self, prefix: str) -> None:
        raise RuntimeError("the resource for unmatched requests takes no prefix")

    def get_info(self) -> Any:  # aiohttp types it with a private TypedDict
        return {"path": "*"}

    def raw_match(self, path: str) -> bool:
        return False  # never the resource add_route reuses for a path

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[web.AbstractRoute]:
        return iter((self._route,))
