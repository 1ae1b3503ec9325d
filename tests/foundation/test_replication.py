"""The stack's PostgreSQL: a primary, a streaming replica, PostGIS, and migrations."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from geo_common.migrate import MigrationError, apply_migrations, available_migrations
from geo_common.settings import Settings


async def test_replica_is_in_recovery_and_primary_is_not(settings: Settings) -> None:
    primary = await asyncpg.connect(settings.pg_primary)
    replica = await asyncpg.connect(settings.pg_replicas[0])
    try:
        assert await primary.fetchval("SELECT pg_is_in_recovery()") is False
        assert await replica.fetchval("SELECT pg_is_in_recovery()") is True
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await replica.execute("INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ('x', 0, 0, 's')")
    finally:
        await primary.close()
        await replica.close()


async def test_row_written_on_primary_is_on_replica_within_a_second(settings: Settings) -> None:
    primary = await asyncpg.connect(settings.pg_primary)
    replica = await asyncpg.connect(settings.pg_replicas[0])
    try:
        row_id = await primary.fetchval(
            "INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ('Replica check', 78.22, 15.65, 'u') RETURNING id"
        )
        written = time.monotonic()
        while True:
            name = await replica.fetchval("SELECT name FROM businesses WHERE id = $1", row_id)
            if name is not None:
                break
            assert time.monotonic() - written < 1.0, "the replica did not show the row within 1 s"
            await asyncio.sleep(0.01)
        assert name == "Replica check"
    finally:
        await primary.close()
        await replica.close()


async def test_postgis_is_available_on_both(settings: Settings, stack_env: dict[str, str]) -> None:
    # PostGIS is created in the stack's own `geo` database, the peer the search benchmarks use.
    base = Settings.from_env(stack_env)
    for dsn in (base.pg_primary, *base.pg_replicas):
        conn = await asyncpg.connect(dsn)
        try:
            metres = await conn.fetchval(
                "SELECT ST_Distance('SRID=4326;POINT(0 0)'::geography, 'SRID=4326;POINT(1 0)'::geography, false)"
            )
        finally:
            await conn.close()
        assert metres == pytest.approx(111_195.08, abs=0.5)


async def test_migrations_are_applied_once_and_recorded(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [m.version for m in available_migrations()]
        assert await apply_migrations(settings.pg_primary) == []
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_each_file_once(empty_database: str) -> None:
    results = await asyncio.gather(*(apply_migrations(empty_database) for _ in range(3)))
    assert sorted(len(r) for r in results) == [0, 0, len(available_migrations())]


async def test_an_edited_migration_is_refused(empty_database: str) -> None:
    await apply_migrations(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'changed' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="edited"):
        await apply_migrations(empty_database)
