"""What location_api's request handling costs aiohttp's dispatch, in instructions per request.

A minimal app is built through location_api's real :class:`~location_api.handling.RouteTable`
(``GET /healthz`` and ``GET /v1/things/{id}``, views that answer ``ok``) and one request is
dispatched ``--requests`` times in-process, without sockets: ``served`` (``GET
/v1/things/42``), ``404`` (``GET /nowhere``) or ``405`` (``DELETE /v1/things/42``). Each
dispatch is what aiohttp's server does with a parsed request: resolve the route, run the
middlewares and the handler, return the response (nothing is written). aiohttp has no public
way to dispatch a request without a connection, so this calls ``Application._handle``, the
coroutine its server calls per request, on a request from ``aiohttp.test_utils``.

Run it under callgrind twice, with no requests and with N, and take (total(N) - total(0)) / N
instructions per request: the set-up, the imports and 100 warm-up requests (caches filled on a
first request) are in both runs and cancel out::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/dispatch_bench.py --case served --requests 20000
    grep '^totals:' /tmp/cg.out

Another checkout's code is measured with ``PYTHONPATH=<its root>`` (the path printed is the
``location_api.handling`` that ran). Without valgrind it prints wall time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from location_api import auth, handling
from location_api.metrics import Metrics

#: Each case's method, path and expected status.
CASES = {
    "served": ("GET", "/v1/things/42", 200),
    "404": ("GET", "/nowhere", 404),
    "405": ("DELETE", "/v1/things/42", 405),
}
WARM_UP = 100


async def ok(_request: web.Request) -> web.StreamResponse:
    """The views: the least a handler can answer."""
    return web.Response(text="ok")


async def dispatch(case: str, requests: int) -> float:
    """Build the app, warm it up, dispatch ``requests`` requests of ``case``; seconds taken."""
    app = web.Application()
    # As the product's tables: the token hook runs only on requests with an Authorization header.
    routes = handling.RouteTable(app, Metrics(), authenticate=auth.authenticate)
    routes.get("/healthz", ok)
    routes.get("/v1/things/{id}", ok)
    routes.close()
    app.freeze()
    method, path, status = CASES[case]
    request = make_mocked_request(method, path, app=app)
    handle = app._handle  # noqa: SLF001 - what aiohttp's server calls per request; no public twin
    for _ in range(WARM_UP):
        if (await handle(request)).status != status:
            raise SystemExit(f"{method} {path}: not {status}")
    started = time.perf_counter()
    for _ in range(requests):
        await handle(request)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Dispatch requests in-process through location_api's handling.")
    parser.add_argument("--case", choices=sorted(CASES), default="served", help="the request (default served)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests dispatched (default 20,000)")
    args = parser.parse_args(argv)
    seconds = asyncio.run(dispatch(args.case, args.requests))
    per = f", {seconds / args.requests * 1e6:.2f} µs each" if args.requests else ""
    print(f"{args.requests} requests, {args.case}{per} ({handling.__file__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
