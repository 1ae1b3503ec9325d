"""The rings of the regions that use the ring backend, kept in etcd (``GEO_ETCD_URL``).

For each such region, a :class:`~pubsub.ring_watch.RingWatch` applies every version of the
live ring through :meth:`friends_ws.broker.Broker.set_ring` (the no-loss handoff), and a
:class:`~pubsub.ring_health.HealthCheck` stands for election and, while elected, takes dead
nodes out of the live ring and puts them back when they answer. Without ``GEO_ETCD_URL``
none of this runs and the ring comes from ``GEO_PUBSUB_RING``, re-read on SIGHUP
(docs/pubsub.md#the-ring-in-etcd).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from friends_ws.broker import Broker
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from pubsub import RingPubSub
from pubsub.etcd_ring import etcd_client
from pubsub.ring_doc import RingKeys
from pubsub.ring_health import HealthCheck
from pubsub.ring_watch import RingStatus, RingWatch


def lease_ttl_s(check_s: float) -> int:
    """The health-check leader's lease, whole seconds: five probe intervals, at least 2 s."""
    return max(2, math.ceil(5 * check_s))


class RingDiscovery:
    """The watches and health checks of every ring region of one process.

    Args:
        settings: ``etcd_url`` (set), ``redis_namespace``, ``pubsub_ring_check_s``, ``redis_tls_ca``.
        regions: the region map; only regions using the ring backend take part.
        broker: the process's pub/sub backends.
    """

    def __init__(self, settings: Settings, regions: RegionMap, broker: Broker) -> None:
        check_s = settings.pubsub_ring_check_s
        ttl_s = lease_ttl_s(check_s)
        connect = functools.partial(etcd_client, settings.etcd_url, timeout_s=max(1.0, check_s))
        #: Each ring region's state, for /metrics.
        self.statuses: dict[str, RingStatus] = {}
        self.watches: list[RingWatch] = []
        self.checks: list[HealthCheck] = []
        for region in regions.regions:
            if region.pubsub_backend != "ring":
                continue
            keys = RingKeys(settings.redis_namespace, region.name)
            status = self.statuses[region.name] = RingStatus()
            self.watches.append(
                RingWatch(
                    connect,
                    keys,
                    seed=region.pubsub_nodes,
                    current=functools.partial(_nodes, broker, region.name),
                    apply=functools.partial(broker.set_ring, region.name),
                    check_s=ttl_s,
                    status=status,
                    where=settings.etcd_url,
                )
            )
            self.checks.append(
                HealthCheck(
                    connect,
                    keys,
                    interval_s=check_s,
                    timeout_s=check_s,
                    ttl_s=ttl_s,
                    tls_ca=settings.redis_tls_ca or None,
                    status=status,
                )
            )

    def start(self) -> None:
        for watch in self.watches:
            watch.start()
        for check in self.checks:
            check.start()

    async def close(self, *, resign: bool = True) -> None:
        """Stop; with ``resign``, a leading health check hands its role over at once."""
        for check in self.checks:
            await check.close(resign=resign)
        for watch in self.watches:
            await watch.close()


def _nodes(broker: Broker, region: str) -> Sequence[str]:
    bus = broker.bus(region)
    return bus.nodes if isinstance(bus, RingPubSub) else ()


def uses_etcd(settings: Settings, regions: RegionMap) -> bool:
    """True when the rings come from etcd: ``GEO_ETCD_URL`` is set and a region uses the ring."""
    return bool(settings.etcd_url) and any(r.pubsub_backend == "ring" for r in regions.regions)
