"""Gentle drains: an instance that stops hands its clients over in waves, not all at once.

Closing every socket at once makes every client reconnect in the same second (a reconnect
storm on the other instances, their databases and pub/sub). On SIGTERM (``geo-friends``
installs the handler, :mod:`friends_ws.__main__`) a :class:`Drain` instead:

1. marks the instance draining: ``/readyz`` answers 503 and new handshakes are refused with
   503 and ``Retry-After`` (:mod:`friends_ws.ws`), so load balancers and clients go elsewhere;
2. gives each connection a close time spread over the window (:func:`close_times`: one
   uniform draw per equal slice of the window, in random order) and tells it at once with a
   ``reconnect`` frame whose ``after_ms`` is that time;
3. closes each connection with 1001 (going away) at its time, the connections due within
   :data:`WAVE_S` of each other together;
4. calls ``done`` (which stops the process) once they are closed.

Nothing of the users is lost: a connection handed over does not clear its user's cached
location nor tell friends the user went offline (:meth:`friends_ws.session.Session.close`),
since the user is coming back on another instance; the cache keeps the location (with its
TTL) and the reconnection gets a fresh ``init``. A user who does not come back expires from
friends' views after ``GEO_LOCATION_TTL_S``, as after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from aiohttp import WSCloseCode

from friends_ws.keepalive import Keepalive
from friends_ws.link import Link
from friends_ws.protocol import encode_reconnect

log = logging.getLogger(__name__)

#: Connections due within this many seconds of each other are closed together.
WAVE_S = 0.01
#: How long the last closing handshakes may take before ``done`` is called anyway, seconds.
CLOSE_WAIT_S = 5.0


def close_times(count: int, window_s: float, rng: random.Random) -> list[float]:
    """When to close each of ``count`` connections, seconds after the drain starts.

    The window is cut into ``count`` equal slices and each connection gets one uniform draw
    in a slice of its own, the slices shuffled: jittered, yet never bunched (any stretch of
    the window holds its share of the closes, give or take one).

    Args:
        count: connections to close.
        window_s: the drain window, seconds (``GEO_WS_DRAIN_S``).
        rng: the source of randomness.

    Returns:
        ``count`` times in ``[0, window_s)``, in no particular order.
    """
    if count == 0:
        return []
    slice_s = window_s / count
    times = [(k + rng.random()) * slice_s for k in range(count)]
    rng.shuffle(times)
    return times


class Drain:
    """Whether this instance is draining, and the drain itself.

    Args:
        window_s: the window over which clients are closed, seconds (``GEO_WS_DRAIN_S``).
    """

    __slots__ = ("window_s", "draining", "_task")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        #: Set on SIGTERM: readiness fails and handshakes are refused from then on.
        self.draining = False
        self._task: asyncio.Task[None] | None = None

    def begin(self, links: Keepalive, *, done: Callable[[], None], rng: random.Random | None = None) -> None:
        """Start draining the open connections; ``done`` is called once they are closed (their
        handlers finished), or :data:`CLOSE_WAIT_S` after the last was told to close.

        A second call (a second SIGTERM) changes nothing: the drain under way goes on.
        """
        if self.draining:
            return
        self.draining = True
        open_links = [link for link in links if not link.closed]
        times = close_times(len(open_links), self.window_s, rng or random.Random())
        due = sorted(zip(times, open_links, strict=True), key=lambda pair: pair[0])
        for at_s, link in due:
            link.handed_over = True
            link.send(encode_reconnect(int(at_s * 1000)))
            link.stats.sent["reconnect"] += 1
        log.info("draining %d connection(s) over %g s", len(due), self.window_s)
        self._task = asyncio.get_running_loop().create_task(self._close(due, links, done))

    async def _close(self, due: list[tuple[float, Link]], links: Keepalive, done: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            for at_s, link in due:
                wait_s = start + at_s - loop.time()
                if wait_s > WAVE_S:
                    await asyncio.sleep(wait_s)
                if not link.closed:
                    link.flush()  # the reconnect frame first, should it still wait
                    link.close(WSCloseCode.GOING_AWAY, b"server draining: reconnect")
            deadline = loop.time() + CLOSE_WAIT_S
            while len(links) and loop.time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            log.info("drained in %.1f s", loop.time() - start)
            done()
