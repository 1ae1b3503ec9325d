"""How long a catalog rebuild stalls the API's event loop, against the plain way of rebuilding.

A rebuild (at start-up, after a bulk load, after a long database outage) fetches every
business and builds the in-memory indexes while the instance keeps serving searches. What a
search feels meanwhile is the event loop's stalls: the longest stretch in which no other
task could run. A ticker task sleeps 1 ms in a loop and records every gap between its
wake-ups; a gap is a stall.

Two ways are measured in the same run, alternately, over the same database (default: the
144,563 GeoNames places plus synthetic ones up to 1,000,000, loaded into a database of the
bench's own):

* **refresher**: ``location_api.refresh.Refresher.rebuild`` as the API runs it (the collector
  paused from the fetch until the new catalog is frozen, rows in geohash order, the old
  catalog taken apart in a worker thread, then the heap collapsed into huge pages in a
  worker thread; the collector's pause and the huge pages only when ``GEO_PROCESS_TUNING`` is
  on, as by default);
* **plain**: the straightforward way: the rows fetched with the collector running and in
  table order, the catalog built in a worker thread with the collector paused, frozen, and
  the old one dropped on the event loop.

Each way rebuilds ``--rounds`` times over a catalog already built (so every rebuild also
frees one). Run: ``.venv/bin/python bench/rebuild_bench.py`` (about 3 minutes);
``--businesses N`` for another size.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from geo_common import gc_control  # noqa: E402
from geo_common.database import Database, PoolOptions  # noqa: E402
from geo_common.settings import Settings, load_settings  # noqa: E402
from location_api.cache import Cache  # noqa: E402
from location_api.catalog import Catalog  # noqa: E402
from location_api.refresh import Refresher  # noqa: E402

from bench_db import GEONAMES, create_database, drop_database, replicas_caught_up  # noqa: E402

DATABASE = "geo_bench_rebuild"
STRATEGIES = ("geohash",)  # the default strategy, as the HTTP benchmark serves it


def say(message: str) -> None:
    print(f"rebuild_bench: {message}", flush=True)


async def prepare(base: Settings, total: int) -> Settings:
    settings = await create_database(base, DATABASE, total, say)
    await replicas_caught_up(settings)
    return settings


class PlainRebuild:
    """The peer: a rebuild as one would first write it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.catalog: Catalog | None = None

    async def rebuild(self) -> None:
        async with self.db.snapshot() as (_node, conn):
            rows = await conn.fetch("SELECT id, name, latitude, longitude, category, address FROM businesses")
        loop = asyncio.get_running_loop()
        # Paused and frozen whatever GEO_PROCESS_TUNING says: the baseline stays the same.
        with gc_control.paused(freeze=True):
            catalog = await loop.run_in_executor(
                None, functools.partial(Catalog.build, rows, max_radius_m=50_000.0, strategies=STRATEGIES)
            )
            del rows
        self.catalog = catalog  # the old one is freed here, on the event loop


async def stalls_during(rebuild: Any) -> dict[str, float]:
    """Run one rebuild with the ticker; its gaps, in milliseconds."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    await rebuild()
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.2)  # a stall right after the rebuild returns counts too
    ticker.cancel()
    gaps.sort()
    ms = [g * 1000 for g in gaps]
    return {
        "seconds": seconds,
        "max_ms": ms[-1],
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "over_50ms": float(sum(1 for g in ms if g > 50)),
        "stalled_s": sum(g for g in ms if g > 50) / 1000,
    }


async def run(settings: Settings, rounds: int) -> dict[str, list[dict[str, float]]]:
    db = await Database.open(settings, pool=PoolOptions("geo-api"))
    cache = Cache(settings.redis_url, settings.redis_namespace, 60)
    try:
        ways: dict[str, Refresher | PlainRebuild] = {
            "refresher": Refresher(
                db,
                cache,
                max_radius_m=50_000.0,
                interval_s=1.0,
                strategies=STRATEGIES,
                process_tuning=settings.process_tuning,
            ),
            "plain": PlainRebuild(db),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
        for name, way in ways.items():
            say(f"{name}: first build (not measured)")
            await way.rebuild()
        for n in range(1, rounds + 1):
            for name, way in ways.items():
                figures = await stalls_during(way.rebuild)
                results[name].append(figures)
                say(
                    f"round {n}, {name}: {figures['seconds']:.1f} s, longest stall {figures['max_ms']:.0f} ms, "
                    f"{figures['over_50ms']:.0f} stalls over 50 ms ({figures['stalled_s']:.2f} s in all)"
                )
        return results
    finally:
        await cache.close()
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--businesses", type=int, default=1_000_000, help="catalog size (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rebuilds per way (default 3)")
    args = parser.parse_args(argv)
    if args.businesses < 1 or args.rounds < 1:
        parser.error("--businesses and --rounds must be at least 1")
    base = load_settings()
    say(f"loading {max(args.businesses, GEONAMES):,} businesses into {DATABASE}")
    settings = asyncio.run(prepare(base, args.businesses))
    try:
        results = asyncio.run(run(settings, args.rounds))
    finally:
        asyncio.run(drop_database(base, DATABASE))
    med = {name: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for name, rows in results.items()}
    print()
    print(
        f"{'way':<10} {'rebuild s':>9} {'longest stall ms':>16} {'p99 gap ms':>10} {'stalls >50 ms':>13} {'stalled s':>9}"
    )
    for name, m in med.items():
        print(
            f"{name:<10} {m['seconds']:>9.1f} {m['max_ms']:>16.0f} {m['p99_ms']:>10.1f} {m['over_50ms']:>13.0f} "
            f"{m['stalled_s']:>9.2f}"
        )
    r, p = med["refresher"], med["plain"]
    print(
        f"\nlongest stall: refresher / plain = {r['max_ms'] / p['max_ms']:.2f}x "
        f"(medians over {args.rounds} rounds each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
