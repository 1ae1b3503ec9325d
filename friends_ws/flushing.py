"""One write per connection per loop iteration: the process-wide flush queue.

Everything queued for a connection while one batch of pub/sub messages is dispatched goes
out in one write, in one task for all connections, without awaiting any slow socket (a
connection whose socket is backed up drains in its own task, see :mod:`friends_ws.link`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Flushable(Protocol):
    """What the queue needs of a connection (a :class:`~friends_ws.link.Link`)."""

    @property
    def user_id(self) -> int:
        """The user (for logs)."""
        ...

    def flush(self) -> None:
        """Write every frame waiting (unless the socket is backed up)."""
        ...


class FlushQueue:
    """Connections with frames to write, flushed at the end of the current loop iteration."""

    __slots__ = ("_dirty", "_soon")

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        self._soon = False

    def schedule(self, link: Flushable) -> None:
        """Have ``link``'s frames written at the end of this loop iteration."""
        self._dirty.append(link)
        if not self._soon:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._soon = False
        dirty, self._dirty = self._dirty, []
        for link in dirty:
            try:
                link.flush()
            except Exception:  # one broken socket must not stop everyone's deliveries
                log.exception("writing to user %d failed", link.user_id)
