"""PostgreSQL pools of the friends tier: writes on the primary, reads on a replica.

Reads try the replicas in turn and fall back to the primary when none answers. What decides
what a user may see (their sharing switch, what each friend shares with them) is read on the
primary instead (:meth:`Database.read_primary`): a replica that trails must not show again
what the user or a friend just withdrew. Every server has a circuit
breaker (:mod:`geo_common.breaker`): a replica whose breaker is open is skipped, and a call to
the primary while its breaker is open fails at once with :class:`DatabaseUnavailable`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from geo_common.breaker import Breaker, CircuitOpen
from geo_common.settings import Settings

log = logging.getLogger(__name__)

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
    """No server could answer."""


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


def _breakers(replicas: int, *, failures: int = 5, reset_s: float = 2.0) -> list[Breaker]:
    names = ["postgres-primary", *(f"postgres-replica-{i}" for i in range(1, replicas + 1))]
    return [Breaker(name, failures=failures, reset_s=reset_s) for name in names]


class Database:
    """The primary's pool and the replicas' pools, each with its breaker. Create with :meth:`open`."""

    def __init__(
        self, primary: asyncpg.Pool, replicas: list[asyncpg.Pool], *, breakers: list[Breaker] | None = None
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        #: The primary's breaker, then one per replica.
        self.breakers = breakers or _breakers(len(replicas))
        self._turn = itertools.count()

    @classmethod
    async def open(cls, settings: Settings, *, max_size: int = 10) -> Database:
        """Create the pools (connections open on demand, so no server must be up yet)."""
        primary = await _pool(settings.pg_primary, max_size=max_size)
        replicas = [await _pool(dsn, max_size=max_size) for dsn in settings.pg_replicas]
        breakers = _breakers(len(replicas), failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)
        return cls(primary, replicas, breakers=breakers)

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
            order = list(zip(self.replicas, self.breakers[1:]))
            for pool, breaker in order[start:] + order[:start]:
                try:
                    with breaker.guard(_ERRORS):
                        async with pool.acquire() as conn:
                            return await query(conn)
                except CircuitOpen:
                    continue  # skipped without trying
                except _ERRORS as exc:
                    log.warning("replica unavailable (%s); trying the next server", exc)
        return await self._on_primary(query)

    async def write(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a query that writes, on the primary.

        Raises:
            DatabaseUnavailable: the primary did not answer.
        """
        return await self._on_primary(query)

    async def read_primary(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a read that must see every committed change (privacy decisions), on the primary.

        Raises:
            DatabaseUnavailable: the primary did not answer.
        """
        return await self._on_primary(query)

    async def _on_primary(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        try:
            with self.breakers[0].guard(_ERRORS):
                async with self.primary.acquire() as conn:
                    return await query(conn)
        except CircuitOpen as exc:  # first: a CircuitOpen is a ConnectionError too
            raise DatabaseUnavailable(str(exc)) from exc
        except _ERRORS as exc:
            raise DatabaseUnavailable(f"the primary database is unavailable: {exc}") from exc
