"""Keeping an instance's in-memory catalog in step with the database, without restarts.

At start-up the catalog is built from one snapshot of a replica (read on the event loop:
every row within the card budget, else every position by binary COPY,
:mod:`location_api.catalog_load`; the indexes built in an executor thread and swapped in).
Then, every ``Settings.api_refresh_s`` (0.25 s), the refresher reads the change log
(``business_changes``, written by triggers in the same transaction as every write) from a
replica and applies each change to the catalog, so a business written through any instance
shows up in every instance's searches within a few hundred milliseconds.

Which changes are new is decided by transaction id, not by ``seq``: sequence order is not
commit order, so a change with a lower ``seq`` can become visible after a higher one. Each
poll runs in a repeatable-read snapshot whose ``xmin`` (the horizon) is the oldest
transaction still running; every transaction below it has finished and is visible. A poll
reads the rows of transactions at or above the previous horizon but not among those it has
applied already (a transaction's rows show all at once, so its id stands for them), so a late
commit is never skipped, however late. A transaction left open holds every later horizon
back: the rows above it are not read again, nor counted towards a bulk load's rebuild.

Two WAL positions bracket each snapshot. ``applied_lsn`` (read before it) says every commit up
to there is in the catalog: a read carrying a consistency token above it is not answered
from memory. The position read after it is the least a server must have made visible to be
read from next, so switching between replicas (or to the primary) never goes back in time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence

from geo_common import gc_control
from geo_common.database import Database, DatabaseUnavailable
from geo_common.tuning import ProcessTuning
from location_api import catalog_load, catalog_queries
from location_api.cache import Cache
from location_api.catalog import Catalog
from location_api.cells import geohash12
from location_api.contract import MEMORY_STRATEGIES

log = logging.getLogger(__name__)

#: A poll that finds more changes than this rebuilds the catalog instead (a bulk load).
MAX_CHANGES_PER_POLL = 5_000  # and the bulk threshold of migration 0015
#: Rebuild from scratch when no poll succeeded for this long: the change log keeps
#: :data:`CHANGE_LOG_RETENTION_S` of history, so a longer gap could have lost changes.
REBUILD_AFTER_S = 1_800.0
#: How long the change log is kept (pruned by the write role).
CHANGE_LOG_RETENTION_S = 3_600.0
#: An index with this many changes waiting in its delta has them merged into its bulk, in a
#: worker thread (geo_index merges without the interpreter's lock; searches go on meanwhile).
MERGE_AT = 4_096


class Refresher:
    """Builds the catalog and applies the change log to it.

    Args:
        db: where to read from.
        cache: whose entries to invalidate when a change is applied.
        max_radius_m: the largest search radius, metres (the indexes refuse larger).
        interval_s: time between polls, seconds.
        strategies: the in-memory indexes to build (``Settings.api_indexes``).
        process_tuning: pause the collector around each rebuild and freeze the new catalog,
            then back the process's memory with huge pages (:mod:`geo_common.tuning`;
            ``Settings.process_tuning``).
        cards_max: the card budget (``Settings.api_cards_max``): a catalog of more
            businesses holds positions only (one that inserts take past it is rebuilt so at
            the poll that applies them); ``None``: no budget.
    """

    def __init__(
        self,
        db: Database,
        cache: Cache,
        *,
        max_radius_m: float,
        interval_s: float,
        strategies: Sequence[str] = MEMORY_STRATEGIES,
        process_tuning: bool,
        cards_max: int | None = None,
    ) -> None:
        self._db = db
        self._cards_max = cards_max
        self._tuning = ProcessTuning(process_tuning)
        self._cache = cache
        self._max_radius_m = max_radius_m
        self._interval_s = interval_s
        self._strategies = tuple(strategies)
        #: The catalog, or ``None`` until the first build succeeds.
        self.catalog: Catalog | None = None
        #: Every commit at or below this WAL position is reflected in the catalog.
        self.applied_lsn = 0
        self._source_lsn = 0
        self._horizon = 0
        #: The transactions at or above the horizon whose changes the catalog reflects.
        self._seen: set[int] = set()
        self._last_success = time.monotonic()
        #: Counters for /metrics.
        self.rebuilds = 0
        #: Bytes of the process's memory in huge pages after the last rebuild (``process_tuning``).
        self.huge_page_bytes = 0
        self.changes_applied = 0
        self.errors = 0
        #: Merges of an index's changes into its bulk that finished.
        self.merges = 0
        self._merging: dict[str, asyncio.Future[bool]] = {}
        # One poll or rebuild at a time: a poll applies changes to the catalog it started
        # with, and a rebuild replaces it.
        self._turn = asyncio.Lock()
        # Catalogs a rebuild replaced, to be taken apart once the turn is over.
        self._retired: list[Catalog | None] = []

    @property
    def seconds_since_refresh(self) -> float:
        """Seconds since the catalog was last brought up to date."""
        return time.monotonic() - self._last_success

    async def rebuild(self) -> None:
        """Build a new catalog from one snapshot and swap it in (after any poll or rebuild
        under way: they take turns).

        Raises:
            DatabaseUnavailable: no server could be read.
        """
        async with self._turn:
            await self._rebuild()
        await self._take_apart_retired()
        # After the old catalog is gone, so its memory is not collapsed only to be freed.
        report = await asyncio.get_running_loop().run_in_executor(None, self._tuning.collapse_heap)
        if report is not None:
            self.huge_page_bytes = report.huge_after
            (log.info if report.problem is None else log.warning)("%s", report.describe())

    async def _take_apart_retired(self) -> None:
        """Free the catalogs rebuilds replaced: millions of objects at a million businesses.
        In a thread, a piece at a time, so the event loop runs in between; and after the
        turn, so polls go on meanwhile (nothing refers to a replaced catalog any more: a
        search reads ``catalog`` and finishes without yielding)."""
        retired, self._retired = self._retired, []
        if retired:
            await asyncio.get_running_loop().run_in_executor(None, gc_control.dismantle, retired)

    async def _rebuild(self) -> None:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        # Millions of long-lived objects (the rows, then the catalog): no collection may walk
        # them, neither while they are made nor ever after (a full walk stalls every request
        # for a second or more at a million businesses). So the collector pauses from the
        # fetch until the new catalog is frozen (geo_common.tuning, unless tuning is off).
        with self._tuning.building():
            async with self._db.snapshot(min_lsn=self._source_lsn or None) as (node, conn):
                loaded = await catalog_load.load_snapshot(conn, cards_max=self._cards_max)
            read_s = time.monotonic() - started
            # Building the indexes takes seconds of CPU: not on the event loop. The thread
            # builds a new catalog; nothing else touches it.
            catalog = await loop.run_in_executor(
                None,
                functools.partial(loaded.build, max_radius_m=self._max_radius_m, strategies=self._strategies),
            )
            info, seen = loaded.info, loaded.seen
            del loaded
            self._retired.append(self.catalog)
            self.catalog = catalog
            self._horizon = info.horizon
            self._seen = set(seen)
            self.applied_lsn = info.lsn_before
            self._source_lsn = max(self._source_lsn, info.lsn_after)
            self._last_success = time.monotonic()
            self.rebuilds += 1
        log.info(
            "in-memory indexes built: %d businesses (%s) from %s in %.1f s (%.1f s reading)",
            len(catalog),
            "positions only" if catalog.cards is None else "with cards",
            node.name,
            time.monotonic() - started,
            read_s,
        )

    async def poll(self) -> int:
        """Apply the changes committed since the last poll.

        Returns:
            How many changes were applied.

        Raises:
            DatabaseUnavailable: no server could be read.
        """
        async with self._turn:
            applied = await self._poll()
        await self._take_apart_retired()
        self._merge_when_due()
        return applied

    def _merge_when_due(self) -> None:
        """Start merging each index whose delta reached :data:`MERGE_AT` (once at a time)."""
        catalog = self.catalog
        if catalog is None:
            return
        loop = asyncio.get_running_loop()
        for strategy, index in catalog.indexes.items():
            if index.pending < MERGE_AT or strategy in self._merging:
                continue
            task = loop.run_in_executor(None, index.merge)
            self._merging[strategy] = task
            task.add_done_callback(functools.partial(self._merged, strategy))

    def _merged(self, strategy: str, task: asyncio.Future[bool]) -> None:
        del self._merging[strategy]
        if not task.cancelled() and task.exception() is not None:
            log.error("merging the %s index's changes failed", strategy, exc_info=task.exception())
        else:
            self.merges += 1

    async def _poll(self) -> int:
        catalog = self.catalog
        if catalog is None:
            await self._rebuild()
            return 0
        async with self._db.snapshot(min_lsn=self._source_lsn) as (_node, conn):
            info, fresh, overflow = await catalog_queries.poll_changes(
                conn, self._horizon, self._seen, MAX_CHANGES_PER_POLL
            )
        if overflow or any(c.business_id is None for c in fresh):
            # A bulk load or a TRUNCATE: cheaper (and simpler) to start over. Bulk writes
            # invalidate nothing in Redis, so drop the API's cache entries too.
            await self._rebuild()
            await self._cache.drop_all(info.lsn_after)
            return 0
        stale: list[tuple[int, list[str]]] = []
        for change in fresh:
            assert change.business_id is not None  # checked above
            was = catalog.position(change.business_id)
            facets_were = catalog.facets(change.business_id)
            old = catalog.apply(change.business_id, change.business, change.facets)
            self._seen.add(change.xid)
            # Positions only: what else changed is not known, so the entries always go. With
            # cards, an unchanged business keeps its cells (they hold what filters read, so a
            # changed rating or hours is a change); its detail may have changed all the same
            # (a phone number), so its own entries go whatever changed.
            if old != change.business or facets_were != change.facets or catalog.cards is None:
                now = change.business
                places = [was, None if now is None else (now.latitude, now.longitude)]
                stale.append((change.business_id, [geohash12(lat, lon) for lat, lon in filter(None, places)]))
            else:
                stale.append((change.business_id, []))
        horizon = max(self._horizon, info.horizon)
        self._horizon = horizon
        self._seen = {xid for xid in self._seen if xid >= horizon}
        self.applied_lsn = max(self.applied_lsn, info.lsn_before)
        self._source_lsn = max(self._source_lsn, info.lsn_after)
        self._last_success = time.monotonic()
        self.changes_applied += len(fresh)
        # The second invalidation: this replica now shows the write, so an entry filled
        # from it from now on is fresh; one filled before may not be.
        for business_id, positions in stale:
            await self._cache.invalidate(business_id, positions, info.lsn_after)
        if catalog.cards is not None and self._cards_max is not None and len(catalog) > self._cards_max:
            # Inserts took the catalog past the card budget: held again with positions only.
            log.info("%d businesses, over the card budget of %d: rebuilding", len(catalog), self._cards_max)
            await self._rebuild()
        return len(fresh)

    async def run(self) -> None:
        """Poll forever (a background task; cancel it to stop).

        A failure is logged once when it starts and once when it ends, not at every poll.
        """
        failing = False
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                if self.catalog is None or self.seconds_since_refresh > REBUILD_AFTER_S:
                    await self.rebuild()
                else:
                    await self.poll()
            except DatabaseUnavailable as exc:
                self.errors += 1
                if not failing:
                    log.warning("index refresh paused, no database: %s", exc)
                failing = True
            except Exception:
                # A bug or a broken schema must not stop the refresh for good.
                self.errors += 1
                if not failing:
                    log.exception("index refresh failed; retrying every %.2f s", self._interval_s)
                failing = True
            else:
                if failing:
                    log.info("index refresh works again")
                failing = False
