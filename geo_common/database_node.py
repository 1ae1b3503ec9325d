"""One PostgreSQL server of :class:`geo_common.database.Database`: its pool, breaker and health.

Also what the routing needs to know about PostgreSQL itself: which errors mean a server cannot
answer now (as opposed to a bug in a query), and how WAL positions (LSNs) are read and written.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from geo_common.breaker import Breaker

#: Errors that mean "this server cannot answer now", as opposed to a bug in a query.
CONNECTIVITY_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError is an OSError too
    asyncpg.PostgresConnectionError,  # class 08, including a connection lost mid-query
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.InterfaceError,  # the connection was closed under us
    # A server that shut down sends its idle connections an error they only notice on
    # their next query, which asyncpg then refuses with this; so does a multi-host primary
    # none of whose hosts is writable (during a failover).
    asyncpg.exceptions.InternalClientError,
)
#: On a replica a query can also be cancelled by a conflict with WAL replay; another
#: server can answer it.
REPLICA_RETRY_ERRORS: tuple[type[Exception], ...] = (*CONNECTIVITY_ERRORS, asyncpg.exceptions.SerializationError)

#: What a server has made visible, as an LSN: replayed WAL on a replica, written WAL on a primary.
VISIBLE_LSN_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text"
)
#: The health check: the visible LSN, and how old the last replayed transaction is while a
#: replica is behind (0 on a primary or a replica that has caught up), seconds.
PROBE_SQL = """
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
       CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0.0)::float8 END
"""


def format_lsn(lsn: int) -> str:
    """Write an LSN the way PostgreSQL does (``16/B374D848``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_from_text(text: str) -> int:
    """Read an LSN as PostgreSQL prints it (``16/B374D848``)."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How a service's connection pools are sized and how long they wait; one per service.

    Attributes:
        application_name: reported to PostgreSQL (``pg_stat_activity``): ``geo-api``, ``geo-friends``.
        max_size: connections per server at most.
        connect_timeout_s: to open a connection, seconds.
        acquire_timeout_s: to wait for a free connection, seconds; None waits as long as it takes.
        command_timeout_s: for one statement, seconds.
    """

    application_name: str
    max_size: int = 10
    connect_timeout_s: float = 2.0
    acquire_timeout_s: float | None = 2.0
    command_timeout_s: float = 15.0


async def create_pool(dsn: str, options: PoolOptions) -> asyncpg.Pool:
    """A pool whose connections open on demand: a server down at start-up stops no service.

    Args:
        dsn: the server's (or a multi-host primary's) connection string.
        options: sizes and timeouts.

    Returns:
        The pool (no connection opened yet).
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=options.max_size,
        timeout=options.connect_timeout_s,
        command_timeout=options.command_timeout_s,
        max_inactive_connection_lifetime=60.0,
        # Short OLTP queries: JIT compilation would cost more than it saves.
        server_settings={"application_name": options.application_name, "jit": "off"},
    )
    if pool is None:  # create_pool returns a pool unless given a loop-less setup
        raise RuntimeError(f"asyncpg created no pool for {address(dsn)}")
    return pool


def address(dsn: str) -> str:
    """The ``host:port`` list of a connection string, for logs and readiness (no credentials)."""
    hosts = urlsplit(dsn).netloc.rpartition("@")[2]
    return ",".join(h if ":" in h else f"{h}:5432" for h in hosts.split(","))


@dataclass(eq=False)
class Node:
    """One PostgreSQL server and what the last health check or query learnt about it.

    Attributes:
        name: ``primary`` or ``replica-N`` (metrics labels and readiness).
        address: host:port, for logs and readiness.
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


async def replicas_replayed(primary_dsn: str, replica_dsns: Sequence[str], timeout_s: float | None = None) -> None:
    """Wait until every replica has replayed what the primary has written so far (after a
    bulk load, before reading it from the replicas).

    Args:
        primary_dsn: the primary.
        replica_dsns: the replicas.
        timeout_s: give up after this long; ``None``: wait as long as it takes.

    Raises:
        TimeoutError: a replica had not replayed it within ``timeout_s``.
    """
    conn = await asyncpg.connect(primary_dsn)
    try:
        lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await conn.close()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for dsn in replica_dsns:
        conn = await asyncpg.connect(dsn)
        try:
            while not await conn.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"replica {address(dsn)} has not replayed {lsn} in {timeout_s:g} s")
                await asyncio.sleep(0.01)
        finally:
            await conn.close()
