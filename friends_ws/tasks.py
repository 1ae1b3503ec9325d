"""Background work of the process's pub/sub side, cancelled together when it closes.

The expiry and keepalive loops, a friend's move to another region, a catch-up after a
reconnection: each part spawns its work here instead of keeping a task set of its own, so
closing the hub cancels all of it in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Tasks:
    """Tasks running in the background until they finish or :meth:`close` cancels them."""

    __slots__ = ("_running",)

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` in the background (in the running event loop); returns its task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def close(self) -> None:
        """Cancel every task still running and wait for each to end."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # noqa: BLE001 - shutting down: a failed task has nothing left to do
                log.debug("a background task had failed: %s", exc)
