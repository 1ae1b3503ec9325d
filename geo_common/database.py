"""PostgreSQL for both services: which server answers each query, and whether each one is up.

Writes go to the primary, and so do reads that must see every committed change
(:meth:`Database.read_primary`: geo-friends reads what a user may see there, as a replica that
trails could show again what the user just withdrew). Other reads (:meth:`Database.read`) go
round-robin to the replicas that passed their last health check, and to the primary when none
did. A read that carries a consistency token (the primary's WAL position after a write) is
served only by a replica that has replayed at least that far (``pg_last_wal_replay_lsn()``),
else by the primary, so a client always reads its own writes; a token the primary has not
reached either is refused with :class:`AheadOfPrimary`. Health is re-checked in the background
(:meth:`Database.health_loop`); a replica that fails a query is taken out of rotation at once,
and the query is retried on the next candidate.

Every server also has a circuit breaker (:mod:`geo_common.breaker`): after
``GEO_BREAKER_FAILURES`` consecutive connection failures it opens, and for
``GEO_BREAKER_RESET_S`` nothing is sent to that server, health checks included. A replica whose
breaker is open is skipped; a call to a primary whose breaker is open fails at once with
:class:`DatabaseUnavailable` (whose ``retry_after_s`` is the remaining cool-down). Then one
call, a query or the health check, probes the server and closes the breaker if it answers. The
primary may be several hosts with ``target_session_attrs=read-write`` (asyncpg then connects
to whichever is writable), so after a failover new connections find the promoted server.

A service that reads only on the primary opens the database with ``replicas=False``: no
replica pool, and no health check at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg

from geo_common.breaker import Breaker, CircuitOpen
from geo_common.database_node import (
    CONNECTIVITY_ERRORS,
    PROBE_SQL,
    REPLICA_RETRY_ERRORS,
    VISIBLE_LSN_SQL,
    Node,
    PoolOptions,
    address,
    create_pool,
    format_lsn,
    lsn_from_text,
)
from geo_common.settings import Settings

__all__ = ["AheadOfPrimary", "Database", "DatabaseError", "DatabaseUnavailable", "Node", "PoolOptions", "Query"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Query = Callable[[asyncpg.Connection], Awaitable[T]]

# Generous: an index rebuild in an executor thread competes for the GIL with the loop.
_PROBE_TIMEOUT_S = 3.0


class DatabaseError(Exception):
    """Base of the errors :class:`Database` raises itself (a query's own errors pass through)."""


class DatabaseUnavailable(DatabaseError, ConnectionError):
    """No server that could answer is reachable, or its breaker is open.

    Attributes:
        retry_after_s: when a retry may succeed, whole seconds (geo-api's ``Retry-After``).
    """

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class AheadOfPrimary(DatabaseError, ValueError):
    """A read's ``min_lsn`` names a WAL position the primary has not reached.

    The token was issued before a failover to a replica that had not received the write
    (which is then lost), or by another deployment.

    Attributes:
        lsn: the position asked for.
        primary_lsn: the primary's position when asked.
    """

    def __init__(self, lsn: int, primary_lsn: int) -> None:
        super().__init__(f"WAL position {format_lsn(lsn)} is ahead of the primary's {format_lsn(primary_lsn)}")
        self.lsn = lsn
        self.primary_lsn = primary_lsn


def _fast_failed(node: Node, exc: CircuitOpen, what: str) -> DatabaseUnavailable:
    """The error of a call its breaker refused: retry once the cool-down is over."""
    return DatabaseUnavailable(
        f"{what}; the {node.name} database is failing and is not called for {exc.retry_after_s:.1f} s",
        retry_after_s=max(1, math.ceil(exc.retry_after_s)),
    )


async def _has_reached(node: Node, conn: asyncpg.Connection, min_lsn: int) -> bool:
    """Whether ``node`` has made the WAL position ``min_lsn`` visible. When its last check is
    too old to tell, it is asked; a query's snapshot taken after this answer sees everything
    replayed by then."""
    if node.visible_lsn < min_lsn:
        node.visible_lsn = lsn_from_text(await conn.fetchval(VISIBLE_LSN_SQL))
    return node.visible_lsn >= min_lsn


class Database:
    """The primary and the replicas, with read routing and health checks.

    Use :meth:`open` to create it and :meth:`close` to release its pools.

    Args:
        primary: the primary (``is_primary``).
        replicas: the read replicas (may be empty).
        acquire_timeout_s: how long a query waits for a free connection, seconds; None: as
            long as it takes.
    """

    def __init__(self, primary: Node, replicas: list[Node], *, acquire_timeout_s: float | None = 2.0) -> None:
        self.primary = primary
        self.replicas = replicas
        self._acquire_timeout_s = acquire_timeout_s
        self._next = 0
        #: Queries answered, by server name (exported as a metric).
        self.reads: Counter[str] = Counter()

    @classmethod
    async def open(cls, settings: Settings, *, pool: PoolOptions, replicas: bool = True) -> Database:
        """Create the pools (no server needs to be up) and, with replicas, check every server once.

        Args:
            settings: ``pg_primary``, ``pg_replicas`` (unless ``replicas`` is false) and the
                breakers' ``breaker_failures`` and ``breaker_reset_s`` are used.
            pool: the service's pool sizes and timeouts (one pool per server).
            replicas: False for a service that reads only on the primary: the replicas are
                not opened, and nothing is sent to the primary before the first query.

        Returns:
            The database.
        """

        def breaker(name: str) -> Breaker:
            return Breaker(f"postgres-{name}", failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)

        primary_dsn = settings.pg_primary
        primary = Node("primary", address(primary_dsn), await create_pool(primary_dsn, pool), True, breaker("primary"))
        nodes = [
            Node(f"replica-{i}", address(dsn), await create_pool(dsn, pool), False, breaker(f"replica-{i}"))
            for i, dsn in enumerate(settings.pg_replicas if replicas else (), start=1)
        ]
        db = cls(primary, nodes, acquire_timeout_s=pool.acquire_timeout_s)
        if replicas:
            await db.check_health()
        return db

    @property
    def breakers(self) -> list[Breaker]:
        """Every server's breaker, the primary's first (for metrics)."""
        return [node.breaker for node in (self.primary, *self.replicas)]

    async def close(self) -> None:
        """Close every pool (waiting for connections in use to come back)."""
        for node in (self.primary, *self.replicas):
            try:
                await asyncio.wait_for(node.pool.close(), timeout=10)
            except CONNECTIVITY_ERRORS:  # TimeoutError included: it is an OSError
                node.pool.terminate()

    # ----------------------------------------------------------------- routing
    async def _mark_down(self, node: Node, exc: BaseException) -> None:
        if node.healthy:
            log.warning("PostgreSQL %s (%s) is unavailable: %s", node.name, node.address, exc)
        node.healthy = False
        node.visible_lsn = 0
        # Connections to a restarted server are dead; do not hand them out again.
        await node.pool.expire_connections()

    async def write(self, query: Query[T]) -> T:
        """Run a query on the primary.

        Args:
            query: called with a connection; runs statements and returns a result.

        Returns:
            What ``query`` returned.

        Raises:
            DatabaseUnavailable: the primary cannot be reached, or its breaker is open.
        """
        return await self._on_primary(query, "writes are refused")

    async def read_primary(self, query: Query[T]) -> T:
        """Run a read on the primary: one that must see every committed change.

        Args:
            query: called with a connection; must only read.

        Returns:
            What ``query`` returned.

        Raises:
            DatabaseUnavailable: the primary cannot be reached, or its breaker is open.
        """
        return await self._on_primary(query, "reads on the primary are refused")

    async def _on_primary(
        self,
        query: Query[T],
        refused: str,
        *,
        unreachable: str = "the primary database is unreachable",
        min_lsn: int | None = None,
    ) -> T:
        node = self.primary
        try:
            with node.breaker.guard(CONNECTIVITY_ERRORS):
                async with node.pool.acquire(timeout=self._acquire_timeout_s) as conn:
                    # When read() falls back to it: no replica has the token, nor had the
                    # primary at its last check. It must have it now, or the token is not of
                    # this database's history (issued before a failover that lost it).
                    if min_lsn is not None and not await _has_reached(node, conn, min_lsn):
                        raise AheadOfPrimary(min_lsn, node.visible_lsn)
                    result = await query(conn)
        except CircuitOpen as exc:  # first: a CircuitOpen is a ConnectionError too
            raise _fast_failed(node, exc, refused) from exc
        except CONNECTIVITY_ERRORS as exc:
            await self._mark_down(node, exc)
            raise DatabaseUnavailable(f"{unreachable}; retry shortly") from exc
        self.reads[node.name] += 1
        return result

    def _candidates(self) -> list[Node]:
        healthy = [r for r in self.replicas if r.healthy]
        if healthy:
            start = self._next % len(healthy)
            self._next += 1
            healthy = healthy[start:] + healthy[:start]
        return [*healthy, self.primary]

    async def read(self, query: Query[T], *, min_lsn: int | None = None) -> T:
        """Run a read-only query on a healthy replica, or on the primary when none can answer.

        Args:
            query: called with a connection; must only read.
            min_lsn: a consistency token: only a server that has made this WAL position
                visible may answer (the primary, unless the token is ahead of it).

        Returns:
            What ``query`` returned.

        Raises:
            DatabaseUnavailable: no replica could answer and the primary is unreachable.
            AheadOfPrimary: no replica has replayed ``min_lsn`` and the primary has not
                reached it either.
        """
        for node in self._candidates():
            if node.is_primary:
                return await self._on_primary(
                    query, "no replica could answer", unreachable="no database is reachable", min_lsn=min_lsn
                )
            try:
                # A replay conflict (SerializationError) is retried elsewhere but is no sign
                # of a failing server: only connection errors count against the breaker.
                with node.breaker.guard(CONNECTIVITY_ERRORS):
                    async with node.pool.acquire(timeout=self._acquire_timeout_s) as conn:
                        if min_lsn is not None and not await _has_reached(node, conn, min_lsn):
                            continue
                        result = await query(conn)
            except CircuitOpen:
                continue  # skipped without trying: the next candidate answers
            except REPLICA_RETRY_ERRORS as exc:
                await self._mark_down(node, exc)
                continue
            self.reads[node.name] += 1
            return result
        raise AssertionError("unreachable: the primary is always the last candidate")

    @contextlib.asynccontextmanager
    async def snapshot(self, *, min_lsn: int | None = None) -> AsyncIterator[tuple[Node, asyncpg.Connection]]:
        """A connection to a read server (chosen as :meth:`read` does), held for several queries.

        Used by geo-api's index refresher, which must know which server it reads from.

        Args:
            min_lsn: only a server that has made this WAL position visible qualifies.

        Yields:
            The server and a connection to it.

        Raises:
            DatabaseUnavailable: no server could be reached.
        """
        chosen: tuple[Node, asyncpg.Connection] | None = None
        for node in self._candidates():
            conn = await self._snapshot_connection(node, min_lsn)
            if conn is not None:
                chosen = (node, conn)
                break
        if chosen is None:
            raise DatabaseUnavailable("no database is reachable; retry shortly")
        node, conn = chosen
        try:
            yield node, conn
        except CONNECTIVITY_ERRORS as exc:
            await self._mark_down(node, exc)
            raise DatabaseUnavailable(f"lost the connection to the {node.name} database") from exc
        finally:
            await node.pool.release(conn)
        self.reads[node.name] += 1

    async def _snapshot_connection(self, node: Node, min_lsn: int | None) -> asyncpg.Connection | None:
        """A connection to ``node`` if it qualifies for :meth:`snapshot`, else None (try the next).

        Getting the connection (and checking its position) is the call its breaker judges.
        """
        try:
            with node.breaker.guard(CONNECTIVITY_ERRORS):
                conn = await node.pool.acquire(timeout=self._acquire_timeout_s)
                try:
                    if not node.is_primary and min_lsn is not None:
                        node.visible_lsn = lsn_from_text(await conn.fetchval(VISIBLE_LSN_SQL))
                        if node.visible_lsn < min_lsn:
                            await node.pool.release(conn)
                            return None
                except BaseException:
                    await node.pool.release(conn)
                    raise
                return conn
        except CircuitOpen:
            return None
        except CONNECTIVITY_ERRORS as exc:
            await self._mark_down(node, exc)
            return None

    # ----------------------------------------------------------------- health
    async def check_health(self) -> None:
        """Probe every server once (each bounded by a timeout) and record the results."""
        await asyncio.gather(self._probe(self.primary), *(self._probe(r) for r in self.replicas))
        for replica in self.replicas:
            if replica.healthy and self.primary.healthy:
                replica.lag_bytes = float(max(0, self.primary.visible_lsn - replica.visible_lsn))
            else:
                replica.lag_bytes = math.nan

    async def _probe(self, node: Node) -> None:
        if not node.breaker.would_allow():
            return  # open: nothing is sent to the server until the cool-down is over
        try:
            # The breaker outside the timeout, so that a probe timing out counts as a failure.
            with node.breaker.guard(CONNECTIVITY_ERRORS):
                async with asyncio.timeout(_PROBE_TIMEOUT_S):
                    async with node.pool.acquire() as conn:
                        lsn_text, lag_seconds = await conn.fetchrow(PROBE_SQL)
        except CircuitOpen:
            return  # another call is probing it right now
        except (*CONNECTIVITY_ERRORS, asyncpg.PostgresError) as exc:
            await self._mark_down(node, exc)
            node.lag_seconds = math.nan
            return
        if not node.healthy:
            log.info("PostgreSQL %s (%s) is available", node.name, node.address)
        node.healthy = True
        node.visible_lsn = lsn_from_text(lsn_text)
        node.lag_seconds = float(lag_seconds)

    async def health_loop(self, interval_s: float = 1.0) -> None:
        """Re-check health forever (run as a background task; cancel it to stop)."""
        while True:
            started = time.monotonic()
            try:
                await self.check_health()
            except Exception:  # a bug here must not stop the checks for good
                log.exception("database health check failed")
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
