"""Retention: history older than ``GEO_HISTORY_RETENTION_DAYS`` is deleted by geo-friends itself.

Every instance runs a :class:`Purger`, but one round runs at a time across the deployment:
each takes a PostgreSQL advisory lock (``pg_try_advisory_lock``, per database) on the one
connection it deletes with, and skips the round when another instance holds it. The first
round runs shortly after start, then one every ``GEO_HISTORY_PURGE_INTERVAL_S``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import asyncpg

from geo_common.database import Database, DatabaseUnavailable
from geo_common.history_db import purge_history
from pubsub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: The advisory lock of the purge (any fixed 64-bit number; "geopurge" in ASCII).
PURGE_LOCK = 0x67656F7075726765
#: The longest the first round waits after start, seconds.
FIRST_ROUND_S = 2.0


def cutoff(days: int, now: dt.datetime | None = None) -> dt.datetime:
    """The moment before which history is past a retention of ``days`` days (UTC)."""
    return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)


async def purge_if_free(conn: asyncpg.Connection, *, older_than: dt.datetime) -> int | None:
    """Delete history recorded before ``older_than`` unless another instance is doing it.

    Args:
        conn: one connection to the primary (the advisory lock belongs to it).
        older_than: rows recorded before this go.

    Returns:
        How many rows were deleted, or None when another instance holds the lock.
    """
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK):
        return None
    try:
        return await purge_history(conn, older_than=older_than)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", PURGE_LOCK)


class Purger:
    """Deletes history past retention every ``interval_s`` seconds, in the background.

    Args:
        db: the database (rows are deleted on its primary).
        retention_days: history older than this many days goes.
        interval_s: seconds between rounds.
    """

    def __init__(self, db: Database, *, retention_days: int, interval_s: float) -> None:
        self._db = db
        self.retention_days = retention_days
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        #: Rows deleted by this process, and when its last round succeeded (Unix seconds, 0: never).
        self.purged = 0
        self.last_success = 0.0
        #: Rounds skipped because another instance was purging.
        self.skipped = 0

    def start(self) -> None:
        """Start the rounds (the first shortly after start)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="history-purge")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def round(self) -> int | None:
        """One round now: rows deleted, or None when another instance held the lock.

        Raises:
            DatabaseUnavailable, asyncpg.PostgresError: the primary failed.
        """
        older_than = cutoff(self.retention_days)
        deleted = await self._db.write(lambda conn: purge_if_free(conn, older_than=older_than))
        if deleted is None:
            self.skipped += 1
        else:
            self.purged += deleted
            self.last_success = time.time()
        return deleted

    async def _run(self) -> None:
        await asyncio.sleep(min(self.interval_s, FIRST_ROUND_S))
        while True:
            try:
                deleted = await self.round()
            except (DatabaseUnavailable, asyncpg.PostgresError, OSError) as exc:
                log.warning("history purge failed (%s); next round in %.0f s", exc, self.interval_s)
            else:
                if deleted is None:
                    log.debug("history purge skipped: another instance is purging")
                elif deleted:
                    log.info("history purge: deleted %d row(s) older than %d day(s)", deleted, self.retention_days)
            await asyncio.sleep(self.interval_s)
