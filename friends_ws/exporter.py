"""``/metrics`` of the WebSocket tier: one registry per app, read at scrape time.

The registry holds the hot path's counters (:class:`~friends_ws.metrics.StatsCollector`),
the per-route latency of the HTTP routes (``/healthz``, ``/readyz``, ``/metrics``: the
WebSocket route's "latency" would be the life of a connection), the state of the
process's parts (sessions, friends followed, queues, history, retention, pub/sub
reconnections), the circuit breakers and the process itself (memory, CPU, garbage
collector: :mod:`geo_common.process_metrics`). Nothing is recorded per delivery here: every
value is read when Prometheus asks.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from friends_ws.hub import Hub
from friends_ws.metrics import StatsCollector
from friends_ws.retention import Purger
from friends_ws.services import Services
from geo_common.breaker_metrics import BreakerCollector
from geo_common.process_metrics import register_process_metrics
from geo_common.request_metrics import RequestMetrics


class Exporter:
    """An app's registry: the HTTP routes' metrics from the start, the rest once the app's
    parts exist (:meth:`attach`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        #: Requests to the HTTP routes and their latency (``geo_friends_http_requests_total``,
        #: ``geo_friends_http_request_duration_seconds``).
        self.http = RequestMetrics("geo_friends_http")
        self.registry.register(self.http)
        register_process_metrics(self.registry)

    def attach(self, hub: Hub, services: Services, purger: Purger) -> None:
        """Export the state of the app's parts, once they are started."""
        self.registry.register(StatsCollector(hub.stats))
        self.registry.register(_StateCollector(hub, services, purger))
        self.registry.register(
            BreakerCollector(lambda: [*services.db.breakers, *services.cache.breakers, *hub.broker.breakers.values()])
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Sessions, queues, history, retention and pub/sub reconnections, read at scrape time."""

    def __init__(self, hub: Hub, services: Services, purger: Purger) -> None:
        self._hub = hub
        self._services = services
        self._purger = purger

    def collect(self) -> Iterator[Metric]:
        hub, history, purger = self._hub, self._services.history, self._purger
        yield GaugeMetricFamily(
            "geo_friends_sessions", "open WebSocket sessions", value=float(len(hub.subscriptions.sessions))
        )
        yield GaugeMetricFamily(
            "geo_friends_followed",
            "friends followed (location channels subscribed)",
            value=float(len(hub.fanout.listeners)),
        )
        yield GaugeMetricFamily(
            "geo_friends_discovery_cells",
            "nearby-stranger discovery cells listened to here (cell channels subscribed)",
            value=float(hub.cells.cells),
        )
        yield CounterMetricFamily(
            "geo_friends_discovery_messages",
            'messages heard on discovery cell channels (strangers delivered: geo_friends_frames_sent{type="stranger"})',
            value=float(hub.cells.messages),
        )
        yield from _queues(hub, self._services.config.queue_size)
        reconnections = CounterMetricFamily(
            "geo_friends_pubsub_reconnections",
            "pub/sub subscriber connections re-established after a loss (each starts a catch-up), by region",
            labels=["region"],
        )
        for region, count in sorted(hub.resync.reconnections.items()):
            reconnections.add_metric([region], float(count))
        yield reconnections
        for name, help_text, value in (
            ("geo_friends_history_written", "history rows written", history.written),
            ("geo_friends_history_batches", "history batches written (one COPY each)", history.batches),
            ("geo_friends_history_dropped", "history rows dropped: the database was away too long", history.dropped),
            (
                "geo_friends_history_erased",
                "history rows not written because their user's locations were erased",
                history.erased,
            ),
            ("geo_friends_history_purged", "history rows deleted past retention", purger.purged),
        ):
            yield CounterMetricFamily(name, help_text, value=float(value))
        yield GaugeMetricFamily("geo_friends_history_waiting", "history rows not written yet", value=history.waiting)
        yield GaugeMetricFamily(
            "geo_friends_history_waiting_limit",
            "most history rows kept while the database is away; older ones are dropped beyond it",
            value=history.max_rows,
        )
        yield GaugeMetricFamily(
            "geo_friends_history_purge_last_success_seconds",
            "when this process last deleted history past retention, Unix seconds (0: not yet)",
            value=purger.last_success,
        )


def _queues(hub: Hub, limit: int) -> Iterator[Metric]:
    """What waits in the connections' queues now: a queue exists only while more than one
    frame waits or the socket is backed up, so most connections count 0."""
    queued, deepest, backed_up = 0, 0, 0
    for link in hub.keepalive:
        outbox = link.outbox
        if outbox:
            size = len(outbox)
            queued += size
            deepest = max(deepest, size)
            backed_up += 1
    yield GaugeMetricFamily("geo_friends_queued_frames", "frames waiting in connections' queues", value=queued)
    yield GaugeMetricFamily(
        "geo_friends_queue_max_frames", "frames waiting in the longest connection queue", value=deepest
    )
    yield GaugeMetricFamily(
        "geo_friends_queued_connections", "connections with a queue of waiting frames", value=backed_up
    )
    yield GaugeMetricFamily(
        "geo_friends_queue_limit_frames", "most frames a connection's queue holds before it is closed", value=limit
    )
