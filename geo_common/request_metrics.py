"""Per-route HTTP request counts and latency histograms in plain Python numbers, for both
services' ``/metrics``.

Recording a request is a dict lookup, a bisection and two additions: it is on every request's
path, and prometheus_client's locked ``Counter``/``Histogram`` cost about twice as much. The
numbers are turned into Prometheus's counter and histogram form when scraped.

A histogram here is a list of floats: the count of each bucket (the last one ``+Inf``), then
the sum of the observations (:func:`new_slots`, :func:`observe`, :func:`cumulative`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

#: Latency buckets, seconds: fine below 10 ms, where a nearby search or a health check should land.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def new_slots(bounds: Sequence[float]) -> list[float]:
    """An empty histogram of these bucket bounds (ascending, without ``+Inf``)."""
    return [0.0] * (len(bounds) + 2)


def observe(slots: list[float], bounds: Sequence[float], value: float) -> None:
    """Count ``value`` in the first bucket whose bound is >= it (Prometheus's ``le``)."""
    slots[bisect_left(bounds, value)] += 1
    slots[-1] += value


def cumulative(slots: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """The ``(le, count)`` pairs of a histogram, counts cumulative, ending with ``+Inf``."""
    total, buckets = 0.0, []
    for bound, in_bucket in zip([*map(floatToGoString, bounds), "+Inf"], slots):
        total += in_bucket
        buckets.append((bound, total))
    return buckets


class RequestMetrics(Collector):
    """Requests answered by (route template, method, status), and their latency by (route, method).

    Args:
        prefix: the metric names' prefix: ``{prefix}_requests_total`` and
            ``{prefix}_request_duration_seconds``.
        bounds: the latency buckets, seconds.
    """

    def __init__(self, prefix: str, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.prefix = prefix
        self.bounds = tuple(bounds)
        #: Requests answered by (route, method, status).
        self.requests: dict[tuple[str, str, int], int] = {}
        #: A histogram (see the module) of latencies, seconds, per (route, method).
        self.latency: dict[tuple[str, str], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        key = (route, method, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        slots = self.latency.get((route, method))
        if slots is None:
            slots = self.latency[(route, method)] = new_slots(self.bounds)
        # bisect_left: the first bucket whose bound is >= seconds ("le" is inclusive).
        slots[bisect_left(self.bounds, seconds)] += 1
        slots[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{self.prefix}_requests",
            "HTTP requests answered, by route template, method and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in sorted(self.requests.items()):
            requests.add_metric([route, method, str(status)], float(count))
        yield requests
        latency = HistogramMetricFamily(
            f"{self.prefix}_request_duration_seconds",
            "time to answer an HTTP request, by route template and method",
            labels=["route", "method"],
        )
        for (route, method), slots in sorted(self.latency.items()):
            latency.add_metric([route, method], cumulative(slots, self.bounds), sum_value=slots[-1])
        yield latency
