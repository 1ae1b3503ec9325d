"""Counters of the friends tier, exported at ``/metrics`` (Prometheus text format).

The hot path bumps plain integers on :class:`Stats`; a custom collector reads them at scrape
time, which costs nothing per delivery (a prometheus_client counter takes a lock per call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from geo_common.breaker import Breaker
from geo_common.breaker_metrics import BreakerCollector


class Stats:
    """What the process has done since it started."""

    __slots__ = (
        "updates",
        "deliveries",
        "departures",
        "frames",
        "replaced",
        "slow_closes",
        "pubsub_messages",
        "errors",
        "connections_total",
        "refused",
        "token_expiries",
        "reauths",
    )

    def __init__(self) -> None:
        self.updates = 0
        """Location updates accepted from clients."""
        self.deliveries = 0
        """``friend_location`` frames queued for clients."""
        self.departures = 0
        """``friend_left`` frames queued for clients."""
        self.frames = 0
        """Frames written to sockets (all types)."""
        self.replaced = 0
        """Frames a newer one for the same friend replaced before a slow reader got them."""
        self.slow_closes = 0
        """Connections closed because their queue overflowed."""
        self.pubsub_messages = 0
        """Messages received from pub/sub."""
        self.errors: Counter[str] = Counter()
        """``error`` frames sent, by code."""
        self.connections_total = 0
        """WebSocket connections accepted."""
        self.refused: Counter[str] = Counter()
        """Handshakes refused before the upgrade, by reason (``unauthorized``: 401,
        ``too_many_sockets``: 429, ``unavailable``: 503)."""
        self.token_expiries = 0
        """Connections closed with 4001 because their token expired."""
        self.reauths = 0
        """Fresh tokens accepted in ``auth`` frames."""


Reading = dict[str, tuple[str, Callable[[], float]]]
"""Metric name -> (help, function reading the current value)."""


class _StatsCollector(Collector):
    def __init__(self, stats: Stats, counters: Reading, gauges: Reading) -> None:
        self._stats = stats
        self._counters = counters
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        for name, help_text, value in (
            ("geo_friends_updates", "location updates accepted", s.updates),
            ("geo_friends_deliveries", "friend_location frames queued", s.deliveries),
            ("geo_friends_departures", "friend_left frames queued", s.departures),
            ("geo_friends_frames", "frames written to clients", s.frames),
            ("geo_friends_frames_replaced", "queued frames replaced by a newer one for the same friend", s.replaced),
            ("geo_friends_slow_closes", "connections closed for a full queue", s.slow_closes),
            ("geo_friends_pubsub_messages", "messages received from pub/sub", s.pubsub_messages),
            ("geo_friends_connections", "WebSocket connections accepted", s.connections_total),
            ("geo_friends_token_expiries", "connections closed because their token expired", s.token_expiries),
            ("geo_friends_reauths", "fresh tokens accepted in auth frames", s.reauths),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        errors = CounterMetricFamily("geo_friends_errors", "error frames sent, by code", labels=["code"])
        for code, count in sorted(s.errors.items()):
            errors.add_metric([code], count)
        yield errors
        refused = CounterMetricFamily(
            "geo_friends_handshakes_refused", "handshakes refused before the upgrade, by reason", labels=["reason"]
        )
        for reason, count in sorted(s.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        for name, (help_text, read) in self._counters.items():
            yield CounterMetricFamily(name, help_text, value=read())
        for name, (help_text, read) in self._gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())


def registry(
    stats: Stats,
    *,
    counters: Reading | None = None,
    gauges: Reading | None = None,
    breakers: Callable[[], Iterable[Breaker]] | None = None,
) -> CollectorRegistry:
    """A registry of one app's metrics (one per app, so several apps can share a process).

    Args:
        stats: the hot path's counters.
        counters: other counters (exported with ``_total``), read at scrape time.
        gauges: gauges, read at scrape time.
        breakers: returns the circuit breakers to export (``geo_circuit_breaker_*``).
    """
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_StatsCollector(stats, counters or {}, gauges or {}))
    if breakers is not None:
        reg.register(BreakerCollector(breakers))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(reg)
