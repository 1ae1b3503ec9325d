"""Telling live connections about changes: each region's pub/sub and location cache, under
a circuit breaker per region.

The user routes (friendships, privacy, erasure) write to PostgreSQL first, then publish the
:class:`~geo_common.announcements.Publication` values that
:class:`~geo_common.announcements.Announcer` builds for the change, in order, so every
``geo-friends`` instance holding an affected connection applies it within a second.

Every Redis call goes through the region's breaker (``redis-presence-<region>`` in
``/metrics``): while a region's Redis is down, after ``GEO_BREAKER_FAILURES`` failures in a
row, the routes answer 503 ``presence-unavailable`` at once, with ``Retry-After`` set to the
breaker's remaining cool-down, instead of waiting for Redis's timeouts on every request. The
database change is kept in every case, and each route is idempotent, so retrying is safe.

A region on the ring backend follows its live ring in etcd when ``GEO_ETCD_URL`` is set, as
every ``geo-friends`` does (:class:`pubsub.ring_watch.RingWatch`, the same no-loss handoff),
so announcements go to the node each channel lives on now; the health check is
``geo-friends``' alone.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from geo_common.announcements import Announcer, Publication
from geo_common.breaker import Breaker, CircuitOpen
from geo_common.presence import location_key
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from location_api.errors import ApiError
from pubsub import PubSub, PubSubError, RingPubSub, create_pubsub, open_redis
from pubsub.etcd_ring import etcd_client
from pubsub.ring_doc import RingKeys
from pubsub.ring_watch import RingWatch

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What means "Redis could not answer" to the presence breakers.
PRESENCE_ERRORS = (RedisError, PubSubError, OSError)


class PresenceUnavailable(ApiError, ConnectionError):
    """The change is stored, but the live connections could not be told (503; retrying is safe)."""

    status = 503
    slug = "presence-unavailable"
    title = "Live connections could not be updated"

    def __init__(self, detail: str, retry_after_s: float = 1.0) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


@dataclass(frozen=True, slots=True)
class Presence:
    """Per region: the pub/sub backend (publishing only), the location cache's Redis, and
    the circuit breaker both are called under; and the announcer that says what to publish.

    Every method raises :class:`PresenceUnavailable` when a region's Redis cannot answer or
    its breaker is open; ``stored`` (say, ``"the friendship is stored"``) begins its detail.
    """

    announcer: Announcer
    buses: dict[str, PubSub]
    caches: dict[str, aioredis.Redis]
    breakers: dict[str, Breaker]

    @property
    def regions(self) -> RegionMap:
        """The region map."""
        return self.announcer.regions

    async def publish(self, publications: Sequence[Publication], *, stored: str) -> list[int]:
        """Publish messages one after the other, each under its region's breaker.

        Order matters: a channel keeps the order of what is published on it, and a restricting
        message must reach an instance before anything published after the change.

        Args:
            publications: what :class:`~geo_common.announcements.Announcer` built.
            stored: what the database holds already, for the 503's detail.

        Returns:
            For each publication, how many subscriber connections received it (one per process).

        Raises:
            PresenceUnavailable: a region's Redis failed or its breaker is open; the
                publications after the failed one were not sent.
        """
        receivers: list[int] = []
        for publication in publications:
            send = partial(self.buses[publication.region].publish, publication.channel, publication.data)
            receivers.append(await self._call(publication.region, send, stored))
        return receivers

    async def delete_location(self, region: str, user_id: int, *, stored: str) -> bool:
        """Delete a user's cached location in one region; True when there was one.

        Raises:
            PresenceUnavailable: the region's Redis failed or its breaker is open.
        """
        delete = partial(self.caches[region].delete, location_key(self.announcer.namespace, region, user_id))
        return bool(await self._call(region, delete, stored))

    async def _call(self, region: str, command: Callable[[], Awaitable[T]], stored: str) -> T:
        try:
            with self.breakers[region].guard(PRESENCE_ERRORS):
                return await command()
        except CircuitOpen as exc:  # first: a CircuitOpen is a ConnectionError (an OSError) too
            raise PresenceUnavailable(
                f"{stored}, but Redis is unavailable and live connections were not told; retry",
                exc.retry_after_s,
            ) from exc
        except PRESENCE_ERRORS as exc:
            # The exception's class and text only: no key, channel or message (a message may
            # hold a location).
            log.warning("presence in region %s failed (%s); the change is stored", region, type(exc).__name__)
            raise PresenceUnavailable(f"{stored}, but live connections could not be told; retry") from exc


@contextlib.asynccontextmanager
async def open_presence(settings: Settings) -> AsyncIterator[Presence]:
    """Every region's pub/sub (publishing only), cache client and breaker, closed on exit.

    Args:
        settings: the regions, the namespace, the breakers' thresholds and the TLS CA.

    Yields:
        The presence of every region; the app factory files it under
        :data:`location_api.keys.presence_key` and its breakers in ``/metrics``.
    """
    regions = RegionMap.from_settings(settings)
    buses: dict[str, PubSub] = {}
    caches: dict[str, aioredis.Redis] = {}
    watches: list[RingWatch] = []
    try:
        for region in regions.regions:
            # Publishing only: a backend opens no subscriber connection until it subscribes.
            ring = {"handoff_s": settings.pubsub_ring_handoff_s} if region.pubsub_backend == "ring" else {}
            bus = create_pubsub(
                region.pubsub_backend,
                region.pubsub_nodes,
                on_message=lambda _c, _d: None,
                tls_ca=settings.redis_tls_ca,
                **ring,
            )
            await bus.start()
            buses[region.name] = bus
            if isinstance(bus, RingPubSub) and settings.etcd_url:
                watches.append(_follow(settings, region.name, bus))
            caches[region.name] = open_redis(region.redis_url, tls_ca=settings.redis_tls_ca, socket_connect_timeout=5.0)
        breakers = {
            region.name: Breaker(
                f"redis-presence-{region.name}", failures=settings.breaker_failures, reset_s=settings.breaker_reset_s
            )
            for region in regions.regions
        }
        yield Presence(Announcer(regions, settings.redis_namespace), buses, caches, breakers)
    finally:
        for watch in watches:
            await watch.close()
        for bus in buses.values():
            await bus.close()
        for cache in caches.values():
            await cache.aclose()


def _follow(settings: Settings, region: str, bus: RingPubSub) -> RingWatch:
    """Start applying a ring region's live ring in etcd to its publishing backend."""
    watch = RingWatch(
        partial(etcd_client, settings.etcd_url, timeout_s=max(1.0, settings.pubsub_ring_check_s)),
        RingKeys(settings.redis_namespace, region),
        seed=bus.nodes,
        current=lambda: bus.nodes,
        apply=bus.set_nodes,
        where=settings.etcd_url,
    )
    watch.start()
    return watch
