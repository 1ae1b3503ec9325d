"""Benchmark nearby search over HTTP against its two yardsticks, on the same cores.

For each data set (the 144,563 GeoNames businesses, and 1,000,000: those plus synthetic ones
scattered around them) and for 1 and 2 API processes sharing one port (SO_REUSEPORT):

* **API**: ``GET /v1/search/nearby`` at 5 km, limit 20, default strategy (in-memory geohash),
  every request a different point from a list of 10,000 scattered around GeoNames places;
  maximum throughput from ``wrk`` (closed loop, 64 connections, a Lua script cycling the
  URLs), then open loop at half that rate by ``geo-loadgen search`` (at most 64 connections,
  its default 0.25 ms tick) for p50/p99 measured from the intended send times (no
  coordinated omission); hello-world is driven at that same rate too (the tail this machine
  and generator give a server that does nothing), and at half its own maximum (a server about
  as busy as the API at its half rate: more than half of a core per process, since requests
  that come one at a time cost more each than wrk's; each run records how busy the servers
  were); these three in as many rounds as the maxima, each figure the median of the rounds'.
  Once after them, the bench's own lean driver (raw protocols, no histograms, no report) at
  the API's half rate, as a check on the generator;
* **hello-world ceiling**: a bare aiohttp app (uvloop, no middleware) answering the same URLs
  with a fixed small JSON body, driven by the same wrk command: what the framework allows;
* **hello-world + index query**: the same app, but each request also parses latitude and
  longitude and makes the one ``GeohashIndex.page`` call every search makes (the API's
  default index, built from the replica as the API builds it): the floor of any search
  handler in this design, with no validation, no JSON of results and no metrics;
* **PostGIS direct**: the same points straight to PostgreSQL with ``pgbench`` (prepared,
  8 clients, 2 threads): ``ST_DWithin(geog, point, 5000) ORDER BY geog <-> point LIMIT 20``
  on a geography column with a GiST index. When the API runs fewer processes than the
  machine has cores, PostGIS is measured a second time with PostgreSQL's backends on as
  many cores as the API has processes (``PostmasterPin``): one API process uses one core,
  and eight backends left free would use them all.

Everything (drivers, servers, PostgreSQL) runs on this machine's cores at once, so each
figure is what the whole machine does, not one server process in isolation. The four maxima
are measured in interleaved rounds (hello-world, floor, API, PostGIS; three rounds by
default) and reported as medians, the ratios as medians of each round's own ratio: a machine
whose speed drifts during the run moves all four alike.

On a virtual machine the host may take the cores for something else (steal, read from
/proc/stat by :mod:`host_steal`); every round and every open-loop run records the share it
took, so that a figure from a contended host can be told from a slow server. Every open-loop
run also records the CPU that processes other than the bench's servers and driver used
meanwhile (:class:`hiccups.OthersCpu`; the senders are the bench's own children, so not
counted), and the busiest of them: work on the same machine that took the cores from what is
measured.

Usage::

    .venv/bin/python bench/location_api_bench.py            # both data sets, 10 s per run
    .venv/bin/python bench/location_api_bench.py --quick    # 144k only, 5 s per run

It needs the local stack (``geo-stack up``), ``wrk`` (installed from Debian's package when
run as root, otherwise named) and ``pgbench`` (PostgreSQL's). Each data set gets a database
of its own (``geo_bench_api_*``, PostGIS enabled), dropped at the end unless ``--keep``.
Figures go to stdout and ``bench/out/location_api/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from geo_common.places import scatter  # noqa: E402
from geo_common.settings import Settings, load_settings  # noqa: E402
from loadgen.clock import Pacer  # noqa: E402
from loadgen.search import DEFAULT_TICK_S  # noqa: E402

from bench_db import GEONAMES, create_database, drop_database, replicas_caught_up  # noqa: E402
from hiccups import OthersCpu  # noqa: E402
from host_steal import StealMeter  # noqa: E402

OUT = REPO / "bench" / "out" / "location_api"
RADIUS_M = 5_000
LIMIT = 20
POINTS = 10_000
CONNECTIONS = 64
#: The open-loop driver's sending tick, geo-loadgen's default: a latency includes up to this
#: much sending delay.
TICK_S = DEFAULT_TICK_S
PGBENCH_CLIENTS = 8

_LUA = """
local paths = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = math.random(#paths)
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""

_PGBENCH_SQL = """\\set i random(1, {points})
SELECT b.id, b.name, b.latitude, b.longitude, b.category, b.address, ST_Distance(b.geog, q.geog) AS distance_m
  FROM businesses_postgis b, (SELECT geog FROM bench_points WHERE id = :i) q
 WHERE ST_DWithin(b.geog, q.geog, {radius})
 ORDER BY b.geog <-> q.geog
 LIMIT {limit};
"""


# --------------------------------------------------------------------------- tools


def say(message: str) -> None:
    print(f"location_api_bench: {message}", flush=True)


def ensure_wrk() -> str:
    """The wrk program; installed from Debian's package when missing and run as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing wrk (apt-get install wrk)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=900)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("location_api_bench: wrk is missing; install the Debian package (as root: apt-get install wrk)")


def find_pgbench() -> str:
    found = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None)
    if not found:
        raise SystemExit("location_api_bench: pgbench is missing; install the Debian package postgresql-client")
    return str(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- servers


def serve_worker(kind: str, port: int) -> None:
    """One server process on a shared port (SO_REUSEPORT): the API, or the hello-world ceiling."""
    import uvloop
    from aiohttp import web

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if kind == "api":  # served as geo-api serves it: plain searches below aiohttp (location_api.site)
        from geo_common.serve import RUNNER_OPTIONS
        from location_api.app import create_app
        from location_api.site import ApiSite

        async def serve_api() -> None:
            runner = web.AppRunner(create_app(load_settings()), access_log=None, **RUNNER_OPTIONS)
            await runner.setup()
            await ApiSite(runner, "127.0.0.1", port, reuse_port=True).start()
            print("ready", flush=True)
            await asyncio.Event().wait()  # until SIGTERM

        asyncio.run(serve_api())
        return
    from location_api.openapi import openapi_document
    from location_api.contract import Role

    body = json.dumps({"total": 0, "radius_m": RADIUS_M, "businesses": [], "next_cursor": None}).encode()
    app = web.Application()
    if kind == "hello":

        async def hello(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        app.router.add_get("/v1/search/nearby", hello)
    else:  # hello-index: hello-world plus the one index query every search makes
        index = index_from_replica(load_settings())

        async def hello_index(request: web.Request) -> web.Response:
            query = request.query
            index.page(float(query["latitude"]), float(query["longitude"]), float(RADIUS_M), LIMIT)
            return web.Response(body=body, content_type="application/json")

        app.router.add_get("/v1/search/nearby", hello_index)
    # Named as the API names itself, which geo-loadgen checks before it sends anything
    # (registered after the search route, which it leaves as the first one matched).
    document = openapi_document(Role.READ, load_settings().max_radius_m)

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    web.run_app(
        app, host="127.0.0.1", port=port, reuse_port=True, access_log=None, print=lambda _m: print("ready", flush=True)
    )


def index_from_replica(settings: Settings) -> Any:
    """The API's default in-memory index (geohash), built as the API builds it, from the replica."""
    from geo_common.tuning import ProcessTuning
    from location_api import catalog_queries
    from location_api.catalog import Catalog

    async def rows() -> list[Any]:
        conn = await asyncpg.connect(settings.pg_replicas[0])
        try:
            return (await catalog_queries.load_all(conn))[1]
        finally:
            await conn.close()

    tuning = ProcessTuning(settings.process_tuning)  # the API's tuning: a frozen build, then huge pages
    fetched = asyncio.run(rows())
    with tuning.building():
        catalog = Catalog.build(fetched, max_radius_m=settings.max_radius_m, strategies=("geohash",))
        del fetched
    tuning.collapse_heap()
    return catalog.indexes["geohash"]


@dataclass
class Servers:
    """Processes serving one port."""

    port: int
    procs: list[subprocess.Popen[str]]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()


def start_servers(kind: str, count: int, env: dict[str, str]) -> Servers:
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", kind, "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    servers = Servers(port, procs)
    for p in procs:
        assert p.stdout is not None
        lines = []
        for line in p.stdout:
            lines.append(line)
            if line.strip() == "ready":
                break
        else:
            servers.stop()
            raise SystemExit(f"location_api_bench: a {kind} server did not start:\n{''.join(lines)}")
    return servers


# --------------------------------------------------------------------------- drivers


def run_wrk(wrk: str, port: int, paths_file: Path, duration_s: int, connections: int = CONNECTIONS) -> dict[str, float]:
    script = OUT / "paths.lua"
    script.write_text(_LUA)
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(paths_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise SystemExit(f"location_api_bench: {bad.group(1)} error responses under wrk:\n{out}")
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {"rps": rps, **({"p99_ms": float(p99.group(1)) * scale[p99.group(2)]} if p99 else {})}


def run_loadgen(
    port: int, points_file: Path, rate: float, duration_s: float, out: Path, servers: Sequence[int]
) -> dict[str, Any]:
    """``geo-loadgen search`` open loop at ``rate`` for ``duration_s``, as a process of its own:
    the bench's open-loop measure, the command users run.

    The figures are those of :func:`drive` (the same keys, latencies in milliseconds from each
    request's intended send time) and: ``achieved``, the answers a second over the run's
    duration; ``cpu_s``, what the generator used while it sent (``generator_cpu_ms``);
    ``send_lag_p99_ms``, how late the 99th percentile of requests left (its 0.25 ms tick
    included); ``generator_cpu_saturated_s``, the seconds in which the generator itself
    had no CPU to spare, so that a run it could not keep up with shows; and ``server_busy``,
    the CPU the ``servers`` (pids) used over the run's duration, per process: a server at
    half its closed-loop maximum is busier than half, since requests that come one at a time
    cost more each than those wrk sends back to back.
    """
    with StealMeter() as steal, OthersCpu() as others:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen",
                "search",
                "--url",
                f"http://127.0.0.1:{port}",
                "--rate",
                f"{rate:.0f}",
                "--duration",
                f"{duration_s}s",
                "--points",
                str(points_file),
                "--radius",
                str(RADIUS_M),
                "--limit",
                str(LIMIT),
                "--max-in-flight",
                str(CONNECTIONS),
                "--max-errors",  # errors are a figure of the bench, not a reason to stop it
                "100%",
                "--no-progress",
                "--out",
                str(out),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    report = json.loads((out / "report.json").read_text())
    metric = report["metrics"][report["main_metric"]]
    counters = report["counters"]
    return {
        "rate": round(rate),
        "achieved": report["completed"] / duration_s,
        "completed": report["completed"],
        "p50_ms": metric["p50"],
        "p99_ms": metric["p99"],
        "p999_ms": metric["p99.9"],
        "max_ms": metric["max"],
        "errors": counters.get("errors", 0) + report["operations"] - report["completed"],
        "cpu_s": counters.get("generator_cpu_ms", 0) / 1000,
        "send_lag_p99_ms": report["metrics"]["send_lag"]["p99"],
        "generator_cpu_saturated_s": counters.get("generator_cpu_saturated_s", 0),
        "server_busy": others.used_ms(servers) / 1000 / (duration_s * len(servers)),
        **machine_figures(steal, others),
    }


def machine_figures(steal: StealMeter, others: OthersCpu) -> dict[str, Any]:
    """What the machine did around an open-loop run: ``host_steal``, the share of the cores the
    host took (:mod:`host_steal`; None where it cannot be read); ``others_cpu_ms``, the CPU that
    processes other than the bench's own (its servers and senders) used; ``others_busiest``,
    the busiest of them (:class:`hiccups.OthersCpu`)."""
    return {
        "host_steal": steal.share,
        "others_cpu_ms": others.total_ms,
        "others_busiest": [{"name": n, "pid": pid, "cpu_ms": round(ms)} for n, pid, ms in others.busiest],
    }


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the open-loop driver, one request at a time."""

    def __init__(self, driver: _OpenLoop) -> None:
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.intended = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCP transport

    def send(self, request: bytes, intended: float) -> None:
        assert self.transport is not None
        self.intended = intended
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        self.driver.done(self, head[9:12] == b"200", self.intended)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.lost += 1


class _OpenLoop:
    """Send requests at fixed intended times; latency counts from the intended time.

    A request that finds every connection busy waits in a queue, and the wait is part of its
    latency: a stalled server cannot hide behind a slowed-down driver. Requests leave from
    geo-loadgen's :class:`loadgen.clock.Pacer` on its ``TICK_S`` tick, as geo-loadgen's own
    do, so a latency includes up to that much sending delay; between wake-ups the driver
    sleeps in epoll and leaves the cores it shares to the servers. Written on raw asyncio
    protocols (uvloop), with no histogram or report, so that it costs little CPU.
    """

    def __init__(self, requests: list[bytes]) -> None:
        self.requests = requests
        self.idle: list[_Connection] = []
        self.backlog: list[float] = []
        self.latencies: list[float] = []
        self.errors = 0
        self.lost = 0
        self.sent = 0
        self.loop = asyncio.get_running_loop()

    def _next_request(self) -> bytes:
        request = self.requests[self.sent % len(self.requests)]
        self.sent += 1
        return request

    def done(self, conn: _Connection, ok: bool, intended: float) -> None:
        self.latencies.append(time.perf_counter() - intended)
        if not ok:
            self.errors += 1
        if self.backlog:
            conn.send(self._next_request(), self.backlog.pop(0))
        else:
            self.idle.append(conn)

    async def run(self, port: int, rate: float, duration_s: float, connections: int) -> dict[str, float]:
        cpu = time.process_time()
        for _ in range(connections):
            _transport, conn = await self.loop.create_connection(lambda: _Connection(self), "127.0.0.1", port)
            self.idle.append(conn)
        # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds.
        interval = 1.0 / rate
        total = int(rate * duration_s)

        def fire(_i: int, intended: float) -> None:
            if self.idle:
                self.idle.pop().send(self._next_request(), intended)
            else:
                self.backlog.append(intended)

        await Pacer(time.perf_counter() + 0.1, [i * interval for i in range(total)], fire, tick_s=TICK_S).run()
        deadline = time.perf_counter() + 30
        while len(self.latencies) < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else float("nan")

        return {
            "rate": rate,
            "completed": len(ordered),
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "p999_ms": pct(99.9),
            "max_ms": ordered[-1] * 1000 if ordered else float("nan"),
            "errors": self.errors + (total - len(ordered)) + self.lost,
            "cpu_s": time.process_time() - cpu,
        }


def drive(port: int, paths_file: Path, rate: float, duration_s: float) -> dict[str, Any]:
    """Run the open-loop driver in a process of its own (one uvloop event loop).

    The result also holds :func:`machine_figures` for the run.
    """
    with StealMeter() as steal, OthersCpu() as others:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "worker",
                "driver",
                "--port",
                str(port),
                "--paths",
                str(paths_file),
                "--rate",
                str(rate),
                "--duration",
                str(duration_s),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return {**json.loads(out.strip().splitlines()[-1]), **machine_figures(steal, others)}


def run_driver_worker(port: int, paths_file: Path, rate: float, duration_s: float) -> None:
    import uvloop

    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for path in paths_file.read_text().split()]

    async def main() -> dict[str, float]:
        return await _OpenLoop(requests).run(port, rate, duration_s, CONNECTIONS)

    print(json.dumps(uvloop.run(main())), flush=True)


def run_pgbench(pgbench: str, dsn: str, duration_s: int, sql: str | None = None) -> dict[str, float]:
    """pgbench's throughput, mean and 99th percentile latency of one script (default: the
    nearby search's), 8 clients on 2 threads, prepared statements."""
    script = OUT / "postgis.sql"
    script.write_text(sql or _PGBENCH_SQL.format(points=POINTS, radius=RADIUS_M, limit=LIMIT))
    prefix = OUT / "pgbench_log"
    for old in OUT.glob("pgbench_log.*"):
        old.unlink()
    out = subprocess.run(
        [
            pgbench,
            "-n",
            "-M",
            "prepared",
            "-f",
            str(script),
            "-c",
            str(PGBENCH_CLIENTS),
            "-j",
            "2",
            "-T",
            str(duration_s),
            "-l",
            f"--log-prefix={prefix}",
            dsn,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=OUT,
    ).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))  # type: ignore[union-attr]
    # One line per transaction: client, number, latency in microseconds, ...
    latencies = sorted(int(line.split()[2]) for log in OUT.glob("pgbench_log.*") for line in log.open())
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] / 1000.0 if latencies else math.nan
    return {"tps": tps, "latency_avg_ms": latency, "p99_ms": p99}


class PostmasterPin:
    """Run PostgreSQL's new backends on given cores, for "PostGIS on the same cores".

    One API process uses one core; PostgreSQL's pgbench backends would otherwise use every
    core of the machine. Backends are forked by the postmaster and inherit its CPU
    affinity, so pinning the postmaster for the length of a pgbench run puts every backend
    of that run on the cores given, and the old affinity is restored after. Possible only
    when the server runs on this machine and this user may set its affinity (root, or the
    server's own user); otherwise :attr:`problem` says why.
    """

    def __init__(self, dsn: str) -> None:
        self.pid: int | None = None
        self.problem: str | None = None
        try:
            self.pid = asyncio.run(self._postmaster(dsn))
            os.sched_setaffinity(self.pid, os.sched_getaffinity(self.pid))  # may we?
        except (OSError, ValueError) as exc:
            self.pid, self.problem = None, f"cannot set the affinity of the PostgreSQL server ({exc})"

    @staticmethod
    async def _postmaster(dsn: str) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
            # The backend's parent, read while the backend is alive: the postmaster.
            return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        finally:
            await conn.close()

    def run(self, cores: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
        """``measure()`` with new backends on the first ``cores`` cores this process may use."""
        assert self.pid is not None
        before = os.sched_getaffinity(self.pid)
        os.sched_setaffinity(self.pid, sorted(os.sched_getaffinity(0))[:cores])
        try:
            return measure()
        finally:
            os.sched_setaffinity(self.pid, before)


# --------------------------------------------------------------------------- data


async def prepare_database(base: Settings, name: str, total: int, points: list[tuple[float, float]]) -> Settings:
    """A database with ``total`` businesses, their PostGIS copy and the query points."""
    settings = await create_database(base, name, total, say)
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await conn.execute(
            """CREATE TABLE businesses_postgis AS
                 SELECT id, name, latitude, longitude, category, address,
                        ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography AS geog
                   FROM businesses"""
        )
        await conn.execute("CREATE INDEX ON businesses_postgis USING gist (geog)")
        await conn.execute("CREATE TABLE bench_points (id int PRIMARY KEY, geog geography NOT NULL)")
        await conn.executemany(
            "INSERT INTO bench_points VALUES ($1, ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography)",
            [(i, lat, lon) for i, (lat, lon) in enumerate(points, start=1)],
        )
        await conn.execute("VACUUM ANALYZE businesses_postgis")
        await conn.execute("VACUUM ANALYZE bench_points")
    finally:
        await conn.close()
    await replicas_caught_up(settings)  # the API reads from the replica: let it catch up
    return settings


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "GEO_ENV_FILE": os.devnull,
        "GEO_PG_PRIMARY": settings.pg_primary,
        "GEO_PG_REPLICAS": ",".join(settings.pg_replicas),
        "GEO_REDIS_URL": settings.redis_url,
        "GEO_REDIS_NAMESPACE": settings.redis_namespace,
        "GEO_API_ROLE": "read",
        # Only the default strategy is measured; the other indexes would only cost memory
        # and start-up time (a million points, twice).
        "GEO_API_INDEXES": "geohash",
        "GEO_LOG_LEVEL": "warning",
    }


# --------------------------------------------------------------------------- main


#: The servers measured with wrk in every round, in this order.
SERVERS = ("hello", "hello-index", "api")


def bench_dataset(
    label: str,
    settings: Settings,
    tools: dict[str, str],
    duration_s: int,
    rounds: int,
    paths_file: Path,
    points_file: Path,
) -> dict[str, Any]:
    """One data set: per process count, ``rounds`` interleaved rounds, then the open loop.

    All three servers run at once (idle ones cost nothing but memory) and each round
    measures hello-world, the floor, the API and PostGIS one after the other, so a machine
    that speeds up or slows down during the run moves all four alike. Each figure is the
    median over the rounds; each ratio the median of the rounds' own ratios.
    """
    results: dict[str, Any] = {}
    env = env_for(settings)
    cores = len(os.sched_getaffinity(0))
    pin = PostmasterPin(settings.pg_primary)
    if pin.problem:
        say(f"[{label}] PostGIS on the API's cores not measured: {pin.problem}")
    for procs in (1, 2):
        same_cores = procs < cores and pin.pid is not None
        say(
            f"[{label}] {procs} process(es) each: starting hello-world, hello-world + index query and the API "
            "(indexes built from the replica)"
        )
        started = time.monotonic()
        servers: dict[str, Servers] = {}
        try:
            for kind in SERVERS:
                servers[kind] = start_servers(kind, procs, env)
            say(
                f"[{label}] ready in {time.monotonic() - started:.0f} s; {rounds} rounds of wrk {duration_s} s "
                f"per server and pgbench {duration_s} s"
            )
            measured: list[dict[str, Any]] = []
            for n in range(1, rounds + 1):
                with StealMeter() as steal:
                    row: dict[str, Any] = {
                        kind: run_wrk(tools["wrk"], servers[kind].port, paths_file, duration_s)["rps"]
                        for kind in SERVERS
                    }
                    row["postgis"] = run_pgbench(tools["pgbench"], settings.pg_primary, duration_s)["tps"]
                    if same_cores:  # PostgreSQL's backends on as many cores as the API has processes
                        row["postgis_same_cores"] = pin.run(
                            procs, lambda: run_pgbench(tools["pgbench"], settings.pg_primary, duration_s)
                        )["tps"]
                    elif procs >= cores:  # the API's processes already have every core
                        row["postgis_same_cores"] = row["postgis"]
                row["host_steal"] = steal.share
                measured.append(row)
                pinned = f", on {procs} core(s) {row['postgis_same_cores']:.0f}" if same_cores else ""
                say(
                    f"[{label}] round {n}: hello {row['hello']:.0f}, + index {row['hello-index']:.0f}, "
                    f"API {row['api']:.0f} req/s, PostGIS {row['postgis']:.0f} tps{pinned}; "
                    f"{steal_text(row['host_steal'])}"
                )
            summary: dict[str, Any] = {f"{kind}_rps": median([r[kind] for r in measured]) for kind in SERVERS}
            summary["postgis_tps"] = median([r["postgis"] for r in measured])
            summary["host_steal"] = median_steal(measured)
            for name, top, bottom in RATIOS:
                if all(bottom in r for r in measured):
                    summary[name] = median([r[top] / r[bottom] for r in measured])
            if all("postgis_same_cores" in r for r in measured):
                summary["postgis_same_cores_tps"] = median([r["postgis_same_cores"] for r in measured])
            half = summary["api_rps"] / 2
            say(
                f"[{label}] API {summary['api_rps']:.0f} req/s at most (median); {rounds} rounds of open loop "
                f"at {half:.0f} req/s"
            )
            # Each round: the API at half its maximum; hello-world at that same rate (the tail
            # this machine and generator give any server); hello-world at half its own maximum
            # (as busy as the API is at its half rate, with the generator sending faster). In
            # rounds, like the maxima, so that no one of them always follows pgbench's runs.
            loops: dict[str, list[dict[str, Any]]] = {"api": [], "hello": [], "hello_half": []}
            rates = {"api": half, "hello": half, "hello_half": summary["hello_rps"] / 2}
            for n in range(1, rounds + 1):
                for key, rate in rates.items():
                    target = servers["api" if key == "api" else "hello"]
                    loops[key].append(
                        run_loadgen(
                            target.port,
                            points_file,
                            rate,
                            duration_s,
                            OUT / f"loadgen_{label}_{procs}p_{key}_{n}",
                            target.pids,
                        )
                    )
                say(
                    f"[{label}] open loop round {n}: p99 {loops['api'][-1]['p99_ms']:.2f} ms, "
                    f"API busy {loops['api'][-1]['server_busy']:.0%}, "
                    f"{steal_text(loops['api'][-1]['host_steal'])}, {others_text(loops['api'][-1])} (hello-world at the "
                    f"same rate {loops['hello'][-1]['p99_ms']:.2f} ms; at half its own maximum, "
                    f"{rates['hello_half']:.0f} req/s, {loops['hello_half'][-1]['p99_ms']:.2f} ms, "
                    f"busy {loops['hello_half'][-1]['server_busy']:.0%})"
                )
            open_loop, hello_loop, hello_half = (median_of_runs(loops[k]) for k in ("api", "hello", "hello_half"))
            say(
                f"[{label}] median p99 {open_loop['p99_ms']:.2f} ms (hello-world {hello_loop['p99_ms']:.2f} ms, "
                f"at its own half {hello_half['p99_ms']:.2f} ms); the bench's lean driver at {half:.0f} req/s"
            )
            driver = drive(servers["api"].port, paths_file, half, duration_s)
            results[f"{procs}p"] = {
                **summary,
                "rounds": measured,
                "half_rate": open_loop,
                "half_rate_hello": hello_loop,
                "hello_own_half_rate": hello_half,
                "half_rate_driver": driver,
            }
        finally:
            for running in servers.values():
                running.stop()
    return results


#: The ratios reported: name, numerator, denominator (keys of a round's figures).
RATIOS = (
    ("api_over_hello", "api", "hello"),
    ("floor_over_hello", "hello-index", "hello"),
    ("api_over_floor", "api", "hello-index"),
    ("api_over_postgis", "api", "postgis"),
    ("api_over_postgis_same_cores", "api", "postgis_same_cores"),
)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def median_steal(runs: list[dict[str, Any]]) -> float | None:
    """The median share the host took over runs that carry ``host_steal``; None if one cannot tell."""
    shares = [r.get("host_steal") for r in runs]
    return median([s for s in shares if s is not None]) if shares and None not in shares else None


def steal_text(share: float | None) -> str:
    return "host steal unknown" if share is None else f"host steal {share:.1%}"


def others_text(run: dict[str, Any]) -> str:
    """The CPU other processes took during an open-loop run, and the busiest three."""
    busiest = ", ".join(f"{b['name']} {b['cpu_ms']}" for b in run.get("others_busiest", [])[:3])
    return f"other processes {run.get('others_cpu_ms') or 0:.0f} ms of CPU ({busiest})"


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Open-loop runs at one rate: the median of each percentile and of the host's steal, the slowest
    answer, the sums, and every run."""
    return {
        "rate": runs[0]["rate"],
        **{key: median([r[key] for r in runs]) for key in ("p50_ms", "p99_ms", "p999_ms")},
        "max_ms": max(r["max_ms"] for r in runs),
        "achieved": median([r.get("achieved", r["rate"]) for r in runs]),
        "completed": sum(r["completed"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "host_steal": median_steal(runs),
        "others_cpu_ms": median([r.get("others_cpu_ms") or 0.0 for r in runs]),
        "server_busy": median([r.get("server_busy", 0.0) for r in runs]),
        "runs": runs,
    }


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def print_table(all_results: dict[str, dict[str, Any]]) -> None:
    print()
    header = (
        f"{'data set':<8} {'procs':>5} {'hello':>8} {'+index':>8} {'API':>8} {'PostGIS':>8} {'PG same':>8} "
        f"{'API/hello':>9} {'idx/hello':>9} {'API/idx':>8} {'API/PG':>7} {'/PGsame':>7} "
        f"{'p50 @half':>10} {'p99 @half':>10} {'hello p99':>10} {'@rate':>7} {'hello p99':>10} {'@own half':>9} "
        f"{'achieved':>9} {'API busy':>8} {'hello busy':>10} {'driver p99':>12} {'steal@max':>9} {'steal@half':>10} "
        f"{'others@half':>11}"
    )
    print(
        "req/s (PostGIS: tps), medians over the rounds; ratios: medians of each round's ratio; open loop (p50,\n"
        "p99 and achieved req/s) by geo-loadgen search, driver p99: the bench's lean driver once at the API's half\n"
        "rate; busy: the CPU each server process used over an open-loop run (the API at its half rate,\n"
        "hello-world at its own half), as a share of one core; steal: the share of the cores the host took\n"
        "(median of the maxima's rounds, and of the API's open-loop rounds); others: CPU used by processes\n"
        "other than the bench's servers and senders during the API's open-loop rounds (median)"
    )
    print(header)
    print("-" * len(header))
    for label, r in all_results.items():
        for procs in (1, 2):
            row = r[f"{procs}p"]
            half, driver = row["half_rate"], row["half_rate_driver"]
            same = row.get("postgis_same_cores_tps")
            same_ratio = row.get("api_over_postgis_same_cores")
            print(
                f"{label:<8} {procs:>5} {row['hello_rps']:>8.0f} {row['hello-index_rps']:>8.0f} "
                f"{row['api_rps']:>8.0f} {row['postgis_tps']:>8.0f} "
                f"{'n/a' if same is None else f'{same:.0f}':>8} "
                f"{row['api_over_hello']:>9.0%} {row['floor_over_hello']:>9.0%} {row['api_over_floor']:>8.0%} "
                f"{row['api_over_postgis']:>6.2f}x "
                f"{'n/a' if same_ratio is None else f'{same_ratio:.2f}x':>7} "
                f"{half['p50_ms']:>8.2f}ms {half['p99_ms']:>8.2f}ms {row['half_rate_hello']['p99_ms']:>8.2f}ms "
                f"{half['rate']:>7.0f} {row['hello_own_half_rate']['p99_ms']:>8.2f}ms {row['hello_own_half_rate']['rate']:>9.0f} "
                f"{half['achieved']:>9.0f} {half.get('server_busy', 0.0):>8.0%} "
                f"{row['hello_own_half_rate'].get('server_busy', 0.0):>10.0%} {driver['p99_ms']:>10.2f}ms "
                f"{percent(row['host_steal']):>9} {percent(half['host_steal']):>10} "
                f"{half.get('others_cpu_ms', 0.0):>9.0f}ms"
            )
    print()


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["worker"]:
        worker = argparse.ArgumentParser(prog="location_api_bench worker")
        worker.add_argument("kind", choices=["api", "hello", "hello-index", "driver"])
        worker.add_argument("--port", type=int, required=True)
        worker.add_argument("--paths", type=Path)
        worker.add_argument("--rate", type=float)
        worker.add_argument("--duration", type=float)
        args = worker.parse_args(argv[1:])
        if args.kind == "driver":
            run_driver_worker(args.port, args.paths, args.rate, args.duration)
        else:
            serve_worker(args.kind, args.port)
        return 0
    parser = argparse.ArgumentParser(description="Benchmark nearby search over HTTP (see the module docstring).")
    parser.add_argument("--quick", action="store_true", help="144k only, 5 s per run")
    parser.add_argument("--duration", type=int, default=None, help="seconds per run (default 10, --quick 5)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of hello-world, floor, API and PostGIS (default 3)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args(argv)
    duration = args.duration or (5 if args.quick else 10)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    datasets = {"144k": GEONAMES} if args.quick else {"144k": GEONAMES, "1M": 1_000_000}

    tools = {"wrk": ensure_wrk(), "pgbench": find_pgbench()}
    base = load_settings()
    OUT.mkdir(parents=True, exist_ok=True)
    points = list(scatter(POINTS, seed=42, spread_m=2_000.0))
    paths_file = OUT / "paths.txt"
    paths_file.write_text(
        "".join(
            f"/v1/search/nearby?latitude={lat!r}&longitude={lon!r}&radius={RADIUS_M}&limit={LIMIT}\n"
            for lat, lon in points
        )
    )
    points_file = OUT / "points.csv"
    points_file.write_text("".join(f"{lat!r},{lon!r}\n" for lat, lon in points))

    say(
        f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    all_results: dict[str, dict[str, Any]] = {}
    for label, total in datasets.items():
        name = f"geo_bench_api_{label.lower()}"
        say(f"[{label}] loading {total:,} businesses into {name}")
        settings = asyncio.run(prepare_database(base, name, total, points))
        try:
            all_results[label] = bench_dataset(label, settings, tools, duration, args.rounds, paths_file, points_file)
        finally:
            if not args.keep:
                asyncio.run(drop_database(base, name))
    print_table(all_results)
    (OUT / "results.json").write_text(
        json.dumps(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "cores": os.cpu_count(),
                "duration_s": duration,
                "rounds": args.rounds,
                "results": all_results,
            },
            indent=2,
        )
    )
    say(f"results in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
