"""When each connection's token expires, and one loop that closes the connections whose did.

A token is checked at the handshake; without this, a socket opened with it would stream for
as long as it stays open. Every connection is watched until its token's expiry (plus the
verification's clock-skew leeway, so a token accepted a moment after its ``exp`` is not cut
at once), unless a fresh token of the same user arrives first (an ``auth`` frame), which
moves the deadline. One loop serves every connection of the process, as keepalive does: no
timer and no task per connection.

:class:`Deadlines` is the pure part (a heap with lazy deletion); :class:`TokenLifetimes`
runs it on the event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pubsub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

K = TypeVar("K")

#: How often the loop looks for expired tokens, seconds (how late a close may be).
TICK_S = 0.25


class Deadlines(Generic[K]):
    """Keys with one deadline each (any unit), returned once due.

    Moving or dropping a key leaves its old heap entry behind, skipped when it surfaces; the
    heap is rebuilt from the live keys whenever stale entries outnumber them, so memory stays
    proportional to the keys watched however often they move.
    """

    __slots__ = ("_at", "_heap", "_seq")

    def __init__(self) -> None:
        self._at: dict[K, tuple[int, int]] = {}
        self._heap: list[tuple[int, int, K]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, key: K) -> bool:
        return key in self._at

    def set(self, key: K, deadline: int) -> None:
        """Set (or move) a key's deadline."""
        entry = (deadline, next(self._seq))
        self._at[key] = entry
        heapq.heappush(self._heap, (*entry, key))
        self._compact()

    def discard(self, key: K) -> None:
        """Forget a key (if watched)."""
        if self._at.pop(key, None) is not None:
            self._compact()

    def due(self, now: int) -> list[K]:
        """Remove and return the keys whose deadline is ``now`` or earlier, earliest first."""
        out: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(heap)
            if self._at.get(key) == (deadline, seq):
                del self._at[key]
                out.append(key)
        return out

    def _compact(self) -> None:
        if len(self._heap) > 2 * len(self._at) + 64:
            self._heap = [(deadline, seq, key) for key, (deadline, seq) in self._at.items()]
            heapq.heapify(self._heap)


class Expiring(Protocol):
    """A connection whose token can expire."""

    def token_expired(self) -> None:
        """Its token expired and no fresh one came: close it."""
        ...


class TokenLifetimes:
    """The token deadlines of every connection of the process, closed by one loop.

    Args:
        leeway_ms: how long after a token's expiry its connection is closed, milliseconds
            (the verification's leeway: what it accepts must not be cut at once).
        clock: the wall clock, Unix milliseconds (token expiries are wall-clock times).
    """

    def __init__(self, *, leeway_ms: int, clock: Callable[[], int]) -> None:
        self.leeway_ms = leeway_ms
        self._clock = clock
        self._deadlines: Deadlines[Expiring] = Deadlines()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def watch(self, connection: Expiring, expires_at: int) -> None:
        """Close ``connection`` once ``expires_at`` (Unix ms) has passed, unless watched again
        before then with a later one; a new call replaces the deadline."""
        self._deadlines.set(connection, expires_at + self.leeway_ms)

    def forget(self, connection: Expiring) -> None:
        """The connection closed: stop watching it."""
        self._deadlines.discard(connection)

    def expire(self, now: int) -> int:
        """Close every connection whose deadline is ``now`` (Unix ms) or earlier; how many."""
        due = self._deadlines.due(now)
        for connection in due:
            try:
                connection.token_expired()
            except Exception:  # a bug in one connection must not stop the others' expiry
                log.exception("closing a connection whose token expired failed")
        return len(due)

    def start(self) -> None:
        """Start the loop (in the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="friends-token-expiry")

    async def close(self) -> None:
        """Stop the loop."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.expire(self._clock())
