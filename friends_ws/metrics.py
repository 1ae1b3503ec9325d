"""Counters of the friends tier's hot path, and their Prometheus form.

The hot path bumps plain integers on :class:`Stats`; :class:`StatsCollector` reads them at
scrape time, which costs nothing per delivery (a prometheus_client counter takes a lock per
call). The rest of ``/metrics`` (sessions, queues, history, breakers, the process) is read at
scrape time by :mod:`friends_ws.exporter`.

Delivery lag is sampled rather than measured per message: one location message in
:data:`LAG_SAMPLE_EVERY` is decoded a second time (:func:`sample_delivery_lag`) and its age
counted in a histogram of plain numbers, so the path of the other messages gains one
bitwise test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from geo_common.presence import Location, PresenceFormatError, decode_channel_message
from geo_common.request_metrics import cumulative, new_slots, observe
from pubsub.ring_watch import RingStatus

#: One location-channel message in this many has its lag measured (a power of two).
LAG_SAMPLE_EVERY = 32
#: ``count & LAG_SAMPLE_MASK == 0`` picks the sampled messages.
LAG_SAMPLE_MASK = LAG_SAMPLE_EVERY - 1
#: Delivery lag buckets, seconds: a delivery is expected within tens of milliseconds.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        "received",
        "sent",
        "connections_total",
        "refused",
        "token_expiries",
        "reauths",
        "uploaded",
        "delivery_lag",
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
        self.received: Counter[str] = Counter()
        """Text frames received from clients, by ``type`` (``invalid``: not a frame of the protocol)."""
        self.sent: Counter[str] = Counter()
        """Frames queued for clients other than ``friend_location``, ``friend_left`` and
        ``error`` (counted above), by ``type``."""
        self.connections_total = 0
        """WebSocket connections accepted."""
        self.refused: Counter[str] = Counter()
        """Handshakes refused before the upgrade, by reason (``unauthorized``: 401,
        ``too_many_sockets``: 429, ``unavailable``: 503)."""
        self.token_expiries = 0
        """Connections closed with 4001 because their token expired."""
        self.reauths = 0
        """Fresh tokens accepted in ``auth`` frames."""
        self.uploaded = 0
        """Points accepted from background uploads (``POST /v1/me/locations``)."""
        self.delivery_lag = new_slots(LAG_BUCKETS)
        """Sampled delivery lag, seconds (a histogram of :data:`LAG_BUCKETS`, see
        :mod:`geo_common.request_metrics`)."""


def sample_delivery_lag(stats: Stats, data: bytes, now_ms: int) -> None:
    """Count the lag of one location-channel message: from its update's arrival at the
    sender's instance (``updated_at``) to ``now_ms``, its arrival here (Unix milliseconds).

    Frames are written at the end of the event-loop iteration a message arrives in, so this is
    the publish-to-write lag of every recipient that is not a slow reader. It includes the
    offset between the two instances' clocks; a negative lag (a clock ahead) counts as 0.
    Messages other than locations are not counted.
    """
    try:
        message = decode_channel_message(data)
    except PresenceFormatError:
        return
    if isinstance(message, Location):
        observe(stats.delivery_lag, LAG_BUCKETS, max(0, now_ms - message.updated_at) / 1000)


class StatsCollector(Collector):
    """The hot path's counters and the sampled delivery lag, read at scrape time."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

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
            ("geo_friends_uploaded_points", "points accepted from background uploads", s.uploaded),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        errors = CounterMetricFamily("geo_friends_errors", "error frames sent, by code", labels=["code"])
        for code, count in sorted(s.errors.items()):
            errors.add_metric([code], count)
        yield errors
        received = CounterMetricFamily(
            "geo_friends_frames_received", "text frames received from clients, by type", labels=["type"]
        )
        for kind, count in sorted(s.received.items()):
            received.add_metric([kind], count)
        yield received
        sent = CounterMetricFamily("geo_friends_frames_sent", "frames queued for clients, by type", labels=["type"])
        by_type = s.sent | {"friend_location": s.deliveries, "friend_left": s.departures, "error": s.errors.total()}
        for kind, count in sorted(by_type.items()):
            sent.add_metric([kind], count)
        yield sent
        refused = CounterMetricFamily(
            "geo_friends_handshakes_refused", "handshakes refused before the upgrade, by reason", labels=["reason"]
        )
        for reason, count in sorted(s.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        lag = HistogramMetricFamily(
            "geo_friends_delivery_lag_seconds",
            f"from a location update's arrival at its sender's instance to its arrival here from pub/sub, "
            f"one location message in {LAG_SAMPLE_EVERY} (includes the instances' clock offset)",
        )
        slots = list(s.delivery_lag)
        lag.add_metric([], cumulative(slots, LAG_BUCKETS), sum_value=slots[-1])
        yield lag


class RingCollector(Collector):
    """The rings kept in etcd, by region (``GEO_ETCD_URL``; docs/pubsub.md), read at scrape time."""

    def __init__(self, statuses: Mapping[str, RingStatus]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterator[Metric]:
        rows = sorted(self._statuses.items())
        version = GaugeMetricFamily(
            "geo_friends_ring_version", "version of the live ring in etcd applied last", labels=["region"]
        )
        changes = CounterMetricFamily(
            "geo_friends_ring_changes", "live ring versions from etcd applied (channels re-homed)", labels=["region"]
        )
        nodes = GaugeMetricFamily("geo_friends_ring_nodes", "nodes of the ring in use", labels=["region"])
        connected = GaugeMetricFamily(
            "geo_friends_ring_etcd_connected", "1 while the watch of the ring in etcd is up", labels=["region"]
        )
        leader = GaugeMetricFamily(
            "geo_friends_ring_health_leader", "1 while this instance runs the ring's health check", labels=["region"]
        )
        for region, st in rows:
            version.add_metric([region], st.version)
            changes.add_metric([region], st.changes)
            nodes.add_metric([region], st.nodes)
            connected.add_metric([region], int(st.connected))
            leader.add_metric([region], int(st.leading))
        yield from (version, changes, nodes, connected, leader)
