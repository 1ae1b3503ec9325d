"""Location history, written to PostgreSQL in batches (never one INSERT per update).

Rows wait in memory and are written with one binary COPY every ``flush_ms`` milliseconds,
or as soon as ``flush_rows`` are waiting. A failed write keeps its rows for the next attempt
(up to ``max_rows``, beyond which the oldest are dropped and counted), and :meth:`close`
writes everything still waiting, so a clean shutdown loses nothing received.

An erasure (:meth:`HistoryWriter.erase`, heard on the erasures channel) drops every waiting
row of the user at once. A COPY already under way may still commit that user's rows after
the API deleted the history, so once the current write is done the writer deletes the
user's rows on the primary itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging

import asyncpg

from geo_common.database import Database, DatabaseUnavailable
from geo_common.history_db import HistoryRow, delete_history, insert_history

log = logging.getLogger(__name__)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


class HistoryWriter:
    """Batches history rows to the primary.

    Args:
        db: the database (rows go to its primary).
        flush_ms: the longest a row waits, milliseconds.
        flush_rows: write as soon as this many rows wait.
        max_rows: the most rows kept while the database is unavailable.
    """

    def __init__(self, db: Database, *, flush_ms: int, flush_rows: int, max_rows: int | None = None) -> None:
        self._db = db
        self._interval_s = flush_ms / 1000.0
        self._flush_rows = flush_rows
        self._max_rows = max_rows if max_rows is not None else max(100 * flush_rows, 100_000)
        self._rows: list[HistoryRow] = []
        # Users whose rows were erased, to delete on the primary after the current write.
        self._erased: set[int] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        #: Rows written, batches written, and rows dropped while the database was down.
        self.written = 0
        self.batches = 0
        self.dropped = 0
        #: Waiting rows dropped because their user's locations were erased.
        self.erased = 0

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="history-writer")

    def record(self, user_id: int, point: tuple[float, float], *, received_ms: int, sent_at_ms: int | None) -> None:
        """Queue the point (degrees) a user sent, received at ``received_ms`` by the server and
        sent at ``sent_at_ms`` by the client's clock (Unix milliseconds; None: not said)."""
        sent_at = None if sent_at_ms is None else _utc(sent_at_ms)
        self.append(HistoryRow(user_id, point[0], point[1], _utc(received_ms), sent_at))

    def append(self, row: HistoryRow) -> None:
        """Queue one row (never waits)."""
        self._rows.append(row)
        if len(self._rows) >= self._flush_rows:
            self._wake.set()

    def erase(self, user_id: int) -> None:
        """A user's locations were erased: drop their waiting rows now, and delete their rows on
        the primary once the write under way (which may hold some) is done."""
        kept = [r for r in self._rows if r.user_id != user_id]
        self.erased += len(self._rows) - len(kept)
        self._rows = kept
        self._erased.add(user_id)
        self._wake.set()

    async def _delete_erased(self) -> bool:
        """Delete the rows of erased users on the primary; False when it failed (kept for later)."""
        while self._erased:
            user_id = next(iter(self._erased))
            try:
                await self._db.write(functools.partial(delete_history, user_id=user_id))
            except (DatabaseUnavailable, asyncpg.PostgresError) as exc:
                log.warning("history: deleting an erased user's rows failed (%s); will retry", exc)
                return False
            self._erased.discard(user_id)
        return True

    @property
    def waiting(self) -> int:
        """Rows not written yet."""
        return len(self._rows)

    @property
    def max_rows(self) -> int:
        """The most rows kept while the database is unavailable (older ones are dropped)."""
        return self._max_rows

    async def close(self) -> None:
        """Stop the background writer after its current batch, then write every waiting row."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for attempt in range(3):
            if not self._rows and not self._erased:
                return
            if not await self.flush() or not await self._delete_erased():
                await asyncio.sleep(0.2 * (attempt + 1))
        if self._rows or self._erased:
            log.error("history: %d row(s) could not be written before shutdown", len(self._rows))

    async def flush(self) -> bool:
        """Write every waiting row now; False when the database refused (rows are kept)."""
        rows, self._rows = self._rows, []
        if not rows:
            return True
        try:
            await self._db.write(lambda conn: insert_history(conn, rows))
        except (DatabaseUnavailable, asyncpg.PostgresError) as exc:
            # Rows of users erased meanwhile are not written on the next attempt either.
            self._rows[:0] = [r for r in rows if r.user_id not in self._erased]
            excess = len(self._rows) - self._max_rows
            if excess > 0:
                del self._rows[:excess]
                self.dropped += excess
            log.warning("history: writing %d row(s) failed (%s); will retry", len(rows), exc)
            return False
        self.written += len(rows)
        self.batches += 1
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._interval_s
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, due - loop.time()))
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            # Erasures first: a COPY that was under way when one arrived has finished by now.
            # (One that fails is tried again at the next flush.)
            await self._delete_erased()
            if loop.time() < due and len(self._rows) < self._flush_rows:
                continue  # woken by an erasure only
            due = loop.time() + self._interval_s
            if not await self.flush():
                await asyncio.sleep(min(1.0, self._interval_s))
