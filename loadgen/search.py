"""``geo-loadgen search``: open-loop nearby searches against the HTTP API.

Each request has an intended send time from the schedule; its latency is measured from that
time, so when the server stalls, the requests that should have gone out meanwhile carry the
wait (no coordinated omission). ``--max-in-flight`` bounds memory: a request beyond it waits
for a slot, and that wait counts in its latency too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import orjson

from loadgen.clock import Pacer, now
from loadgen.gauges import sample_gauges
from loadgen.http1 import Http1Pool
from loadgen.points import query_points, truth_points
from loadgen.schedule import Arrivals, intended_offsets, per_second
from loadgen.stages import Profile, Stage
from loadgen.stats import Recorder
from loadgen.verify import GroundTruth


#: Requests due closer together than this leave together, on one wake-up of the sender, up
#: to this late (their latencies count it). Each wake-up costs tens of microseconds of CPU on
#: a virtual machine, so at thousands of searches a second this leaves much of the
#: generator's CPU to a server on the same cores (docs/loadgen.md, docs/benchmarks.md).
DEFAULT_TICK_S = 0.00025


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
    #: The shortest time between the sender's wake-ups (:class:`loadgen.clock.Pacer`).
    tick_s: float = DEFAULT_TICK_S
    seed: int = 0
    #: Answers to check against a brute-force scan after the run (0: none).
    verify: int = 0
    #: The places the API serves, for ``verify``: ``geonames`` or a CSV of ``lat,lon``.
    truth: str = "geonames"
    #: A rate that moves: from ``start_rate`` through each stage (:mod:`loadgen.stages`); then
    #: ``rate`` is their mean and ``duration_s`` their total. Empty: ``rate`` throughout.
    stages: tuple[Stage, ...] = ()
    start_rate: float = 0.0

    def profile(self) -> Profile:
        """The rate over the run."""
        return Profile(self.start_rate, self.stages) if self.stages else Profile.constant(self.rate, self.duration_s)

    def for_worker(self, index: int, count: int) -> SearchOptions:
        """Worker ``index`` of ``count`` sends its share of the rate (and checks its share) with its own seed."""
        verify = self.verify // count + (1 if index < self.verify % count else 0)
        share = Profile(self.start_rate, self.stages).scaled(1 / count)
        return replace(
            self,
            rate=self.rate / count,
            stages=share.stages,
            start_rate=share.start,
            seed=self.seed + index,
            verify=verify,
        )


@dataclass
class LiveState:
    """Figures the progress display reads while the run goes on."""

    in_flight: int = 0
    sent: int = 0


def search_target(lat: float, lon: float, radius_m: float, limit: int) -> str:
    """The request target (path and query) of a nearby search; the base URL has no path
    (:mod:`loadgen.targets` refuses one).

    Formatted directly rather than through ``urlencode``, which costs tens of microseconds a
    request, and a run builds up to 100,000 before it starts: ``repr`` of a float and ``%g``
    hold only digits, ``.``, ``-``, ``e``, ``inf``, ``nan`` and ``+``; a query takes all of them
    as they are but ``+`` (a space there), which is escaped.
    """
    query = f"latitude={lat!r}&longitude={lon!r}&radius={radius_m:g}&limit={limit:d}"
    return f"/v1/search/nearby?{query.replace('+', '%2B')}"


def error_kind(status: int) -> str | None:
    """The error counter for an HTTP status, or None for a success."""
    if 200 <= status < 300:
        return None
    return "status_4xx" if status < 500 else "status_5xx"


async def run_search(opts: SearchOptions, recorder: Recorder, live: LiveState) -> None:
    """Run the open-loop search scenario to its end, recording into ``recorder``.

    Requests leave from a :class:`Pacer`'s timer callback and their answers come back through
    :meth:`Http1Pool.send`'s: no task or future per request, so the sender takes as little as
    it can from the server it shares the cores with.
    """
    offsets = list(intended_offsets(opts.profile(), arrivals=opts.arrivals, seed=opts.seed))
    recorder.plan("offered", per_second(offsets))
    points = query_points(opts.points, max(1, min(len(offsets), 100_000)), seed=opts.seed)
    pool = Http1Pool(opts.url, connections=opts.max_in_flight, timeout_s=opts.timeout_s)
    requests = [pool.request(search_target(lat, lon, opts.radius_m, opts.limit)) for lat, lon in points]
    every = max(1, len(offsets) // opts.verify) if opts.verify else 0
    samples: list[tuple[tuple[float, float], bytes]] = []
    status_kinds: dict[int, str] = {}
    all_answered = asyncio.get_running_loop().create_future()
    sending = True

    def answered(i: int, status: int, body: bytes, sent: float, error: BaseException | None) -> None:
        # Runs in the pool's I/O callbacks, where an exception would only be logged and the
        # run would wait for this answer for ever: it ends the run instead.
        try:
            account(i, status, body, sent, error)
        except BaseException as exc:  # noqa: BLE001 - raised by run_search
            if not all_answered.done():
                all_answered.set_exception(exc)

    def account(i: int, status: int, body: bytes, sent: float, error: BaseException | None) -> None:
        received = now()
        live.in_flight -= 1
        if error is not None:
            recorder.count("errors")
            # asyncio.TimeoutError first: it is an OSError too. Anything else ended the
            # exchange: refused, reset, cut short or malformed (http1.ResponseError), or no
            # connection in time (http1.ConnectTimeout).
            recorder.count("timeout" if isinstance(error, asyncio.TimeoutError) else "connect_error")
            recorder.complete(int(received - start), None, error=True)
        else:
            recorder.record("service_time", received - sent)
            kind = status_kinds.get(status)
            if kind is None:
                kind = status_kinds[status] = f"status_{status}"
            recorder.count(kind)
            failed = error_kind(status)
            if failed:
                recorder.count("errors")
                recorder.count(failed)
                recorder.sample(kind, body)  # the first few of each status, for the report
            recorder.complete(int(received - start), received - (start + offsets[i]), error=failed is not None)
            if every and status == 200 and i % every == 0 and len(samples) < opts.verify:
                samples.append((points[i % len(points)], body))
        if not sending and live.in_flight == 0 and not all_answered.done():
            all_answered.set_result(None)

    n_requests = len(requests)

    def fire(i: int, intended: float) -> None:
        if all_answered.done():  # only while sending if accounting for an answer failed
            all_answered.result()  # raises that failure, which stops the Pacer
        # At most max_in_flight connections: a request beyond them waits in the pool for one,
        # and the wait counts in its latency (not in its service time).
        recorder.record("send_lag", now() - intended)
        live.in_flight += 1
        live.sent += 1
        pool.send(requests[i % n_requests], answered, i)

    start = now()
    gauges = sample_gauges(recorder, start, lambda: {"in_flight": live.in_flight})
    try:
        await Pacer(start, offsets, fire, tick_s=opts.tick_s).run()
        sending = False
        if live.in_flight or all_answered.done():
            await all_answered
    finally:
        gauges.cancel()
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
