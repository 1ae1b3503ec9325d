"""The discovery cells this process listens to, and who here hears each (the process's side).

Every connection whose user discovers strangers listens to the cells around them
(:func:`friends_ws.cells.cover`); a cell's channel is subscribed once however many
connections here need it, and each message is decoded once and offered to each of them
(:class:`~friends_ws.follower.Listener`). Each cell also has a member hash in its region's Redis (who was heard
there last, :meth:`~friends_ws.cache.LocationCache.hold_member`), so a connection that starts
listening to a cell learns at once who is there, instead of at their next update.

A cell's channel and hash live in the region of the cell's centre
(:func:`friends_ws.cells.cell_point`), wherever the users in it have their home.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from friends_ws.broker import Broker
from friends_ws.cache import LocationCache
from friends_ws.follower import Listener
from friends_ws.cells import (
    CellNews,
    CellNewsError,
    cell_channel,
    cell_members_key,
    cell_point,
    decode_news,
    encode_news,
)
from geo_common.regions import RegionMap

log = logging.getLogger(__name__)

#: The most members read from a cell's hash when a connection starts listening to it (a
#: random sample of a crowded cell: a view shows few strangers anyway).
SAMPLE_MEMBERS = 200
#: How often listeners' strangers are checked for expiry, seconds.
EXPIRY_EVERY_S = 5.0


class CellChannels:
    """The cells listened to here: subscriptions, routing, member hashes, publishing.

    Args:
        regions: the region map.
        broker: the pub/sub backends.
        cache: the location cache (each region's Redis holds its cells' member hashes).
        namespace: ``GEO_REDIS_NAMESPACE``.
        ttl_ms: how long news lives, milliseconds: older members are not news any more.
    """

    def __init__(
        self, regions: RegionMap, *, broker: Broker, cache: LocationCache, namespace: str, ttl_ms: int
    ) -> None:
        self.regions = regions
        self.broker = broker
        self.cache = cache
        self.namespace = namespace
        self.ttl_ms = ttl_ms
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        #: Messages heard on cell channels.
        self.messages = 0

    @property
    def cells(self) -> int:
        """How many cells are subscribed here."""
        return len(self._listeners)

    def _where(self, cell: str) -> tuple[str, str]:
        """A cell's region and channel."""
        region = self.regions.region_for(*cell_point(cell)).name
        return region, cell_channel(self.namespace, region, cell)

    async def listen(self, listener: Listener, cells: Iterable[str], now_ms: int) -> list[CellNews]:
        """Start hearing cells; returns once each is confirmed, with who is in them now (read
        after the confirmation, so nobody heard afterwards is missed in between).

        Raises:
            pubsub.PubSubError, OSError: pub/sub or Redis did not answer (the cells stay
                listened to; the caller may :meth:`stop` them).
        """
        new: dict[str, list[str]] = defaultdict(list)
        old: list[str] = []
        wanted = list(cells)
        for cell in wanted:
            listeners = self._listeners[cell]
            region, channel = self._where(cell)
            if not listeners:
                self.broker.route_to(channel, functools.partial(self._on_message, cell))
                new[region].append(channel)
            else:
                old.append(channel)
            listeners.add(listener)
        await self.broker.subscribe(new)
        await self.broker.confirmed(old)
        return await self.members(wanted, now_ms)

    def stop(self, listener: Listener, cells: Iterable[str]) -> None:
        """Stop hearing cells (a channel nobody here needs any more is unsubscribed)."""
        gone: dict[str, list[str]] = defaultdict(list)
        for cell in cells:
            listeners = self._listeners.get(cell)
            if listeners is None:
                continue
            listeners.discard(listener)
            if not listeners:
                del self._listeners[cell]
                region, channel = self._where(cell)
                gone[region].append(channel)
        self.broker.unsubscribe(gone)

    async def members(self, cells: Iterable[str], now_ms: int) -> list[CellNews]:
        """Who was heard in cells within the TTL (a sample of a crowded one), by their member
        hashes. A member older than that (its server died before it could say it left) is
        removed, unless it was written again meanwhile."""
        found: list[CellNews] = []
        for cell in cells:
            region, _ = self._where(cell)
            key = cell_members_key(self.namespace, region, cell)
            for user_id, data in await self.cache.sample_members(region, key, SAMPLE_MEMBERS):
                try:
                    news = decode_news(data)
                except CellNewsError as exc:
                    log.warning("removing a malformed member of cell %s: %s", cell, exc)
                    news = None
                if news is not None and news.at > now_ms - self.ttl_ms:
                    found.append(news)
                else:
                    await self.cache.drop_member_if(region, key, user_id, data)
        return found

    async def publish(self, news: CellNews, *, if_still: bytes | None = None) -> bytes | None:
        """Tell a cell's listeners (everywhere) and its member hash; returns the message.

        Args:
            news: what to say.
            if_still: for a departure, say it only if the user's member is still this message
                (None: whatever it is); otherwise nothing is said, and None returned.

        Raises:
            geo_common.breaker.CircuitOpen, pubsub.PubSubError, OSError: pub/sub or Redis did
                not answer.
        """
        region, channel = self._where(news.cell)
        data = encode_news(news)
        key = cell_members_key(self.namespace, region, news.cell)
        if news.gone is None:
            await self.cache.hold_member(region, key, news.user_id, data)
        elif if_still is None:
            await self.cache.drop_member(region, key, news.user_id)
        elif not await self.cache.drop_member_if(region, key, news.user_id, if_still):
            return None  # another connection of the user spoke since: it speaks for them now
        await self.broker.publish(region, channel, data)
        return data

    def _on_message(self, cell: str, data: bytes) -> None:
        self.messages += 1
        try:
            news = decode_news(data)
        except CellNewsError as exc:
            log.warning("dropping a malformed message of cell %s: %s", cell, exc)
            return
        for listener in list(self._listeners.get(cell, ())):
            listener.heard(news)

    def expire(self, now_ms: int) -> None:
        """Let every listener here drop the strangers not heard for too long."""
        for listener in {one for listeners in self._listeners.values() for one in listeners}:
            listener.expire(now_ms)

    async def run_expiry(self, clock: Callable[[], int]) -> None:
        """Expire strangers every :data:`EXPIRY_EVERY_S` seconds, until cancelled."""
        while True:
            await asyncio.sleep(EXPIRY_EVERY_S)
            self.expire(clock())
