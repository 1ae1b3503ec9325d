"""Catalog loading and hydration at scale: how soon a read instance is ready, and what reading
each page's businesses from Redis costs beside cards held in memory.

For each catalog size (``--businesses``, default 1,000,000 and 10,000,000):

* **data**: a database of the bench's own (``geo_bench_catalog``) holding that many
  businesses: the GeoNames places and synthetic ones scattered around them
  (:func:`location_api.demo.load_demo`, one COPY). The table's change-log triggers are off
  during the load (no instance runs meanwhile; at tens of millions the log would double the
  disk the load takes), and the covering geohash index is dropped before it and built after
  it from its own definition (one sorted build instead of tens of millions of inserts);
* **loader**: :func:`location_api.catalog_load.load_snapshot` with ``cards_max=0`` from the
  replica, in a process of its own: businesses/s of the binary COPY into arrays, then the
  geohash index built from them (:meth:`location_api.catalog.Catalog.of_positions`), and
  the process's peak RSS (``ru_maxrss``);
* **readiness**: an API process (read role, the geohash index, as bench/location_api_bench.py
  runs it) started cold until it serves (its ready line comes once the catalog is built):
  seconds and peak RSS (``VmHWM``), positions only (``GEO_API_CARDS_MAX=0``) and, up to
  ``--cards-up-to`` businesses, with cards (every card in memory);
* **search**: both instances side by side, ``GET /v1/search/nearby`` at 5 km, limit 20, over
  the location_api bench's 10,000 points: maximum throughput from ``wrk`` (64 connections, in
  interleaved rounds), then p50/p99 from ``geo-loadgen search`` open loop at half the
  positions-only maximum, the same rate for both. Positions only reads each page's
  businesses from Redis: one wrk pass over the points first fills it (entries live
  ``GEO_API_CACHE_TTL_S=3600`` here, so none expires during the run), and the Redis hit
  ratio from its ``/metrics`` is recorded.

Usage::

    .venv/bin/python bench/catalog_bench.py                          # 1M and 10M
    .venv/bin/python bench/catalog_bench.py --businesses 50000000 --no-search

Figures go to stdout and ``bench/out/catalog/results.json``; the database is dropped at the
end unless ``--keep``. Needs the local stack and ``wrk`` (see bench/location_api_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from geo_common.places import scatter  # noqa: E402
from geo_common.settings import Settings, load_settings  # noqa: E402
from location_api.cache import Cache  # noqa: E402
from location_api.demo import load_demo  # noqa: E402

import location_api_bench as api_bench  # noqa: E402
from bench_db import drop_database, new_database, replicas_caught_up  # noqa: E402

OUT = REPO / "bench" / "out" / "catalog"
DATABASE = "geo_bench_catalog"
COVER_INDEX = "businesses_geohash_cover_idx"


def say(message: str) -> None:
    print(f"catalog_bench: {message}", flush=True)


# --------------------------------------------------------------------------- data


async def load_businesses(base: Settings, total: int) -> tuple[Settings, float]:
    """A new database holding ``total`` businesses; the settings and the seconds it took."""
    started = time.monotonic()
    settings = await new_database(base, DATABASE)
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        indexdef = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", COVER_INDEX)
        await conn.execute(f"DROP INDEX {COVER_INDEX}")
        await conn.execute("ALTER TABLE businesses DISABLE TRIGGER USER")
        await load_demo(settings.pg_primary, synthetic=max(0, total - 144_563), say=say_every_million)
        say("building the covering geohash index")
        await conn.execute(indexdef)
        await conn.execute("ALTER TABLE businesses ENABLE TRIGGER USER")
    finally:
        await conn.close()
    await replicas_caught_up(settings)
    return settings, time.monotonic() - started


def say_every_million(line: str) -> None:
    counted = re.match(r"\s*([\d,]+) / ", line)
    if counted is None or int(counted.group(1).replace(",", "")) % 1_000_000 == 0:
        say(line.strip())


async def disk_of(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


# --------------------------------------------------------------------------- the loader alone


def run_loader_worker(dsn: str) -> None:
    """In a process of its own: the loader, then the geohash index from its arrays."""
    import logging

    from location_api.catalog import Catalog
    from location_api.catalog_load import load_snapshot

    logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def load() -> Any:
        conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})  # as the API's pools
        try:
            return await load_snapshot(conn, cards_max=0)
        finally:
            await conn.close()

    started = time.monotonic()
    snapshot = asyncio.run(load())
    read_s = time.monotonic() - started
    rss_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert snapshot.positions is not None
    built = time.monotonic()
    catalog = Catalog.of_positions(*snapshot.positions, max_radius_m=50_000.0, strategies=("geohash",))
    figures = {
        "businesses": len(catalog),
        "read_s": read_s,
        "per_s": len(catalog) / read_s,
        "rss_after_read": rss_read,
        "build_s": time.monotonic() - built,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(figures), flush=True)


def measure_loader(settings: Settings) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "worker", "--dsn", settings.pg_replicas[0] if settings.pg_replicas else ""],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in out.stderr.splitlines():
        say(f"  {line}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- the API


def namespace(settings: Settings, *, cards: bool) -> str:
    return f"{settings.redis_namespace}-{'cards' if cards else 'ids'}"


async def forget_cache(settings: Settings) -> None:
    """Drop both instances' Redis entries (before a run: none from an earlier one; after it:
    nothing left in the shared Redis)."""
    for cards in (False, True):
        cache = Cache(settings.redis_url, namespace(settings, cards=cards), 60, tls_ca=settings.redis_tls_ca)
        try:
            await cache.flush()
        finally:
            await cache.close()


def api_env(settings: Settings, *, cards: bool) -> dict[str, str]:
    env = api_bench.env_for(replace(settings, redis_namespace=namespace(settings, cards=cards)))
    env["GEO_API_CARDS_MAX"] = str(10**10 if cards else 0)
    env["GEO_API_CACHE_TTL_S"] = "3600"
    return env


def start_api(settings: Settings, *, cards: bool) -> tuple[api_bench.Servers, dict[str, float]]:
    """One API process, started cold; how long until it served, and its peak RSS."""
    started = time.monotonic()
    servers = api_bench.start_servers("api", 1, api_env(settings, cards=cards))
    ready_s = time.monotonic() - started
    status = Path(f"/proc/{servers.pids[0]}/status").read_text()
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
    return servers, {"ready_s": ready_s, "rss_peak": int(hwm.group(1)) * 1024 if hwm else float("nan")}


def hit_ratio(port: int) -> float:
    """Cache hits over lookups since the server started (NaN before the first lookup)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counts = {"hit": 0.0, "miss": 0.0}
    for result, value in re.findall(
        r'^geo_api_cache_lookups_total\{kind="\w+",result="(hit|miss)"\} (\S+)$', text, re.M
    ):
        counts[result] += float(value)
    lookups = counts["hit"] + counts["miss"]
    return counts["hit"] / lookups if lookups else float("nan")


def search_figures(servers: dict[str, api_bench.Servers], wrk: str, duration: int, rounds: int) -> dict[str, Any]:
    points = list(scatter(api_bench.POINTS, seed=42, spread_m=2_000.0))
    paths, points_file = OUT / "paths.txt", OUT / "points.csv"
    paths.write_text(
        "".join(
            f"/v1/search/nearby?latitude={lat!r}&longitude={lon!r}&radius={api_bench.RADIUS_M}&limit={api_bench.LIMIT}\n"
            for lat, lon in points
        )
    )
    points_file.write_text("".join(f"{lat!r},{lon!r}\n" for lat, lon in points))
    api_bench.OUT.mkdir(parents=True, exist_ok=True)  # where run_wrk writes its script
    for kind, running in servers.items():
        say(f"  warming up {kind} (one wrk pass, not counted)")
        api_bench.run_wrk(wrk, running.port, paths, duration)
    maxima: dict[str, list[float]] = {kind: [] for kind in servers}
    for n in range(1, rounds + 1):
        for kind, running in servers.items():
            maxima[kind].append(api_bench.run_wrk(wrk, running.port, paths, duration)["rps"])
        say(f"  round {n}: " + ", ".join(f"{k} {v[-1]:.0f} req/s" for k, v in maxima.items()))
    rate = api_bench.median(maxima["positions"]) / 2
    results: dict[str, Any] = {}
    for kind, running in servers.items():
        loop = api_bench.run_loadgen(running.port, points_file, rate, duration, OUT / f"loadgen_{kind}", running.pids)
        results[kind] = {"max_rps": api_bench.median(maxima[kind]), "rounds": maxima[kind], "open_loop": loop}
        say(f"  {kind}: open loop at {rate:.0f} req/s: p50 {loop['p50_ms']:.2f} ms, p99 {loop['p99_ms']:.2f} ms")
    results["positions"]["redis_hit_ratio"] = hit_ratio(servers["positions"].port)
    return results


# --------------------------------------------------------------------------- main


def bench_size(base: Settings, total: int, args: argparse.Namespace, wrk: str | None) -> dict[str, Any]:
    say(f"[{total:,}] loading into {DATABASE}")
    settings, load_s = asyncio.run(load_businesses(base, total))
    result: dict[str, Any] = {"load_s": load_s, "database_bytes": asyncio.run(disk_of(settings))}
    say(f"[{total:,}] loaded in {load_s:.0f} s, {result['database_bytes'] / 2**30:.1f} GiB on the primary")
    try:
        result["loader"] = loader = measure_loader(settings)
        say(
            f"[{total:,}] loader: {loader['per_s']:,.0f} businesses/s ({loader['read_s']:.1f} s), index built in "
            f"{loader['build_s']:.1f} s, peak RSS {loader['rss_peak'] / 2**30:.2f} GiB"
        )
        servers: dict[str, api_bench.Servers] = {}
        asyncio.run(forget_cache(settings))
        try:
            kinds = ["positions", *(["cards"] if total <= args.cards_up_to else [])]
            for kind in kinds:
                servers[kind], result[f"ready_{kind}"] = start_api(settings, cards=kind == "cards")
                ready = result[f"ready_{kind}"]
                say(
                    f"[{total:,}] API ({kind}) ready in {ready['ready_s']:.1f} s, peak RSS {ready['rss_peak'] / 2**30:.2f} GiB"
                )
            if wrk is not None:
                result["search"] = search_figures(servers, wrk, args.duration, args.rounds)
        finally:
            for running in servers.values():
                running.stop()
            asyncio.run(forget_cache(settings))
    finally:
        if not args.keep:
            asyncio.run(drop_database(base, DATABASE))
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        worker = argparse.ArgumentParser(prog="catalog_bench worker")
        worker.add_argument("--dsn", required=True)
        run_loader_worker(worker.parse_args(argv[1:]).dsn)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--businesses", type=int, action="append", help="catalog size (repeatable; default 1M, 10M)")
    parser.add_argument("--cards-up-to", type=int, default=10_000_000, help="also run with cards up to this size")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk and open-loop run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved wrk rounds (default 3)")
    parser.add_argument("--no-search", action="store_true", help="loading and readiness only")
    parser.add_argument("--keep", action="store_true", help="keep the database (the last size's)")
    args = parser.parse_args(argv)
    sizes = args.businesses or [1_000_000, 10_000_000]
    if any(n < 144_563 for n in sizes) or args.rounds < 1:
        parser.error("--businesses must be at least 144,563 (the GeoNames places); --rounds at least 1")
    OUT.mkdir(parents=True, exist_ok=True)
    base = load_settings()
    wrk = None if args.no_search else api_bench.ensure_wrk()
    say(f"machine: {os.cpu_count()} cores; disk free {shutil.disk_usage(REPO).free / 2**30:.0f} GiB")
    results = {f"{n:,}": bench_size(base, n, args, wrk) for n in sizes}
    (OUT / "results.json").write_text(
        json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]), "results": results}, indent=2)
    )
    say(f"results in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
