"""Keepalive of every connection of the process: one loop, no timer or task per connection.

Pings are sent here rather than by aiohttp's heartbeat, which keeps a timer per connection.
The loop wakes every half interval and asks each open :class:`~friends_ws.link.Link` whether
its client has been silent for long: a silent one is pinged, one that stays silent for half
an interval more (no pong, no frame) is dropped (see :meth:`~friends_ws.link.Link.keepalive`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from friends_ws.link import Link


class Keepalive:
    """The open links of the process, and the loop that pings them.

    Args:
        interval_s: a connection silent this long is pinged, and dropped when it stays silent
            for half as long again, seconds (``None``: never).
    """

    __slots__ = ("interval_s", "_links")

    def __init__(self, interval_s: float | None) -> None:
        self.interval_s = interval_s
        self._links: set[Link] = set()

    def __len__(self) -> int:
        return len(self._links)

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links))

    def add(self, link: Link) -> None:
        """Watch an open connection's link."""
        self._links.add(link)

    def discard(self, link: Link) -> None:
        """The connection closed: stop watching it."""
        self._links.discard(link)

    async def run(self) -> None:
        """Ping silent connections and drop dead ones, until cancelled (at once without an interval)."""
        interval_s = self.interval_s
        if interval_s is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s / 2)
            now = loop.time()
            for link in list(self._links):
                link.keepalive(now, interval_s)
