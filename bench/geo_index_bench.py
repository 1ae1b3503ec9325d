"""Benchmark the geo_index indexes against Redis GEOSEARCH and a numpy brute force.

Points and query points are scattered around the GeoNames places
(:func:`geo_common.places.scatter`), so their density follows the real world. For each
radius every index answers every query with ``within(lat, lon, radius, limit)``; the answers
are cross-checked against an exact brute force, and the same queries go to Redis
``GEOSEARCH ... BYRADIUS r m ASC COUNT limit`` (pipelined; the figure is Redis's own
server-side time per call from ``INFO commandstats``, i.e. one core's throughput, since
Redis executes commands on one thread).

Every contender gets one untimed warm-up pass (for the indexes it is the cross-check) and
then ``--repeat`` timed passes per radius, of which the fastest is reported; the same rule
applies to Redis, so a stall caused by another process on the machine does not decide the
comparison.

Usage::

    .venv/bin/python bench/geo_index_bench.py            # 1M points, 10k queries
    .venv/bin/python bench/geo_index_bench.py --points 10000000,50000000 --queries 5000
    .venv/bin/python bench/geo_index_bench.py --quick    # a small smoke run

Several sizes run one after the other, each with fresh indexes and a fresh Redis key (the
previous size's are freed first), so "bytes/pt" is each index's own RSS growth at that size.
Points come from :func:`points.scatter_arrays` (numpy, for tens of millions) and are loaded
with ``bulk_load_arrays``, as the API's catalog loader does.

Redis URL: ``--redis-url``, else ``$GEO_REDIS_URL``, else ``GEO_REDIS_URL`` from
``<repo>/.stack/env``, else ``redis://127.0.0.1:6379/0``. The run uses a fresh key and
deletes it afterwards; without a reachable Redis the Redis column is skipped.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from points import scatter_arrays  # noqa: E402
from geo_index import GeohashIndex, QuadTree, S2Index, SpatialIndex, haversine_m  # noqa: E402

R_M = 6_371_008.8
#: Redis GEO refuses latitudes beyond this (Web Mercator's limit).
REDIS_MAX_LAT = 85.05112878
#: Slack of the numpy pre-filter in the cross-check, metres: numpy's and libm's rounding
#: differ by many orders of magnitude less; every candidate is then decided by haversine_m.
SLACK_M = 1.0

#: The indexes, with their defaults.
INDEXES: dict[str, Callable[[], SpatialIndex[int]]] = {
    "geohash": GeohashIndex,
    "quadtree": QuadTree,
    "s2": S2Index,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def redis_url(cli: str | None) -> str:
    """The Redis URL: flag, then environment, then the local stack's env file."""
    if cli:
        return cli
    env = os.environ.get("GEO_REDIS_URL")
    if env:
        return env
    stack_env = REPO / ".stack" / "env"
    if stack_env.is_file():
        for line in stack_env.read_text().splitlines():
            m = re.match(r"\s*(?:export\s+)?GEO_REDIS_URL=(.*)$", line)
            if m:
                return m.group(1).strip().strip("'\"")
    return "redis://127.0.0.1:6379/0"


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- oracle
class NumpyBrute:
    """Brute force over all points with numpy.

    ``exact`` is the cross-check oracle: a latitude-sorted band (``|dlat| <= r/R``, padded)
    narrows the points, numpy's haversine narrows them to those within ``r + 1 m``, and
    ``haversine_m`` decides the rest, so its answer is exactly the plain scan's.
    ``full_scan`` is the plain vectorised scan of every point (its throughput is reported).
    """

    def __init__(self, lats: np.ndarray, lons: np.ndarray) -> None:
        self.lats = lats
        self.lons = lons
        self.phi = np.radians(lats)
        self.lam = np.radians(lons)
        self.cos_phi = np.cos(self.phi)
        order = np.argsort(lats, kind="stable")
        self.order = order
        self.sorted_lats = lats[order]
        self.s_phi = self.phi[order]
        self.s_lam = self.lam[order]
        self.s_cos = self.cos_phi[order]

    def _dist(self, phi: np.ndarray, lam: np.ndarray, cos_phi: np.ndarray, qlat: float, qlon: float) -> np.ndarray:
        qphi = math.radians(qlat)
        a = np.sin((phi - qphi) * 0.5) ** 2 + math.cos(qphi) * cos_phi * np.sin((lam - math.radians(qlon)) * 0.5) ** 2
        distances: np.ndarray = 2.0 * R_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
        return distances

    def full_scan(self, qlat: float, qlon: float, radius: float, limit: int) -> np.ndarray:
        d = self._dist(self.phi, self.lam, self.cos_phi, qlat, qlon)
        hit = np.nonzero(d <= radius)[0]
        return hit[np.lexsort((hit, d[hit]))][:limit]

    def exact(self, qlat: float, qlon: float, radius: float, limit: int) -> list[tuple[int, float]]:
        band = math.degrees((radius + SLACK_M) / R_M) + 1e-9
        lo = int(np.searchsorted(self.sorted_lats, qlat - band, side="left"))
        hi = int(np.searchsorted(self.sorted_lats, qlat + band, side="right"))
        d = self._dist(self.s_phi[lo:hi], self.s_lam[lo:hi], self.s_cos[lo:hi], qlat, qlon)
        cand = self.order[lo:hi][d <= radius + SLACK_M]
        out = []
        for i in cand.tolist():
            dist = haversine_m(qlat, qlon, float(self.lats[i]), float(self.lons[i]))
            if dist <= radius:
                out.append((dist, i))
        out.sort()
        return [(i, dd) for dd, i in out[:limit]]


# --------------------------------------------------------------------------- results
@dataclass
class Row:
    name: str
    build_s: float = math.nan
    bytes_per_point: float = math.nan
    qps: dict[float, float] = field(default_factory=dict)
    p50_us: dict[float, float] = field(default_factory=dict)
    p99_us: dict[float, float] = field(default_factory=dict)
    mismatches: dict[float, int] = field(default_factory=dict)
    note: str = ""


def timed_queries(fn: Callable[[float, float], Any], queries: Sequence[tuple[float, float]]) -> np.ndarray:
    """Run every query once; return each one's wall time in nanoseconds."""
    clock = time.perf_counter_ns
    lat_ns = [0] * len(queries)
    for n, (lat, lon) in enumerate(queries):
        t0 = clock()
        fn(lat, lon)
        lat_ns[n] = clock() - t0
    return np.array(lat_ns, dtype=np.int64)


def fill(row: Row, radius: float, lat_ns: np.ndarray) -> None:
    row.qps[radius] = len(lat_ns) / (lat_ns.sum() / 1e9)
    row.p50_us[radius] = float(np.percentile(lat_ns, 50)) / 1e3
    row.p99_us[radius] = float(np.percentile(lat_ns, 99)) / 1e3


# --------------------------------------------------------------------------- redis
class RedisPeer:
    """Redis GEO on the same points: pipelined GEOSEARCH, timed by Redis itself."""

    def __init__(self, url: str) -> None:
        import redis

        self.r = redis.Redis.from_url(url)
        self.r.ping()
        self.key = f"geo_index_bench:{uuid.uuid4().hex}"
        self.excluded_points = 0
        self.excluded_queries = 0

    def load(self, lats: Sequence[float], lons: Sequence[float]) -> float:
        t0 = time.perf_counter()
        pipe = self.r.pipeline(transaction=False)
        batch: list[Any] = []
        for i, (lat, lon) in enumerate(zip(lats, lons)):
            if abs(lat) > REDIS_MAX_LAT:
                self.excluded_points += 1
                continue
            batch.extend((lon, lat, i))
            if len(batch) >= 3_000:
                pipe.geoadd(self.key, batch)
                batch = []
                if len(pipe) >= 50:
                    pipe.execute()
        if batch:
            pipe.geoadd(self.key, batch)
        pipe.execute()
        return time.perf_counter() - t0

    def used_memory(self) -> int:
        """The server's ``used_memory``: the key's size is its growth over the load (``MEMORY
        USAGE ... SAMPLES 0`` walks every member, minutes at 50 million)."""
        return int(self.r.info("memory")["used_memory"])

    def _stats(self) -> tuple[int, int]:
        s = self.r.info("commandstats").get("cmdstat_geosearch", {"calls": 0, "usec": 0})
        return int(s["calls"]), int(s["usec"])

    def search(
        self, queries: Sequence[tuple[float, float]], radius: float, limit: int, withdist: bool
    ) -> tuple[float, float, float]:
        """Run every query; return (server us/call, client q/s, mean results)."""
        usable = [(la, lo) for la, lo in queries if abs(la) <= REDIS_MAX_LAT]
        self.excluded_queries = len(queries) - len(usable)
        extra = ("WITHDIST",) if withdist else ()
        calls0, usec0 = self._stats()
        t0 = time.perf_counter()
        found = 0
        for start in range(0, len(usable), 250):
            pipe = self.r.pipeline(transaction=False)
            for lat, lon in usable[start : start + 250]:
                pipe.execute_command(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    "GEOSEARCH",
                    self.key,
                    "FROMLONLAT",
                    lon,
                    lat,
                    "BYRADIUS",
                    radius,
                    "m",
                    "ASC",
                    "COUNT",
                    limit,
                    *extra,
                )
            found += sum(len(x) for x in pipe.execute())
        wall = time.perf_counter() - t0
        calls1, usec1 = self._stats()
        calls = calls1 - calls0
        return (usec1 - usec0) / calls, len(usable) / wall, found / max(1, len(usable))

    def close(self) -> None:
        self.r.unlink(self.key)  # freed in the background: a 50-million member key takes seconds
        self.r.close()


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", default="1000000", help="sizes, comma-separated, run one after the other")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--radii", default="500,2000,5000,20000", help="metres, comma-separated")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--indexes", default=",".join(INDEXES), help="which of: " + ", ".join(INDEXES))
    ap.add_argument("--full-scan-sample", type=int, default=100, help="queries timed for the plain numpy full scan")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed passes per contender and radius; the fastest is kept (same rule for Redis)",
    )
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--quick", action="store_true", help="50k points, 1k queries")
    args = ap.parse_args(argv)
    if args.quick:
        args.points = "50000"
        args.queries = min(args.queries, 1_000)
        args.full_scan_sample = min(args.full_scan_sample, 20)
    radii = [float(x) for x in args.radii.split(",")]
    names = [n.strip() for n in args.indexes.split(",") if n.strip()]
    limit = args.limit

    sizes = [int(x) for x in args.points.split(",")]
    log(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; sizes {sizes}, {args.queries:,} queries, radii {radii} m, "
        f"limit {limit}, seed {args.seed}"
    )
    bad = 0
    for n in sizes:
        bad += run_size(n, names, radii, limit, args)
    return 1 if bad else 0


def run_size(n: int, names: list[str], radii: list[float], limit: int, args: argparse.Namespace) -> int:
    """Build, cross-check and time every index and Redis at one size; print its tables."""
    t0 = time.perf_counter()
    lat_array, lon_array = scatter_arrays(n, seed=args.seed)
    q_lats, q_lons = scatter_arrays(args.queries, seed=args.seed + 1_000_003)
    queries = list(zip(q_lats.tolist(), q_lons.tolist()))
    id_array = np.arange(n, dtype=np.int64)
    log(f"{n:,} points: scattered points and queries in {time.perf_counter() - t0:.1f} s")

    brute = NumpyBrute(lat_array, lon_array)
    log("cross-check oracle: numpy band pre-filter + haversine_m for all queries ...")
    expected: dict[float, list[list[tuple[int, float]]]] = {}
    for radius in radii:
        t0 = time.perf_counter()
        expected[radius] = [brute.exact(la, lo, radius, limit) for la, lo in queries]
        mean = sum(map(len, expected[radius])) / len(queries)
        log(f"  {radius:>7.0f} m: {time.perf_counter() - t0:.1f} s, mean {mean:.2f} results/query")

    # Build every index first (RSS delta and build time each), then time them and Redis
    # radius by radius, back to back, so that they see the same machine load.
    indexes: dict[str, SpatialIndex[int]] = {}
    rows: list[Row] = []
    for name in names:
        row = Row(name)
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        idx = INDEXES[name]()
        idx.bulk_load_arrays(id_array, lat_array, lon_array)  # type: ignore[attr-defined]
        row.build_s = time.perf_counter() - t0
        row.bytes_per_point = (rss_bytes() - rss0) / n
        indexes[name] = idx
        rows.append(row)
        log(
            f"{name}: built in {row.build_s:.1f} s ({n / row.build_s / 1e6:.1f} M points/s), "
            f"{row.bytes_per_point:.1f} bytes/point (RSS delta)"
        )
    peer: RedisPeer | None = None
    redis_rows: list[Row] = []
    redis_note = ""
    if not args.no_redis:
        url = redis_url(args.redis_url)
        try:
            peer = RedisPeer(url)
        except Exception as exc:  # noqa: BLE001 - report and go on without the peer
            redis_note = f"Redis at {url} unreachable ({exc.__class__.__name__}); skipped"
            log(redis_note)
        else:
            log(f"Redis at {url}: loading key {peer.key} ...")
            before = peer.used_memory()
            load_s = peer.load(lat_array.tolist(), lon_array.tolist())
            rb = peer.used_memory() - before
            loaded = n - peer.excluded_points
            log(
                f"  loaded {loaded:,} points in {load_s:.1f} s (pipelined GEOADD), used_memory grew {rb:,} bytes; "
                f"{peer.excluded_points} points with |lat| > {REDIS_MAX_LAT} excluded"
            )
            for withdist in (False, True):
                redis_rows.append(
                    Row(
                        "redis GEOSEARCH" + (" WITHDIST" if withdist else ""),
                        build_s=load_s,
                        bytes_per_point=rb / max(1, loaded),
                    )
                )

    try:
        for radius in radii:
            log(f"radius {radius:.0f} m")
            for row, withdist in zip(redis_rows, (False, True)):
                assert peer is not None
                peer.search(queries, radius, limit, withdist)  # warm-up pass, like the indexes'
                usec, client_qps, mean = min(peer.search(queries, radius, limit, withdist) for _ in range(args.repeat))
                row.qps[radius] = 1e6 / usec
                row.note = f"{peer.excluded_queries} queries with |lat| > {REDIS_MAX_LAT} skipped"
                log(
                    f"  {row.name}: server {usec:.1f} us/call = {1e6 / usec:,.0f} q/s per core; "
                    f"client {client_qps:,.0f} q/s; mean {mean:.2f} results"
                )
            for row in rows:
                idx = indexes[row.name]
                # Cross-check first (untimed; it is also the warm-up pass), then a timed pass
                # whose answers are dropped, so that keeping 10k answers alive does not show
                # up as allocator/GC time.
                row.mismatches[radius] = sum(
                    1 for (la, lo), exp in zip(queries, expected[radius]) if idx.within(la, lo, radius, limit) != exp
                )

                def query(la: float, lo: float, idx: SpatialIndex[int] = idx, radius: float = radius) -> Any:
                    return idx.within(la, lo, radius, limit)

                passes = [timed_queries(query, queries) for _ in range(args.repeat)]
                fill(row, radius, min(passes, key=lambda p: int(p.sum())))
                log(
                    f"  {row.name:>8}: {row.qps[radius]:>9,.0f} q/s  p50 {row.p50_us[radius]:8.1f} us  "
                    f"p99 {row.p99_us[radius]:8.1f} us  mismatches {row.mismatches[radius]}"
                )
    finally:
        if peer is not None:
            peer.close()

    # numpy plain full scan (sampled)
    sample = queries[: args.full_scan_sample]
    full = Row("numpy full scan", note=f"{len(sample)}-query sample")
    for radius in radii:

        def scan(la: float, lo: float, radius: float = radius) -> Any:
            return brute.full_scan(la, lo, radius, limit)

        lat_ns = timed_queries(scan, sample)
        fill(full, radius, lat_ns)
    log("numpy full scan: " + ", ".join(f"{r:.0f} m {full.qps[r]:,.0f} q/s" for r in radii))

    log(f"load average at the end {os.getloadavg()[0]:.2f}")
    print_table(n, rows + [full] + redis_rows, radii, limit, args, redis_note)
    return sum(sum(r.mismatches.values()) for r in rows)


def print_table(
    n: int, rows: list[Row], radii: list[float], limit: int, args: argparse.Namespace, redis_note: str
) -> None:
    print()
    print(
        f"## Results: {n:,} points, {args.queries:,} queries, limit {limit}, seed {args.seed}, "
        f"fastest of {args.repeat} timed passes"
    )
    print()
    print("| index | build s | bytes/pt | radius | q/s (1 core) | p50 us | p99 us | mismatches |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def num(d: dict[float, float], radius: float, fmt: str) -> str:
        v = d.get(radius)
        return "-" if v is None or math.isnan(v) else format(v, fmt)

    for row in rows:
        for radius in radii:
            mm = row.mismatches.get(radius)
            build = "-" if math.isnan(row.build_s) else f"{row.build_s:.1f}"
            per_pt = "-" if math.isnan(row.bytes_per_point) else f"{row.bytes_per_point:.1f}"
            print(
                f"| {row.name} | {build} | {per_pt} | {radius:.0f} m | {num(row.qps, radius, ',.0f')} | "
                f"{num(row.p50_us, radius, '.1f')} | {num(row.p99_us, radius, '.1f')} | "
                f"{'-' if mm is None else mm} |"
            )
    notes = [f"{r.name}: {r.note}" for r in rows if r.note] + ([redis_note] if redis_note else [])
    for note in notes:
        print(f"\n- {note}", end="")
    print("\n")
    index_rows = [r for r in rows if r.mismatches]
    redis = [r for r in rows if r.name.startswith("redis")]
    full = next((r for r in rows if r.name == "numpy full scan"), None)
    print("| radius | best index | its q/s | vs Redis (fastest form) | vs numpy full scan |")
    print("|---:|---|---:|---:|---:|")
    for radius in radii:
        best = max(index_rows, key=lambda r: r.qps.get(radius, 0.0))
        q = best.qps[radius]
        redis_q = max((r.qps[radius] for r in redis), default=math.nan)
        full_q = full.qps[radius] if full else math.nan
        vs_redis = "-" if math.isnan(redis_q) else f"{q / redis_q:.2f}x"
        print(f"| {radius:.0f} m | {best.name} | {q:,.0f} | {vs_redis} | {q / full_q:.0f}x |")
    bad = sum(sum(r.mismatches.values()) for r in index_rows)
    print(f"\nCross-check: {bad} mismatches in {len(index_rows) * len(radii) * args.queries:,} answers.", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
