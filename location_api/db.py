"""PostgreSQL: which server answers each query, and whether each one is up.

Writes go to the primary. Reads go round-robin to the replicas that passed their last health
check, and to the primary when none did. A read that carries a consistency token (the
primary's WAL position after a write) is served only by a replica that has replayed at least
that far (``pg_last_wal_replay_lsn()``), else by the primary, so a client always reads its
own writes; a token the primary has not reached either is refused (400,
:class:`~location_api.consistency.AheadOfPrimary`). Health is re-checked in the background
every second; a replica that fails a query is taken out of rotation at once, and the query is
retried on the next candidate.

Every server also has a circuit breaker (:mod:`geo_common.breaker`): after
``GEO_BREAKER_FAILURES`` consecutive connection failures it opens, and for
``GEO_BREAKER_RESET_S`` nothing is sent to that server, health checks included. A replica whose
breaker is open is skipped; a call to a primary whose breaker is open fails at once with
:class:`DatabaseUnavailable` (503, ``Retry-After`` = the remaining cool-down). Then one call,
a request or the health check, probes the server and closes the breaker if it answers. The
primary may be several hosts with ``target_session_attrs=read-write`` (asyncpg then connects
to whichever is writable), so after a failover new connections find the promoted server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg

from geo_common.breaker import Breaker, CircuitOpen
from geo_common.settings import Settings
from location_api.consistency import AheadOfPrimary, lsn_from_text
from location_api.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Query = Callable[[asyncpg.Connection], Awaitable[T]]

#: Errors that mean "this server cannot answer now", as opposed to a bug in a query.
CONNECTIVITY_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError is an OSError too
    asyncpg.PostgresConnectionError,  # class 08, including a connection lost mid-query
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.InterfaceError,  # the connection was closed under us
    # A server that shut down sends its idle connections an error they only notice on
    # their next query, which asyncpg then refuses with this.
    asyncpg.exceptions.InternalClientError,
)
#: On a replica a query can also be cancelled by a conflict with WAL replay; another
#: server can answer it.
REPLICA_RETRY_ERRORS: tuple[type[Exception], ...] = (*CONNECTIVITY_ERRORS, asyncpg.exceptions.SerializationError)

#: What a server has made visible, as an LSN: replayed WAL on a replica, written WAL on a primary.
VISIBLE_LSN_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text"
)
_REPLICA_PROBE_SQL = """
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
       CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0.0)::float8 END
"""

_ACQUIRE_TIMEOUT_S = 2.0
_CONNECT_TIMEOUT_S = 2.0
_COMMAND_TIMEOUT_S = 15.0
# Generous: an index rebuild in an executor thread competes for the GIL with the loop.
_PROBE_TIMEOUT_S = 3.0
_POOL_MAX = 10


@dataclass(eq=False)
class Node:
    """One PostgreSQL server and what the last health check or query learnt about it.

    Attributes:
        name: ``primary`` or ``replica-N`` (metrics labels and /readyz).
        address: host:port, for logs and /readyz.
        pool: its connection pool (connections open on demand).
        is_primary: True for the primary.
        breaker: its circuit breaker (named ``postgres-<name>`` in metrics).
        healthy: passed the last check and no query failed since.
        visible_lsn: WAL position it had made visible at the last check (0: unknown).
        lag_bytes: replica only: how far its replay trails the primary's WAL, bytes.
        lag_seconds: replica only: age of the last replayed transaction while behind, seconds.
    """

    name: str
    address: str
    pool: asyncpg.Pool
    is_primary: bool
    breaker: Breaker
    healthy: bool = False
    visible_lsn: int = 0
    lag_bytes: float = math.nan
    lag_seconds: float = math.nan


async def _create_pool(dsn: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,  # a server that is down at start-up must not stop the API from starting
        max_size=_POOL_MAX,
        timeout=_CONNECT_TIMEOUT_S,
        command_timeout=_COMMAND_TIMEOUT_S,
        max_inactive_connection_lifetime=60.0,
        # Short OLTP queries: JIT compilation would cost more than it saves.
        server_settings={"application_name": "geo-api", "jit": "off"},
    )
    assert pool is not None  # create_pool returns a pool unless given a loop-less setup
    return pool


def _address(dsn: str) -> str:
    hosts = urlsplit(dsn).netloc.rpartition("@")[2]
    return ",".join(h if ":" in h else f"{h}:5432" for h in hosts.split(","))


def _fast_failed(node: Node, exc: CircuitOpen, what: str) -> DatabaseUnavailable:
    """The 503 for a call its breaker refused: retry once the cool-down is over."""
    return DatabaseUnavailable(
        f"{what}; the {node.name} database is failing and is not called for {exc.retry_after_s:.1f} s",
        retry_after_s=max(1, math.ceil(exc.retry_after_s)),
    )


class Database:
    """The primary and the replicas, with read routing and health checks.

    Use :meth:`open` to create it and :meth:`close` to release its pools.
    """

    def __init__(self, primary: Node, replicas: list[Node]) -> None:
        self.primary = primary
        self.replicas = replicas
        self._next = 0
        #: Queries answered, by server name (exported as a metric).
        self.reads: Counter[str] = Counter()

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        """Create the pools and run a first health check (no server needs to be up).

        Args:
            settings: ``pg_primary`` and ``pg_replicas`` are used.

        Returns:
            The database.
        """

        def breaker(name: str) -> Breaker:
            return Breaker(f"postgres-{name}", failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)

        primary = Node(
            "primary", _address(settings.pg_primary), await _create_pool(settings.pg_primary), True, breaker("primary")
        )
        replicas = [
            Node(f"replica-{i}", _address(dsn), await _create_pool(dsn), False, breaker(f"replica-{i}"))
            for i, dsn in enumerate(settings.pg_replicas, start=1)
        ]
        db = cls(primary, replicas)
        await db.check_health()
        return db

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
        node = self.primary
        try:
            with node.breaker.guard(CONNECTIVITY_ERRORS):
                async with node.pool.acquire(timeout=_ACQUIRE_TIMEOUT_S) as conn:
                    result = await query(conn)
        except CircuitOpen as exc:  # first: a CircuitOpen is a ConnectionError too
            raise _fast_failed(node, exc, "writes are refused") from exc
        except CONNECTIVITY_ERRORS as exc:
            await self._mark_down(node, exc)
            raise DatabaseUnavailable("the primary database is unreachable; retry shortly") from exc
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
                try:
                    with node.breaker.guard(CONNECTIVITY_ERRORS):
                        async with node.pool.acquire(timeout=_ACQUIRE_TIMEOUT_S) as conn:
                            if min_lsn is not None and node.visible_lsn < min_lsn:
                                # No replica has the token, nor had the primary at its last
                                # check: it must have it now, or the token is not of this
                                # database's history (issued before a failover that lost it).
                                node.visible_lsn = lsn_from_text(await conn.fetchval(VISIBLE_LSN_SQL))
                                if node.visible_lsn < min_lsn:
                                    raise AheadOfPrimary(min_lsn, node.visible_lsn)
                            result = await query(conn)
                except CircuitOpen as exc:
                    raise _fast_failed(node, exc, "no replica could answer") from exc
                except CONNECTIVITY_ERRORS as exc:
                    await self._mark_down(node, exc)
                    raise DatabaseUnavailable("no database is reachable; retry shortly") from exc
                self.reads[node.name] += 1
                return result
            try:
                # A replay conflict (SerializationError) is retried elsewhere but is no sign
                # of a failing server: only connection errors count against the breaker.
                with node.breaker.guard(CONNECTIVITY_ERRORS):
                    async with node.pool.acquire(timeout=_ACQUIRE_TIMEOUT_S) as conn:
                        if min_lsn is not None and node.visible_lsn < min_lsn:
                            # The last check is too old to tell; ask. The query's snapshot is
                            # taken after this answer, so it sees everything replayed by then.
                            node.visible_lsn = lsn_from_text(await conn.fetchval(VISIBLE_LSN_SQL))
                            if node.visible_lsn < min_lsn:
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

        Used by the index refresher, which must know which server it reads from.

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
                conn = await node.pool.acquire(timeout=_ACQUIRE_TIMEOUT_S)
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
                        lsn_text, lag_seconds = await conn.fetchrow(_REPLICA_PROBE_SQL)
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
