"""Benchmark ``page`` (count the matches, build one page) against ``within`` (build them all).

A nearby search reports how many businesses are within the radius and returns one page of
them. ``within(lat, lon, r)`` builds every match to get there; ``page(lat, lon, r, 20)``
counts them by chord and builds only the page (docs/geo_index.md, "Counting a page"). Both
run on one ``GeohashIndex`` with the compiled scan over the location_api benchmark's data:
the 144,563 GeoNames places plus synthetic points scattered around them up to ``--points``.

Cases: the location_api benchmark's 10,000 query points at 5 km (each query once per pass),
and 5 km and 50 km around six large cities, where a radius holds thousands of points. Each
figure is the fastest of ``--repeat`` passes, microseconds per query; every page is checked
against the cut of ``within``'s answer first.

Then category searches around the same cities: ``page`` with ``where=(categories, value)``
(the compiled scan drops the other categories before counting) against what it replaced,
every match from ``within`` filtered by category and cut with ``page_of``; each point holds
one of the demo's 12 categories (by id), and both answers are checked equal first.

Then the same 10,000 searches as the API answers them, without HTTP: a
:class:`location_api.catalog.Catalog` over the same points, ``search_memory`` (``page`` and
one pre-rendered card per hit) and ``render.search_body``; against the peer it replaced: every
match from ``within``, a ``Business`` tuple per hit from a dict, and ``orjson.dumps`` of the
body as dicts. Both bodies are checked equal first.

Usage::

    .venv/bin/python bench/page_bench.py                 # 1M points
    .venv/bin/python bench/page_bench.py --points 144563 # the GeoNames places only
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from geo_common.places import load_places, scatter  # noqa: E402
from geo_index import GeohashIndex, page_of  # noqa: E402
from location_api.catalog import Catalog  # noqa: E402
from location_api.demo import CATEGORIES  # noqa: E402
from location_api.filters import NO_FILTERS  # noqa: E402
from location_api.models import Business, SearchQuery  # noqa: E402
from location_api.render import search_body  # noqa: E402
from location_api.search import search_memory  # noqa: E402

LIMIT = 20
CITIES = {
    "Paris": (48.8566, 2.3522),
    "New York": (40.7128, -74.006),
    "Tokyo": (35.6762, 139.6503),
    "London": (51.5074, -0.1278),
    "Sao Paulo": (-23.5505, -46.6333),
    "Lagos": (6.5244, 3.3792),
}


def best_us(run: Callable[[], Any], calls: int, repeat: int) -> float:
    """The fastest of ``repeat`` passes, microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    places = load_places()
    if args.points < len(places):
        ap.error(f"--points must be at least {len(places):,} (the GeoNames places)")
    print(f"page_bench: building a GeohashIndex of {args.points:,} points", flush=True)
    items = [(i, p.latitude, p.longitude) for i, p in enumerate(places)]
    items += [(len(places) + i, la, lo) for i, (la, lo) in enumerate(scatter(args.points - len(places), seed=7))]
    index: GeohashIndex = GeohashIndex()
    index.bulk_load(items)
    del items
    queries = list(scatter(10_000, seed=42, spread_m=2_000.0))
    page_rows(index, queries, args.repeat)
    category_rows(index, args.points, args.repeat)
    del index  # freed: the catalog below builds its own
    search_and_render(places, args.points, queries, args.repeat)
    return 0


def page_rows(index: GeohashIndex, queries: list[tuple[float, float]], repeat: int) -> None:
    """``page`` against ``within``: the query points at 5 km, then 5 and 50 km around each city."""
    print(f"{'case':<22} {'matches':>8} {'within us':>10} {'page us':>8} {'speed-up':>9}")
    print("-" * 61)
    page_row(index, "10k points, 5 km", queries, 5_000.0, repeat)
    for city, point in CITIES.items():
        for radius in (5_000.0, 50_000.0):
            page_row(index, f"{city}, {radius / 1000:.0f} km", [point], radius, repeat)


def page_row(index: GeohashIndex, case: str, points: list[tuple[float, float]], radius: float, repeat: int) -> None:
    """One row: every page checked against the cut of ``within``, then both timed."""
    matches = 0
    for lat, lon in points:  # the check, and the warm-up
        full = index.within(lat, lon, radius)
        first = index.page(lat, lon, radius, LIMIT)
        assert first == page_of(full, LIMIT, None), (case, lat, lon)
        if full:
            mid = full[len(full) // 2]
            assert index.page(lat, lon, radius, LIMIT, (mid[1], mid[0])) == page_of(full, LIMIT, (mid[1], mid[0]))
        matches += len(full)
    reps = max(1, 2_000 // len(points))
    batch = points * reps

    def all_matches() -> None:
        for lat, lon in batch:
            index.within(lat, lon, radius)

    def one_page() -> None:
        for lat, lon in batch:
            index.page(lat, lon, radius, LIMIT)

    w = best_us(all_matches, len(batch), repeat)
    p = best_us(one_page, len(batch), repeat)
    print(f"{case:<22} {matches / len(points):>8,.0f} {w:>10.1f} {p:>8.1f} {w / p:>8.1f}x", flush=True)


def category_rows(index: GeohashIndex, points: int, repeat: int) -> None:
    """A category's first page: ``page(where=...)`` against ``within`` filtered, then cut."""
    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(points)]
    wanted = CATEGORIES[0]
    print(f"\n{'category ' + repr(wanted):<22} {'matches':>8} {'filter us':>10} {'where us':>8} {'speed-up':>9}")
    print("-" * 61)
    for city, (lat, lon) in CITIES.items():
        for radius in (5_000.0, 50_000.0):
            category_row(index, categories, wanted, f"{city}, {radius / 1000:.0f} km", lat, lon, radius, repeat)


def category_row(
    index: GeohashIndex,
    categories: list[str],
    wanted: str,
    case: str,
    lat: float,
    lon: float,
    radius: float,
    repeat: int,
) -> None:
    """One row: ``page`` with ``where`` checked against ``within`` filtered and cut, then both timed."""

    def filtered() -> Any:
        return page_of([h for h in index.within(lat, lon, radius) if categories[h[0]] == wanted], LIMIT, None)

    def where() -> Any:
        return index.page(lat, lon, radius, LIMIT, where=(categories, wanted))

    first = where()
    assert first == filtered(), case
    reps = 200
    f = best_us(lambda: [filtered() for _ in range(reps)], reps, repeat)
    w = best_us(lambda: [where() for _ in range(reps)], reps, repeat)
    print(f"{case:<22} {first.total:>8,} {f:>10.1f} {w:>8.1f} {f / w:>8.1f}x", flush=True)


def search_and_render(places: Sequence[Any], points: int, queries: list[tuple[float, float]], repeat: int) -> None:
    """The API's search page and body without HTTP, against within + Business dicts + orjson."""
    print(f"\npage_bench: building a location_api catalog of {points:,} businesses", flush=True)
    rows = [(i, p.name, p.latitude, p.longitude, "cafe", f"{p.admin1}, {p.country}") for i, p in enumerate(places)]
    rows += [
        (len(rows) + i, f"{i}", la, lo, "shop", "") for i, (la, lo) in enumerate(scatter(points - len(rows), seed=7))
    ]
    catalog = Catalog.build(rows, max_radius_m=50_000.0, strategies=("geohash",))
    businesses = {r[0]: Business(*r) for r in rows}
    del rows
    index = catalog.indexes["geohash"]
    searches = [SearchQuery(lat, lon, 5_000.0, LIMIT, NO_FILTERS, False, None, None) for lat, lon in queries]

    def api(q: SearchQuery) -> bytes:
        page = search_memory(catalog, "geohash", q, None, 50_000.0)
        return search_body(page.total, page.radius_m, page.hits, page.prefixes, None)

    def peer(q: SearchQuery) -> bytes:
        hits = index.within(q.latitude, q.longitude, q.radius_m)
        return orjson.dumps(
            {
                "total": len(hits),
                "radius_m": q.radius_m,
                "businesses": [businesses[bid].to_hit_json(d) for bid, d in hits[:LIMIT]],
                "next_cursor": None,
            }
        )

    for q in searches:
        assert api(q) == peer(q), q
    a = best_us(lambda: [api(q) for q in searches], len(searches), repeat)
    p = best_us(lambda: [peer(q) for q in searches], len(searches), repeat)
    print(
        f"{'search + body, 5 km':<22} {'':>8} {p:>10.1f} {a:>8.1f} {p / a:>8.1f}x   (peer: within + dicts; API: page + cards)"
    )


if __name__ == "__main__":
    sys.exit(main())
