"""PostgreSQL pools of the friends tier: writes on the primary, reads on a replica.

Reads try the replicas in turn and fall back to the primary when none answers; the friend
graph tolerates the few milliseconds a replica trails (a friendship made in that window
reaches live connections through the control channel anyway).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from geo_common.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
           asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError)


class DatabaseUnavailable(ConnectionError):
    """No server could answer."""


async def _pool(dsn: str, *, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=0, max_size=max_size, timeout=5.0, command_timeout=15.0,
        server_settings={"application_name": "geo-friends", "jit": "off"},
    )
    assert pool is not None
    return pool


class Database:
    """The primary's pool and the replicas' pools. Create with :meth:`open`."""

    def __init__(self, primary: asyncpg.Pool, replicas: list[asyncpg.Pool]) -> None:
        self.primary = primary
        self.replicas = replicas
        self._turn = itertools.count()

    @classmethod
    async def open(cls, settings: Settings, *, max_size: int = 10) -> Database:
        """Create the pools (connections open on demand, so no server must be up yet)."""
        primary = await _pool(settings.pg_primary, max_size=max_size)
        replicas = [await _pool(dsn, max_size=max_size) for dsn in settings.pg_replicas]
        return cls(primary, replicas)

    async def close(self) -> None:
        for pool in (self.primary, *self.replicas):
            await pool.close()

    async def read(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a read-only query on a replica (round robin), else on the primary.

        Raises:
            DatabaseUnavailable: no server answered.
        """
        if self.replicas:
            start = next(self._turn) % len(self.replicas)
            for pool in self.replicas[start:] + self.replicas[:start]:
                try:
                    async with pool.acquire() as conn:
                        return await query(conn)
                except _ERRORS as exc:
                    log.warning("replica unavailable (%s); trying the next server", exc)
        return await self.write(query)

    async def write(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a query on the primary.

        Raises:
            DatabaseUnavailable: the primary did not answer.
        """
        try:
            async with self.primary.acquire() as conn:
                return await query(conn)
        except _ERRORS as exc:
            raise DatabaseUnavailable(f"the primary database is unavailable: {exc}") from exc
