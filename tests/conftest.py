"""Session fixtures: the real local stack, and a fresh database per test session.

Nothing real is mocked. The stack is brought up (idempotently) from the tests themselves, so
``pytest`` works alone as well as under ``make test``; when it cannot start, the run fails
with the reason.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import os
import shutil
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from deploy.stack.procs import StackError
from deploy.stack.stack import Stack
from geo_common.migrate import apply_migrations
from geo_common.settings import Settings

REPO = Path(__file__).resolve().parents[1]
#: Multiply every wait in the tests by this on a slow machine (GEO_TEST_TIMEOUT_FACTOR=3).
TIMEOUT_FACTOR = float(os.environ.get("GEO_TEST_TIMEOUT_FACTOR", "1"))


def with_database(dsn: str, database: str) -> str:
    """The same connection string pointed at another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The local stack's endpoint variables, starting the stack if it is not running."""
    root = Path(os.environ.get("GEO_STACK_DIR", REPO / ".stack"))
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The suite's processes (pytest-xdist) start it one at a time.
        with open(root.with_name(root.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return Stack(root).up()
    except StackError as exc:
        pytest.fail(f"the local stack could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
async def settings(stack_env: dict[str, str]) -> AsyncIterator[Settings]:
    """Settings for the stack, with a database of this session's own on the primary and replica.

    The database is created on the primary, migrated, and awaited on every replica (it arrives
    by streaming replication); it is dropped at the end of the session.
    """
    base = Settings.from_env(stack_env)
    name = f"geo_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(with_database(base.pg_primary, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    primary = with_database(base.pg_primary, name)
    applied = await apply_migrations(primary)
    replicas = tuple(with_database(r, name) for r in base.pg_replicas)
    for replica in replicas:
        await wait_for_schema(replica, len(applied))
    # Keys and channels of this session stay apart from any other session sharing the Redis.
    yield replace(base, pg_primary=primary, pg_replicas=replicas, redis_namespace=f"geo-test-{secrets.token_hex(4)}")
    admin = await asyncpg.connect(with_database(base.pg_primary, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def empty_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    """A new, empty database on the stack's primary (no migrations), dropped afterwards."""
    base = Settings.from_env(stack_env)
    name = f"geo_scratch_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(with_database(base.pg_primary, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(base.pg_primary, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def wait_for_schema(dsn: str, migrations: int, timeout: float = 10.0) -> None:
    """Wait until a replica has replayed the database and its migrations."""
    deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(dsn)
            try:
                if await conn.fetchval("SELECT count(*) FROM schema_migrations") == migrations:
                    return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            last = exc
        await asyncio.sleep(0.05)
    raise AssertionError(f"replica {dsn} did not receive the schema within {timeout} s: {last}")


def discard_stack(stack: Stack, root: Path) -> None:
    """Stop a throwaway stack and delete its PostgreSQL data kept outside ``root`` (under /tmp
    when the ``postgres`` user cannot reach ``root``); ``root`` itself is the test's tmp dir."""
    stack.down()
    state_file = root / "state.json"
    if state_file.is_file():
        pg_root = json.loads(state_file.read_text()).get("pg_root", "")
        if pg_root and not pg_root.startswith(str(root)):
            shutil.rmtree(pg_root, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def collect_what_the_module_left() -> Iterator[None]:
    """Collect garbage after each test module, so a resource it left open (a socket, a client
    it never closed) is reported by pytest in that module's last test, not in whichever
    test of another module the collector happens to run in."""
    yield
    gc.collect()
