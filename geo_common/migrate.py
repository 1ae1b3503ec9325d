"""Schema migrations: ordered plain SQL files applied once each to the primary.

Files live in ``geo_common/migrations`` as ``NNNN_name.sql``. Each runs in its own
transaction and is recorded in ``schema_migrations`` with a checksum, so an edited file that
was already applied is refused rather than silently skipped. Replicas receive the schema by
streaming replication; nothing is ever applied to them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files

import asyncpg

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every process that migrates.
_LOCK_KEY = 0x6E0_5C4E


class MigrationError(RuntimeError):
    """A migration file is malformed, failed, or differs from the one already applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migration files shipped with the package, in version order.

    Raises:
        MigrationError: a file name does not match ``NNNN_name.sql`` or a version repeats.
    """
    found: dict[int, Migration] = {}
    for entry in files("geo_common.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if not match:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"migration version {version} appears twice")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def apply_migrations(dsn: str) -> list[Migration]:
    """Apply every migration the database has not seen yet.

    Concurrent callers are serialised by an advisory lock, so two processes starting at once
    apply each file once.

    Args:
        dsn: the primary's connection string.

    Returns:
        The migrations applied by this call (empty when the schema was current).

    Raises:
        MigrationError: a migration failed or an applied one was edited since.
    """
    conn = await asyncpg.connect(dsn)
    applied_now: list[Migration] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done = {r["version"]: r["checksum"] for r in rows}
        for migration in available_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it was applied"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
            applied_now.append(migration)
    finally:
        await conn.close()
    return applied_now
