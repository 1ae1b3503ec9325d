"""Databases of the benchmarks' own: created on the local stack's primary, filled with the
demo businesses, and dropped afterwards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import asyncpg

from geo_common.database_node import replicas_replayed
from geo_common.migrate import apply_migrations
from geo_common.settings import Settings
from location_api.demo import load_demo

#: The GeoNames places every data set starts from.
GEONAMES = 144_563


def with_database(dsn: str, database: str) -> str:
    """The same server's DSN for another database."""
    head, _, _ = dsn.rpartition("/")
    return f"{head}/{database}"


async def new_database(base: Settings, name: str) -> Settings:
    """A new, migrated database ``name`` (dropped first if it exists); settings pointing at it."""
    admin = await asyncpg.connect(with_database(base.pg_primary, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    settings = replace(
        base,
        pg_primary=with_database(base.pg_primary, name),
        pg_replicas=tuple(with_database(r, name) for r in base.pg_replicas),
        redis_namespace=f"bench-{name}",
    )
    await apply_migrations(settings.pg_primary)
    return settings


async def create_database(base: Settings, name: str, total: int, say: Callable[[str], None]) -> Settings:
    """:func:`new_database` holding ``total`` businesses (the GeoNames places, then synthetic ones)."""
    settings = await new_database(base, name)
    await load_demo(settings.pg_primary, synthetic=max(0, total - GEONAMES), say=lambda line: say(line.strip()))
    return settings


async def replicas_caught_up(settings: Settings) -> None:
    """Wait until every replica has replayed what the primary has written so far."""
    await replicas_replayed(settings.pg_primary, settings.pg_replicas)


async def drop_database(base: Settings, name: str) -> None:
    """Drop database ``name`` if it exists."""
    admin = await asyncpg.connect(with_database(base.pg_primary, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
