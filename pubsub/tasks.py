"""Stopping a background task: what every long-lived loop does when its owner closes."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended.

    Waiting matters: a cancelled task runs its ``finally`` blocks only when the loop next
    steps it, so a caller that closes the connections the task uses right after ``cancel()``
    would race it.

    Args:
        task: the task, or ``None`` (never started: nothing to do).

    Raises:
        Exception: whatever the task raised before it was cancelled.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
