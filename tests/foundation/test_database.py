"""The one replicated Database both services use, against the stack's primary and replica."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest

from geo_common.breaker import State
from geo_common.database import AheadOfPrimary, Database, DatabaseUnavailable, PoolOptions
from geo_common.settings import Settings

#: Nothing listens on port 1: connections are refused at once.
DEAD_PG = "postgresql://postgres@127.0.0.1:1/geo"
POOL = PoolOptions("geo-test", max_size=2)


async def _in_recovery(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))


async def test_a_primary_only_database_runs_everything_on_the_primary(settings: Settings) -> None:
    db = await Database.open(settings, pool=PoolOptions("geo-test", acquire_timeout_s=None), replicas=False)
    try:
        assert db.replicas == [] and [b.name for b in db.breakers] == ["postgres-primary"]
        assert not db.primary.healthy  # nothing was sent before the first query
        assert await db.write(_in_recovery) is False
        assert await db.read_primary(_in_recovery) is False
        assert await db.read(_in_recovery) is False
        assert db.reads == {"primary": 3}
    finally:
        await db.close()


async def test_reads_go_to_a_healthy_replica_and_writes_to_the_primary(settings: Settings) -> None:
    db = await Database.open(settings, pool=POOL)
    try:
        assert len(db.replicas) == len(settings.pg_replicas) >= 1
        assert db.primary.healthy and all(r.healthy for r in db.replicas)
        assert [b.name for b in db.breakers] == ["postgres-primary", *(f"postgres-{r.name}" for r in db.replicas)]
        assert await db.read(_in_recovery) is True
        assert await db.write(_in_recovery) is False
        async with db.snapshot() as (node, conn):
            assert not node.is_primary and await _in_recovery(conn)
    finally:
        await db.close()


async def test_a_position_beyond_the_primary_is_refused(settings: Settings) -> None:
    db = await Database.open(settings, pool=POOL)
    try:
        with pytest.raises(AheadOfPrimary) as caught:
            await db.read(_in_recovery, min_lsn=2**62)
        assert isinstance(caught.value, ValueError)
        assert caught.value.lsn == 2**62 and 0 < caught.value.primary_lsn < 2**62
    finally:
        await db.close()


@pytest.mark.parametrize("replicas", [False, True])
async def test_a_dead_primary_fails_then_fails_fast_once_its_breaker_opens(settings: Settings, replicas: bool) -> None:
    dead = replace(settings, pg_primary=DEAD_PG, pg_replicas=(), breaker_failures=2, breaker_reset_s=60.0)
    db = await Database.open(dead, pool=POOL, replicas=replicas)
    try:
        failed = []
        for call in (db.write, db.read_primary, db.read, db.write):
            with pytest.raises(DatabaseUnavailable) as caught:
                await call(_in_recovery)
            failed.append(caught.value)
        assert all(isinstance(exc, ConnectionError) for exc in failed)
        assert db.primary.breaker.state is State.OPEN and not db.primary.healthy
        # Refused by the breaker: come back when the cool-down is over, not in a second.
        assert failed[-1].retry_after_s > 30
    finally:
        await db.close()
