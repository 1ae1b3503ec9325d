"""The PostgreSQL primary's pool of the friends tier, under a circuit breaker.

Everything geo-friends reads decides what a user may see (their sharing switch, what each
friend shares with them) and is read on the primary, as everything it writes is written
there: a replica that trails must not show again what the user or a friend just withdrew.
The primary has a circuit breaker (:mod:`geo_common.breaker`): while it is open, a call fails
at once with :class:`DatabaseUnavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from geo_common.breaker import Breaker, CircuitOpen
from geo_common.settings import Settings

T = TypeVar("T")

# InternalClientError: among others, no host of a multi-host primary is writable (failover).
_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.InternalClientError,
)


class DatabaseUnavailable(ConnectionError):
    """The primary could not answer."""


async def _pool(dsn: str, *, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        timeout=5.0,
        command_timeout=15.0,
        server_settings={"application_name": "geo-friends", "jit": "off"},
    )
    assert pool is not None
    return pool


class Database:
    """The primary's pool and its breaker. Create with :meth:`open`."""

    def __init__(self, primary: asyncpg.Pool, *, breaker: Breaker | None = None) -> None:
        self.primary = primary
        self.breaker = breaker or Breaker("postgres-primary", failures=5, reset_s=2.0)

    @property
    def breakers(self) -> list[Breaker]:
        """The breakers to export (the primary's)."""
        return [self.breaker]

    @classmethod
    async def open(cls, settings: Settings, *, max_size: int = 10) -> Database:
        """Create the pool (connections open on demand, so the server need not be up yet)."""
        primary = await _pool(settings.pg_primary, max_size=max_size)
        breaker = Breaker("postgres-primary", failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)
        return cls(primary, breaker=breaker)

    async def close(self) -> None:
        await self.primary.close()

    async def write(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a query that writes.

        Raises:
            DatabaseUnavailable: the primary did not answer.
        """
        return await self._run(query)

    async def read_primary(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a read that must see every committed change (what a user may see).

        Raises:
            DatabaseUnavailable: the primary did not answer.
        """
        return await self._run(query)

    async def _run(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        try:
            with self.breaker.guard(_ERRORS):
                async with self.primary.acquire() as conn:
                    return await query(conn)
        except CircuitOpen as exc:  # first: a CircuitOpen is a ConnectionError too
            raise DatabaseUnavailable(str(exc)) from exc
        except _ERRORS as exc:
            raise DatabaseUnavailable(f"the primary database is unavailable: {exc}") from exc
