"""``geo-loadgen search``: open-loop nearby searches against the HTTP API.

Each request has an intended send time from the schedule; its latency is measured from that
time, so when the server stalls, the requests that should have gone out meanwhile carry the
wait (no coordinated omission). ``--max-in-flight`` bounds memory: a request beyond it waits
for a slot, and that wait counts in its latency too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import orjson

from loadgen.clock import FineTimer, now
from loadgen.http1 import Http1Pool
from loadgen.points import query_points, truth_points
from loadgen.schedule import Arrivals, intended_offsets
from loadgen.stats import Recorder
from loadgen.verify import GroundTruth


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """What ``geo-loadgen search`` was asked to do."""

    url: str
    rate: float
    duration_s: float
    radius_m: float = 5_000.0
    limit: int = 20
    points: str = "geonames"
    max_in_flight: int = 1_000
    arrivals: Arrivals = Arrivals.CONSTANT
    timeout_s: float = 10.0
    seed: int = 0
    #: Answers to check against a brute-force scan after the run (0: none).
    verify: int = 0
    #: The places the API serves, for ``verify``: ``geonames`` or a CSV of ``lat,lon``.
    truth: str = "geonames"

    def for_worker(self, index: int, count: int) -> SearchOptions:
        """Worker ``index`` of ``count`` sends its share of the rate (and checks its share) with its own seed."""
        verify = self.verify // count + (1 if index < self.verify % count else 0)
        return replace(self, rate=self.rate / count, seed=self.seed + index, verify=verify)


@dataclass
class LiveState:
    """Figures the progress display reads while the run goes on."""

    in_flight: int = 0
    sent: int = 0


def search_target(prefix: str, lat: float, lon: float, radius_m: float, limit: int) -> str:
    """The request target (path and query) of a nearby search, under the path ``prefix`` of the
    API's base URL (:func:`api_prefix`).

    Formatted directly rather than through ``urlencode``, which costs tens of microseconds a
    request, and a run builds up to 100,000 before it starts: ``repr`` of a float and ``%g``
    hold only digits, ``.``, ``-``, ``e``, ``inf``, ``nan`` and ``+``; a query takes all of them
    as they are but ``+`` (a space there), which is escaped.
    """
    query = f"latitude={lat!r}&longitude={lon!r}&radius={radius_m:g}&limit={limit:d}"
    return f"{prefix}/v1/search/nearby?{query.replace('+', '%2B')}"


def api_prefix(base: str) -> str:
    """The path under which the API's routes sit, from its base URL (``""`` at the root)."""
    return urlsplit(base).path.rstrip("/")


def error_kind(status: int) -> str | None:
    """The error counter for an HTTP status, or None for a success."""
    if 200 <= status < 300:
        return None
    return "status_4xx" if status < 500 else "status_5xx"


async def run_search(opts: SearchOptions, recorder: Recorder, live: LiveState) -> None:
    """Run the open-loop search scenario to its end, recording into ``recorder``."""
    offsets = list(intended_offsets(opts.rate, opts.duration_s, arrivals=opts.arrivals, seed=opts.seed))
    points = query_points(opts.points, max(1, min(len(offsets), 100_000)), seed=opts.seed)
    pool = Http1Pool(opts.url, connections=opts.max_in_flight, timeout_s=opts.timeout_s)
    prefix = api_prefix(opts.url)
    requests = [pool.request(search_target(prefix, lat, lon, opts.radius_m, opts.limit)) for lat, lon in points]
    every = max(1, len(offsets) // opts.verify) if opts.verify else 0
    samples: list[tuple[tuple[float, float], bytes]] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, intended: float) -> None:
        # At most max_in_flight connections: a request beyond them waits for one, and
        # the wait counts in its latency (not in its service time).
        recorder.record("send_lag", now() - intended)
        live.in_flight += 1
        try:
            status, body, sent = await pool.get(requests[i % len(requests)])
        except asyncio.TimeoutError:
            recorder.count("errors")
            recorder.count("timeout")
            recorder.complete(int(now() - start), None, error=True)
            return
        except OSError:  # refused, reset, or an answer cut short (http1.ResponseError)
            recorder.count("errors")
            recorder.count("connect_error")
            recorder.complete(int(now() - start), None, error=True)
            return
        finally:
            live.in_flight -= 1
        received = now()
        recorder.record("service_time", received - sent)
        recorder.count(f"status_{status}")
        kind = error_kind(status)
        if kind:
            recorder.count("errors")
            recorder.count(kind)
        recorder.complete(int(received - start), received - intended, error=kind is not None)
        if every and status == 200 and i % every == 0 and len(samples) < opts.verify:
            samples.append((points[i % len(points)], body))

    start = now()
    try:
        async with FineTimer() as timer:
            for i, offset in enumerate(offsets):
                intended = start + offset
                await timer.until(intended)
                task = asyncio.create_task(one(i, intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                live.sent += 1
        if tasks:
            await asyncio.wait(tasks)
    finally:
        await pool.close()
    recorder.count("operations", live.sent)
    if samples:
        verify_answers(opts, samples, recorder)


def verify_answers(opts: SearchOptions, samples: list[tuple[tuple[float, float], bytes]], recorder: Recorder) -> None:
    """Check sampled answers against a brute-force scan of the places the API should hold."""
    truth = GroundTruth(truth_points(opts.truth))
    for (lat, lon), body in samples:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = {}
        check = truth.check(lat, lon, opts.radius_m, opts.limit, answer)
        recorder.count("verified")
        recorder.count("verify_expected", check.expected)
        recorder.count("verify_missed", check.expected - check.found)
        recorder.count("verify_wrong", check.listed - check.found)
        recorder.count("verify_order_errors", 0 if check.order_ok else 1)
        recorder.count("verify_total_errors", 0 if check.total_ok else 1)
        recorder.count("verify_mismatches", 0 if check.ok else 1)
