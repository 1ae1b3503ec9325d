"""``/metrics``: Prometheus metrics of one app, in a registry of its own.

Per-route request counts and latency histograms are recorded by the wrapper every route's
handler is registered with (:func:`location_api.handling.answering`), in plain numbers
(:class:`geo_common.request_metrics.RequestMetrics`): this is on every request's path. They and
the state of the databases, the cache, their circuit breakers and the in-memory indexes are
read when scraped, beside the process's own metrics (memory, CPU, garbage collector:
:mod:`geo_common.process_metrics`). Each app has its own
:class:`~prometheus_client.CollectorRegistry`, so several apps in one process (tests,
benchmarks) never share or clash.

Ratios are left to PromQL: the cache exports its hits and misses
(``geo_api_cache_lookups_total{result}``), and ``deploy/observability/rules.yml`` records the
hit ratio over five minutes, which a ratio since start could not show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from geo_common.breaker import Breaker
from geo_common.breaker_metrics import breaker_metrics
from geo_common.process_metrics import register_process_metrics
from geo_common.request_metrics import RequestMetrics

if TYPE_CHECKING:  # only for annotations: these modules do not need metrics at import
    from geo_common.database import Database
    from location_api.cache import Cache
    from location_api.refresh import Refresher


class Metrics:
    """An app's registry, its request metrics, and the components whose state it exports.

    The app's start-up attaches ``db``, ``cache`` and ``refresher`` as they are created, and
    adds the circuit breakers of other dependencies (the friendship routes' Redis) to
    ``breakers``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: Requests answered and their latency (``geo_api_requests_total``,
        #: ``geo_api_request_duration_seconds``).
        self.requests = RequestMetrics("geo_api")
        #: Record one answered request: ``observe(route, method, status, seconds)`` (the
        #: recorder's own method, so a request pays for no extra call).
        self.observe: Callable[[str, str, int, float], None] = self.requests.observe
        self.db: Database | None = None
        self.cache: Cache | None = None
        self.refresher: Refresher | None = None
        self.breakers: list[Breaker] = []
        self.registry.register(self.requests)
        self.registry.register(_StateCollector(self))
        register_process_metrics(self.registry)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Reads databases, cache and indexes at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        db, cache, refresher = self._metrics.db, self._metrics.cache, self._metrics.refresher
        if db is not None:
            up = GaugeMetricFamily("geo_api_db_up", "1 when the server passed its last check", labels=["server"])
            queries = CounterMetricFamily("geo_api_db_queries", "queries answered, by server", labels=["server"])
            lag_s = GaugeMetricFamily(
                "geo_api_replica_replay_lag_seconds",
                "age of the last replayed transaction while the replica is behind (0 when caught up)",
                labels=["server"],
            )
            lag_b = GaugeMetricFamily(
                "geo_api_replica_replay_lag_bytes", "WAL the replica has yet to replay, bytes", labels=["server"]
            )
            for node in (db.primary, *db.replicas):
                up.add_metric([node.name], 1.0 if node.healthy else 0.0)
                queries.add_metric([node.name], float(db.reads[node.name]))
                if not node.is_primary:
                    lag_s.add_metric([node.name], node.lag_seconds)
                    lag_b.add_metric([node.name], node.lag_bytes)
            yield from (up, queries, lag_s, lag_b)
        if cache is not None:
            yield GaugeMetricFamily("geo_api_cache_up", "1 when Redis answered the last command", value=float(cache.up))
            lookups = CounterMetricFamily(
                "geo_api_cache_lookups", "cache lookups by kind and result", labels=["kind", "result"]
            )
            for kind in ("business", "detail", "cell"):
                lookups.add_metric([kind, "hit"], float(cache.hits[kind]))
                lookups.add_metric([kind, "miss"], float(cache.misses[kind]))
            yield lookups
            yield CounterMetricFamily("geo_api_cache_errors", "Redis commands that failed", value=float(cache.errors))
        breakers = [] if db is None else db.breakers
        if cache is not None:
            breakers.append(cache.breaker)
        yield from breaker_metrics([*breakers, *self._metrics.breakers])
        if refresher is not None:
            size = GaugeMetricFamily("geo_api_index_size", "businesses held by each in-memory index", labels=["index"])
            catalog = refresher.catalog
            if catalog is not None:
                for name, index in catalog.indexes.items():
                    size.add_metric([name], float(len(index)))
            yield size
            yield GaugeMetricFamily(
                "geo_api_index_refresh_age_seconds",
                "seconds since the indexes were last brought up to date",
                value=refresher.seconds_since_refresh,
            )
            yield CounterMetricFamily(
                "geo_api_index_changes_applied",
                "business changes applied to the indexes",
                value=float(refresher.changes_applied),
            )
            yield CounterMetricFamily("geo_api_index_rebuilds", "full index rebuilds", value=float(refresher.rebuilds))
            yield CounterMetricFamily(
                "geo_api_index_merges", "merges of an index's changes into its bulk", value=float(refresher.merges)
            )
            pending = GaugeMetricFamily(
                "geo_api_index_pending", "changes waiting in an index's delta", labels=["index"]
            )
            for name, index in catalog.indexes.items() if catalog is not None else ():
                pending.add_metric([name], float(index.pending))
            yield pending
            yield GaugeMetricFamily(
                "geo_api_huge_page_bytes",
                "bytes of this process's memory in 2 MiB pages after the last rebuild",
                value=float(refresher.huge_page_bytes),
            )
            yield CounterMetricFamily(
                "geo_api_index_refresh_errors", "index refreshes that failed", value=float(refresher.errors)
            )
