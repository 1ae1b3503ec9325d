"""Instructions per nearby or area search through the API's view, for callgrind.

A read instance's view (``location_api.views.search_nearby``) is given a catalog built in
memory from scattered points and answers ``--requests`` plain searches (position, radius,
limit) or, with ``--general``, the same searches with ``expand=false`` added, which the fast
path declines and the general path answers. With ``--area`` the view is
``location_api.views.search_area``, asked for boxes (``bbox``) of ``1.34 * radius`` a side
around the same points (6.7 km at 5 km, as ``bench/filtered_search_bench.py``'s); with
``--general`` too, the same boxes with ``sort=distance`` added. Each request is made once, before the count
starts (``aiohttp.test_utils.make_mocked_request``), and the view is awaited directly: no
socket, no dispatch (``bench/dispatch_bench.py`` measures that part).

With ``--socket site`` or ``--socket aiohttp`` the searches are instead sent one at a time over
one loopback connection to the app served as geo-api serves it (``location_api.site.ApiSite``:
plain searches below aiohttp) or by aiohttp's own ``TCPSite``; the client (a plain asyncio
stream in the same process) costs the same in both, so the difference is the serving's.

Run it under callgrind twice, with no requests and with N, and take (total(N) - total(0)) / N
instructions per search: the catalog build, the imports and 100 warm-up searches are in both
runs and cancel out::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/search_instructions.py --requests 5000
    grep '^totals:' /tmp/cg.out

``PYTHONPATH=<another checkout>`` measures that checkout's code (the path printed is the
``location_api`` that ran). Without valgrind it prints what the searches found (how many had
a next page) and wall time per search.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from points import scatter_arrays  # bench/, the script's folder

WARM_UP = 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=300_000)
    ap.add_argument("--spread", type=float, default=500.0, help="metres around each GeoNames place")
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--radius", type=float, default=5_000.0)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--general", action="store_true", help="add expand=false: the general path answers")
    ap.add_argument("--area", action="store_true", help="search boxes around the points (search_area)")
    ap.add_argument("--socket", choices=("site", "aiohttp"), help="send them over loopback to the app so served")
    args = ap.parse_args()
    asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    import location_api
    from geo_common.settings import Settings
    from location_api import views
    from location_api.catalog import Catalog
    from location_api.cursor import cursor_key
    from location_api.keys import cache_key, cursor_secret_key, db_key, refresher_key, settings_key

    lats, lons = scatter_arrays(args.points, seed=1, spread_m=args.spread)
    rows = [
        (i + 1, f"business {i + 1}", lat, lon, "cafe", f"{i + 1} Main Street")
        for i, (lat, lon) in enumerate(zip(lats.tolist(), lons.tolist(), strict=True))
    ]
    settings = Settings.from_env({"GEO_DEV": "1"})
    catalog = Catalog.build(rows, max_radius_m=settings.max_radius_m, strategies=(settings.api_index,))
    app = web.Application()
    app[settings_key] = settings
    # The view reads the refresher's catalog only (no token: no LSN is compared).
    app[refresher_key] = SimpleNamespace(catalog=catalog, applied_lsn=0)  # type: ignore[misc]
    app[cursor_secret_key] = cursor_key(settings.jwt_secret)
    # A catalog with cards answers from memory alone: the database and cache are never used.
    app[db_key] = None  # type: ignore[misc]
    app[cache_key] = None  # type: ignore[misc]
    # Searches centred on points of the set, so most circles hold businesses.
    pick = np.random.default_rng(5).integers(0, args.points, 1_000)
    if args.area:
        view, half = views.search_area, 0.67 * args.radius / 111_195.0
        extra = "&sort=distance" if args.general else ""
        targets = [
            f"/v1/search/area?bbox={lons[i] - half / math.cos(math.radians(lats[i])):.6f},{lats[i] - half:.6f},"
            f"{lons[i] + half / math.cos(math.radians(lats[i])):.6f},{lats[i] + half:.6f}&limit={args.limit}{extra}"
            for i in pick.tolist()
        ]
    else:
        view = views.search_nearby
        extra = "&expand=false" if args.general else ""
        targets = [
            f"/v1/search/nearby?latitude={lats[i]:.6f}&longitude={lons[i]:.6f}"
            f"&radius={args.radius:g}&limit={args.limit}{extra}"
            for i in pick.tolist()
        ]
    if args.socket:
        await over_socket(args, settings, app[refresher_key], targets)
        return
    requests = [make_mocked_request("GET", target, app=app) for target in targets]
    with_cursor = 0
    for request in requests[:WARM_UP]:
        await view(request)
    for request in requests:
        body = (await view(request)).body
        with_cursor += b'"next_cursor":null' not in body  # type: ignore[operator]
    started = time.perf_counter()
    for n in range(args.requests):
        await view(requests[n % len(requests)])
    elapsed = time.perf_counter() - started
    print(f"location_api: {Path(location_api.__file__).parent}")
    print(f"{with_cursor / len(requests):.0%} of the searches have a next page")
    if args.requests:
        print(f"{elapsed / args.requests * 1e6:.1f} us a search ({args.requests} searches)")


async def over_socket(args: argparse.Namespace, settings: object, refresher: object, targets: list[str]) -> None:
    """The searches over one loopback connection to the app served by ``args.socket``."""
    import socket

    from aiohttp import web

    from location_api.app import create_app
    from location_api.keys import cache_key, db_key, refresher_key
    from location_api.site import ApiSite

    app = create_app(settings)  # type: ignore[arg-type]
    app.cleanup_ctx.clear()  # no database, cache or refresher: the catalog is given
    app[refresher_key] = refresher  # type: ignore[misc]
    app[db_key] = None  # type: ignore[misc]  # as above: memory answers alone
    app[cache_key] = None  # type: ignore[misc]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    site = ApiSite(runner, "127.0.0.1", 0) if args.socket == "site" else web.SockSite(runner, sock)
    await site.start()
    port = site.port if isinstance(site, ApiSite) else sock.getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    heads = [f"GET {target} HTTP/1.1\r\nHost: geo\r\n\r\n".encode() for target in targets]

    async def search(n: int) -> None:
        writer.write(heads[n % len(heads)])
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))

    for n in range(WARM_UP):
        await search(n)
    started = time.perf_counter()
    for n in range(args.requests):
        await search(n)
    elapsed = time.perf_counter() - started
    writer.close()
    await runner.cleanup()
    print(f"served by {args.socket}")
    if args.requests:
        print(f"{elapsed / args.requests * 1e6:.1f} us a search ({args.requests} searches)")


if __name__ == "__main__":
    main()
