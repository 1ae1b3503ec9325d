"""Redis cache-aside for reads: business by id, its detail by id, and geohash cell -> its
businesses.

Reads look in Redis first and fill it from the database on a miss; every entry also expires
after ``Settings.api_cache_ttl_s``. A write deletes the business's entry and the entries of
every cell (one per level) holding its old and its new position, right after its commit.
Each instance's index refresher deletes them again when it sees the change on its replica.

A read that missed may have been served by a replica that had not replayed the write yet,
and its fill may reach Redis after both deletions: the stale entry would then live until it
expires. So every deletion also leaves a *fence* beside the key (``<key>:inv``, as long-lived
as an entry) holding the write's WAL position, and a fill carries the position its replica
had made visible before the read: a fill older than the key's fence is dropped, atomically
(one Lua script per command), and the next read goes to the database again.

Redis is optional at run time: a command that fails counts as a miss (or a no-op) and the
read goes to the database. Every command goes through a circuit breaker
(:mod:`geo_common.breaker`): after ``GEO_BREAKER_FAILURES`` failures in a row Redis is not
called at all for ``GEO_BREAKER_RESET_S``, so a dead or hanging Redis costs requests nothing;
then one command, usually the background ping, probes it. If an invalidation was lost while
Redis was unreachable, the cache is not read until the API's whole part of the namespace has
been dropped, which the ping does as soon as Redis answers, since some entries may be stale.
The drop keeps every fence, and first raises a fence over the whole namespace
(``<prefix>all:inv``) to the position of the latest invalidation that was lost: a read older
than that may have come from a replica that had not replayed the write, so its fill is
refused for every key, as a key's own fence would have refused it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from geo_common.breaker import Breaker, CircuitOpen
from location_api.cells import Cell, cells_containing
from location_api.models import Business
from location_api.queries import Candidate
from pubsub.redis_py import open_redis

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Set each key to its value unless the read (ARGV[1]) is older than the key's fence or the
#: fence over the whole namespace (ARGV[3], raised when the cache was dropped).
_FILL_SCRIPT = """
local read_lsn = tonumber(ARGV[1])
local all = redis.call('GET', ARGV[3])
if all and tonumber(all) > read_lsn then
  return 0
end
local filled = 0
for i, key in ipairs(KEYS) do
  local fence = redis.call('GET', key .. ':inv')
  if not fence or tonumber(fence) <= read_lsn then
    redis.call('SET', key, ARGV[i + 3], 'EX', ARGV[2])
    filled = filled + 1
  end
end
return filled
"""

#: Delete each key and raise its fence to the write's position (ARGV[1]), never lower it.
_INVALIDATE_SCRIPT = """
local lsn = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  redis.call('DEL', key)
  local fence = redis.call('GET', key .. ':inv')
  if not fence or tonumber(fence) < lsn then
    redis.call('SET', key .. ':inv', ARGV[1], 'EX', ARGV[2])
  end
end
return #KEYS
"""

#: A cell with more businesses than this is not cached: its entry would be large and
#: invalidated by every write near it.
MAX_CELL_ENTRIES = 5_000
_CONNECT_TIMEOUT_S = 0.25
_COMMAND_TIMEOUT_S = 0.5
_CACHE_ERRORS = (RedisError, OSError)


def _restore_cancellation() -> None:
    """Raise the cancellation a Redis command may have lost.

    redis-py (8.x) can complete a command after its task was cancelled and return normally,
    so the task would carry on as if never asked to stop (and a shutdown would wait for it
    forever). Called after every command.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Cache:
    """The API's Redis cache; every method degrades to "miss" or "no-op" when Redis is down.

    Args:
        url: the Redis URL (``Settings.redis_url``).
        namespace: prefix of every key (``Settings.redis_namespace``).
        ttl_s: lifetime of every entry, seconds.
        breaker: the circuit breaker of every command (default: 5 failures, 2 s cool-down).
        tls_ca: the CA bundle a ``rediss://`` server is checked against (``GEO_REDIS_TLS_CA``;
            empty or None: the system's). User and password come from the URL.
    """

    def __init__(
        self, url: str, namespace: str, ttl_s: int, *, breaker: Breaker | None = None, tls_ca: str | None = None
    ) -> None:
        # Fail fast: no retries and short timeouts, so a dead Redis costs a request
        # milliseconds, not seconds; the health loop is what brings the cache back.
        self._redis = open_redis(
            url,
            tls_ca=tls_ca,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_COMMAND_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        self._prefix = f"{namespace}:api:"
        self._ttl_s = ttl_s
        self._fill = self._redis.register_script(_FILL_SCRIPT)
        self._invalidate = self._redis.register_script(_INVALIDATE_SCRIPT)
        self.breaker = breaker or Breaker("redis-cache", failures=5, reset_s=2.0)
        #: Whether Redis answered the last command or ping.
        self.up = True
        self._flush_pending = False
        #: The position of the latest invalidation that could not be sent.
        self._lost_lsn = 0
        self._all_key = f"{self._prefix}all"
        #: Lookups by kind (``business``, ``cell``) and outcome, for /metrics.
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        #: Commands that failed.
        self.errors = 0

    async def close(self) -> None:
        """Close the connections."""
        await self._redis.aclose()

    # ----------------------------------------------------------------- plumbing
    def _down(self, exc: BaseException) -> None:
        self.errors += 1
        if self.up:
            log.warning("Redis is unavailable, serving from the database: %s", exc)
        self.up = False

    async def _run(self, command: Callable[[], Awaitable[T]], default: T) -> T:
        if self._flush_pending:
            return default  # entries may be stale until the ping has dropped them
        return await self._guarded(command, default)

    async def _guarded(self, command: Callable[[], Awaitable[T]], default: T) -> T:
        """Run a command through the breaker; ``default`` when it refuses or Redis fails.
        Whether Redis answered is recorded in :attr:`up`."""
        try:
            with self.breaker.guard(_CACHE_ERRORS):
                result = await command()
        except CircuitOpen:
            return default
        except _CACHE_ERRORS as exc:
            _restore_cancellation()
            self._down(exc)
            return default
        _restore_cancellation()
        self.up = True
        return result

    def _business_key(self, business_id: int) -> str:
        return f"{self._prefix}biz:{business_id}"

    def _detail_key(self, business_id: int) -> str:
        # detail2: rows with more_categories (the first format had none)
        return f"{self._prefix}detail2:{business_id}"

    def _cell_key(self, cell: Cell) -> str:
        # cell2: candidates with what filters read (the first format held four fields)
        return f"{self._prefix}cell2:{cell.bits}:{cell.code}"

    # ----------------------------------------------------------------- businesses
    async def get_businesses(self, ids: Sequence[int]) -> dict[int, Business]:
        """The cached businesses among ``ids`` (a missing id is a miss, not an absence)."""
        if not ids:
            return {}
        values = await self._run(lambda: self._redis.mget([self._business_key(i) for i in ids]), None)
        if values is None:
            self.misses["business"] += len(ids)
            return {}
        found: dict[int, Business] = {}
        for business_id, value in zip(ids, values):
            if value is None:
                continue
            name, lat, lon, category, address = orjson.loads(value)
            found[business_id] = Business(business_id, name, lat, lon, category, address)
        self.hits["business"] += len(found)
        self.misses["business"] += len(ids) - len(found)
        return found

    async def put_businesses(self, businesses: Iterable[Business], read_lsn: int) -> None:
        """Cache businesses read from the database at ``read_lsn`` (see the module's fences)."""
        entries = {
            self._business_key(b.id): orjson.dumps([b.name, b.latitude, b.longitude, b.category, b.address])
            for b in businesses
        }
        await self._put(entries, read_lsn)

    async def _put(self, entries: dict[str, bytes], read_lsn: int) -> None:
        if entries:
            args: list[int | str | bytes] = [read_lsn, self._ttl_s, f"{self._all_key}:inv", *entries.values()]
            await self._run(lambda: self._fill(keys=list(entries), args=args), None)

    # ----------------------------------------------------------------- details
    async def get_detail(self, business_id: int) -> list[Any] | None:
        """A business's cached detail row (:func:`location_api.queries.get_detail_row`), or
        ``None``: a miss."""
        value = await self._run(lambda: self._redis.get(self._detail_key(business_id)), None)
        if value is None:
            self.misses["detail"] += 1
            return None
        self.hits["detail"] += 1
        row: list[Any] = orjson.loads(value)
        return row

    async def put_detail(self, business_id: int, row: Sequence[Any], read_lsn: int) -> None:
        """Cache a detail row read from the database at ``read_lsn`` (see the module's fences)."""
        await self._put({self._detail_key(business_id): orjson.dumps(list(row))}, read_lsn)

    # ----------------------------------------------------------------- cells
    async def get_cells(self, cells: Sequence[Cell]) -> dict[Cell, list[Candidate]]:
        """The cached candidate lists of these cells (missing cells are misses)."""
        if not cells:
            return {}
        values = await self._run(lambda: self._redis.mget([self._cell_key(c) for c in cells]), None)
        if values is None:
            self.misses["cell"] += len(cells)
            return {}
        found: dict[Cell, list[Candidate]] = {}
        for cell, value in zip(cells, values):
            if value is not None:
                found[cell] = [tuple(c) for c in orjson.loads(value)]
        self.hits["cell"] += len(found)
        self.misses["cell"] += len(cells) - len(found)
        return found

    async def put_cells(self, cells: dict[Cell, list[Candidate]], read_lsn: int) -> None:
        """Cache cells' candidate lists read from the database at ``read_lsn`` (the large ones
        are skipped)."""
        entries = {
            self._cell_key(cell): orjson.dumps(candidates)
            for cell, candidates in cells.items()
            if len(candidates) <= MAX_CELL_ENTRIES
        }
        await self._put(entries, read_lsn)

    # ----------------------------------------------------------------- invalidation
    async def invalidate(self, business_id: int, geohashes: Iterable[str], lsn: int) -> None:
        """Delete a business's entries (the business and its detail) and the entries of every
        cell holding these positions, and fence them at ``lsn``.

        Args:
            business_id: the business written.
            geohashes: its stored geohash before and after the write (either may be absent).
            lsn: a WAL position at or after the write's commit.
        """
        keys = {self._business_key(business_id), self._detail_key(business_id)}
        for text in geohashes:
            keys.update(self._cell_key(cell) for cell in cells_containing(text))
        await self._or_drop_later(lambda: self._invalidate(keys=sorted(keys), args=[lsn, self._ttl_s]), lsn)

    async def drop_all(self, lsn: int) -> None:
        """Drop every entry, refusing fills read before ``lsn`` (:meth:`flush`); when Redis
        cannot take it now, as soon as it answers again, before the cache is read.

        For writes that invalidated nothing themselves (a bulk load, a TRUNCATE).
        """
        await self._or_drop_later(lambda: self.flush(lsn), lsn)

    async def _or_drop_later(self, remove: Callable[[], Awaitable[object]], lsn: int) -> None:
        """Run a command that removes entries made stale by writes up to ``lsn``. If Redis
        cannot take it, the cache is not read again until every entry has been dropped and
        fills read before ``lsn`` are refused (:meth:`check` does both when Redis answers)."""
        if not self._flush_pending:
            try:
                with self.breaker.guard(_CACHE_ERRORS):
                    await remove()
                    return
            except CircuitOpen:
                pass
            except _CACHE_ERRORS as exc:
                _restore_cancellation()
                self._down(exc)
            finally:
                _restore_cancellation()
        self._flush_pending = True
        self._lost_lsn = max(self._lost_lsn, lsn)

    async def flush(self, fence_lsn: int = 0) -> int:
        """Delete every entry of the API's part of the namespace; returns how many.

        The fences stay. With ``fence_lsn``, the fence over the whole namespace is first
        raised to it (never lowered): from then on a fill read before that position is
        refused, whatever its key, for as long as an entry lives.

        Args:
            fence_lsn: the WAL position of the writes that invalidated nothing (a lost
                invalidation, a bulk load); 0 for none.
        """
        if fence_lsn > 0:
            await self._invalidate(keys=[self._all_key], args=[fence_lsn, self._ttl_s])
        deleted = 0
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=1000):
            if key.endswith(b":inv"):
                continue
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(await self._redis.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await self._redis.unlink(*batch))
        _restore_cancellation()
        return deleted

    # ----------------------------------------------------------------- health
    async def check(self) -> bool:
        """Ping Redis; on recovery drop entries that may have missed an invalidation.

        While the breaker is open nothing is sent; once its cool-down is over the ping is
        usually the probe that closes it.
        """
        if not self.breaker.would_allow():
            return False
        # False also when another command is probing it right now (the breaker refuses).
        return await self._guarded(self._ping, False)

    async def _ping(self) -> bool:
        await self._redis.ping()
        if self._flush_pending:
            dropped = await self.flush(self._lost_lsn)
            self._flush_pending = False
            log.info(
                "Redis is back; dropped %d cache entries that may be stale (fills read before WAL position %d refused)",
                dropped,
                self._lost_lsn,
            )
        elif not self.up:
            log.info("Redis is back")
        return True

    async def health_loop(self, interval_s: float = 1.0) -> None:
        """Ping forever (a background task; cancel it to stop)."""
        while True:
            started = time.monotonic()
            await self.check()
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
