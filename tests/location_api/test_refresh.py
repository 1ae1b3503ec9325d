"""Live index refresh: a write through any instance shows in every instance's search within 2 s."""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from geo_common import gc_control
from geo_common.places import load_places
from geo_common.settings import Settings
from location_api import catalog_queries
from location_api.cells import geohash12
from location_api.keys import refresher_key
from location_api.refresh import MAX_CHANGES_PER_POLL
from location_api.contract import MEMORY_STRATEGIES
from location_api.demo import BUSINESS_COLUMNS, place_records

from .conftest import Api, drop_database, eventually, small_database, stop_api

PROPAGATION_S = 2.0


@pytest.fixture(scope="module")
async def writer(api_settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> Api:
    """A second instance, write role only (no indexes of its own)."""
    return await serve(replace(api_settings, api_role="write"))


async def ids_near(api: Api, lat: float, lon: float, strategy: str, radius: float = 1000.0) -> list[int]:
    params = {"latitude": str(lat), "longitude": str(lon), "radius": str(radius), "index": strategy, "limit": "100"}
    async with api.http.get("/v1/search/nearby", params=params) as resp:
        assert resp.status == 200
        return [b["id"] for b in (await resp.json())["businesses"]]


async def shows_everywhere(api: Api, lat: float, lon: float, expected: list[int], what: str) -> float:
    async def check() -> bool:
        for strategy in MEMORY_STRATEGIES:
            if await ids_near(api, lat, lon, strategy) != expected:
                return False
        return True

    return await eventually(check, what, timeout=PROPAGATION_S)


async def test_create_move_delete_through_another_instance_shows_within_2_s(
    api: Api, writer: Api, admin_headers: dict[str, str]
) -> None:
    body: dict[str, Any] = {"name": "Elsewhere", "latitude": -45.0, "longitude": -120.0}
    async with writer.http.post("/v1/businesses", json=body, headers=admin_headers) as resp:
        assert resp.status == 201
        bid = (await resp.json())["id"]
    await shows_everywhere(api, -45.0, -120.0, [bid], "a created business")

    moved = {**body, "latitude": -46.0, "longitude": -121.0}
    async with writer.http.put(f"/v1/businesses/{bid}", json=moved, headers=admin_headers) as resp:
        assert resp.status == 200
    await shows_everywhere(api, -46.0, -121.0, [bid], "a moved business at its new place")
    assert await ids_near(api, -45.0, -120.0, "geohash") == []

    async with writer.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
        assert resp.status == 204
    await shows_everywhere(api, -46.0, -121.0, [], "a deleted business to disappear")


async def test_a_change_that_commits_late_is_not_skipped(api: Api) -> None:
    """seq order is not commit order: the change with the lower seq commits last."""
    slow = await asyncpg.connect(api.settings.pg_primary)
    fast = await asyncpg.connect(api.settings.pg_primary)
    insert = "INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ($1, $2, $3, $4) RETURNING id"
    try:
        txn = slow.transaction()
        await txn.start()
        slow_id = await slow.fetchval(insert, "Slow", -47.0, -122.0, geohash12(-47.0, -122.0))
        fast_id = await fast.fetchval(insert, "Fast", -47.0, -122.001, geohash12(-47.0, -122.001))
        await shows_everywhere(api, -47.0, -122.0, [fast_id], "the change that committed first")
        await asyncio.sleep(1.0)  # several polls go by while the first change is still open
        await txn.commit()
        await shows_everywhere(api, -47.0, -122.0, [slow_id, fast_id], "the change that committed last")
        await fast.execute("DELETE FROM businesses WHERE id = ANY($1::bigint[])", [slow_id, fast_id])
        await shows_everywhere(api, -47.0, -122.0, [], "both to be deleted")
    finally:
        await slow.close()
        await fast.close()


@pytest.fixture(scope="module")
async def small(settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Api]:
    """An instance over 500 places: its full rebuilds take milliseconds."""
    small_settings = await small_database(settings, "bulk", places=500)
    api = await serve(small_settings)
    yield api
    await stop_api(api)
    await drop_database(settings.pg_primary, small_settings.pg_primary.rpartition("/")[2])


async def change_log_rows_read(conn: asyncpg.Connection) -> int:
    """Rows of business_changes this server has read so far, by any scan (its own statistics,
    with this connection's flushed first)."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    return int(
        await conn.fetchval(
            """SELECT coalesce(t.seq_tup_read, 0) + coalesce(sum(i.idx_tup_read), 0)
             FROM pg_stat_user_tables t LEFT JOIN pg_stat_user_indexes i ON i.relid = t.relid
            WHERE t.relname = 'business_changes' GROUP BY t.seq_tup_read"""
        )
    )


async def test_a_poll_reads_the_change_log_above_its_horizon_only(settings: Settings) -> None:
    """Even where the plan cache has settled on a generic plan (forced here for the whole
    session), a poll must not walk the change log a bulk load left, every 0.25 s."""
    loaded = await small_database(settings, "changelog", places=0)
    conn = await asyncpg.connect(loaded.pg_primary)
    try:
        # Statements of 4,000 rows: each is logged row by row (above 5,000, as one row).
        places = [record[:6] for record in place_records(load_places()[:20_000])]
        for start in range(0, len(places), 4_000):
            await conn.copy_records_to_table(
                "businesses", records=places[start : start + 4_000], columns=BUSINESS_COLUMNS
            )
        logged, last_xid = await conn.fetchrow("SELECT count(*), max(xid) FROM business_changes")
        assert logged == 20_000  # a row per place the COPYs loaded
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        before = await change_log_rows_read(conn)
        for _ in range(3):
            _info, changes, overflow = await catalog_queries.poll_changes(conn, last_xid + 1, [], MAX_CHANGES_PER_POLL)
            assert (changes, overflow) == ([], False)
        assert await change_log_rows_read(conn) - before < logged // 10  # a walk reads 3 x 20,000
    finally:
        await conn.close()
        await drop_database(settings.pg_primary, loaded.pg_primary.rpartition("/")[2])


async def test_a_bulk_load_rebuilds_the_indexes(small: Api) -> None:
    api = small
    refresher = api.app[refresher_key]
    rebuilds = refresher.rebuilds
    n = MAX_CHANGES_PER_POLL + 1
    rows = [(f"Bulk {i}", -75.0 + i * 1e-5, 100.0, "bulk", "", geohash12(-75.0 + i * 1e-5, 100.0)) for i in range(n)]
    conn = await asyncpg.connect(api.settings.pg_primary)
    try:
        await conn.copy_records_to_table(
            "businesses", records=rows, columns=["name", "latitude", "longitude", "category", "address", "geohash"]
        )

        async def loaded() -> bool:
            params = {"latitude": "-75.0", "longitude": "100.0", "radius": "50000", "category": "bulk", "limit": "1"}
            async with api.http.get("/v1/search/nearby", params=params) as resp:
                return bool((await resp.json())["total"] == n)

        await eventually(loaded, "the bulk-loaded businesses", timeout=30)
        assert refresher.rebuilds == rebuilds + 1
        await conn.execute("DELETE FROM businesses WHERE category = 'bulk'")

        async def removed() -> bool:
            return not await loaded() and await ids_near(api, -75.0, 100.0, "s2") == []

        await eventually(removed, "the bulk-deleted businesses to go", timeout=30)
    finally:
        await conn.close()


async def test_a_transaction_left_open_after_a_load_does_not_rebuild_every_poll(small: Api) -> None:
    """An open transaction holds every snapshot's xmin back, so a bulk load's rows stay above
    it: read again at each poll, they must not count as new (a rebuild every 0.25 s)."""
    api = small
    refresher = api.app[refresher_key]
    columns = ["name", "latitude", "longitude", "category", "address", "geohash"]
    n = MAX_CHANGES_PER_POLL + 1_000
    rows = [(f"Held {i}", -76.0 + i * 1e-5, 101.0, "held", "", geohash12(-76.0 + i * 1e-5, 101.0)) for i in range(n)]
    held, conn = await asyncpg.connect(api.settings.pg_primary), await asyncpg.connect(api.settings.pg_primary)
    open_txn = held.transaction()
    try:
        await open_txn.start()
        await held.execute(
            "INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ('Open', -77.0, 102.0, $1)",
            geohash12(-77.0, 102.0),
        )
        for start in range(0, n, 3_000):  # statements under the bulk threshold: logged row by row
            await conn.copy_records_to_table("businesses", records=rows[start : start + 3_000], columns=columns)

        async def holds_them() -> bool:
            await refresher.poll()
            return refresher.catalog is not None and len(refresher.catalog) == 500 + n

        await eventually(holds_them, "the loaded businesses", timeout=30)  # by a rebuild: n > the poll's bound
        rebuilds = refresher.rebuilds
        for _ in range(3):
            assert await refresher.poll() == 0
        assert refresher.rebuilds == rebuilds  # the rows above the held xmin were not news

        one = await conn.fetchval(
            "INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ('After', -76.5, 101.5, $1) RETURNING id",
            geohash12(-76.5, 101.5),
        )

        async def applied() -> bool:
            await refresher.poll()
            return one in await ids_near(api, -76.5, 101.5, "geohash", radius=10.0)

        await eventually(applied, "the business written after the load", timeout=10)
        assert refresher.rebuilds == rebuilds
    finally:
        await open_txn.rollback()
        await conn.execute("DELETE FROM businesses WHERE category = 'held' OR name = 'After'")
        await held.close()
        await conn.close()

    # The module's next tests start from its 500 businesses: the deletion, replayed on the
    # replica later, would otherwise rebuild (and freeze) the catalog while they run.
    async def settled() -> bool:
        await refresher.poll()
        return refresher.catalog is not None and len(refresher.catalog) == 500

    await eventually(settled, "the catalog without the loaded businesses", timeout=30)


async def collections_during(work: Awaitable[None], *, eager: bool = False) -> list[int]:
    """The generations of the collections that started while ``work`` ran.

    ``eager``: the youngest generation's threshold is 1 meanwhile, so that any allocation
    starts a collection unless the collector is paused: whether one ran does not then depend
    on how many objects a build of a few hundred rows happens to make.
    """
    collections: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.callbacks.append(watch)
    if eager:
        gc.set_threshold(1, thresholds[1], thresholds[2])
    try:
        await work
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(watch)
    return collections


async def test_a_rebuild_runs_no_collection_freezes_the_new_catalog_and_frees_the_old(small: Api) -> None:
    refresher = small.app[refresher_key]
    old = weakref.ref(refresher.catalog)
    collections = await collections_during(refresher.rebuild())
    catalog = refresher.catalog
    assert collections == []  # no collection walked the rows or the catalog as they were made
    assert gc.isenabled()
    assert old() is None  # taken apart and freed
    assert catalog is not None and len(catalog) == 500
    young = {id(o) for o in gc.get_objects()}
    assert (
        id(catalog.cards.hits) not in young
        and id(catalog.cards.facets) not in young
        and id(catalog.indexes) not in young
    )  # frozen
    conn = await asyncpg.connect(small.settings.pg_primary)
    try:
        first = await conn.fetchrow("SELECT id, latitude, longitude FROM businesses ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    assert first["id"] in await ids_near(small, first["latitude"], first["longitude"], "geohash", radius=1.0)


async def test_with_process_tuning_off_a_rebuild_pauses_freezes_and_collapses_nothing(
    small: Api, serve: Callable[[Settings], Awaitable[Api]]
) -> None:
    untuned = await serve(replace(small.settings, process_tuning=False))
    try:
        refresher = untuned.app[refresher_key]
        collections = await collections_during(refresher.rebuild(), eager=True)
        catalog = refresher.catalog
        assert catalog is not None and len(catalog) == 500
        assert collections  # the collector ran while the rows and the catalog were made
        assert gc.is_tracked(catalog.indexes) and any(o is catalog.indexes for o in gc.get_objects())  # not frozen
        assert refresher.huge_page_bytes == 0
    finally:
        await stop_api(untuned)


async def test_the_catalog_rows_arrive_in_geohash_order(small: Api) -> None:
    conn = await asyncpg.connect(small.settings.pg_replicas[0])
    try:
        _info, rows, _seen = await catalog_queries.load_all(conn)
    finally:
        await conn.close()
    hashes = [geohash12(r["latitude"], r["longitude"]) for r in rows]
    assert len(rows) >= 500 and hashes == sorted(hashes)


async def test_a_poll_waits_for_a_rebuild_under_way(small: Api) -> None:
    refresher = small.app[refresher_key]
    rebuilds = refresher.rebuilds
    rebuilding = asyncio.create_task(refresher.rebuild())
    await asyncio.sleep(0)  # the rebuild has its turn
    assert await refresher.poll() == 0
    assert refresher.rebuilds == rebuilds + 1  # the poll ran on the new catalog
    await rebuilding


async def test_a_poll_goes_on_while_the_old_catalog_is_taken_apart(small: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    refresher = small.app[refresher_key]
    started, release = threading.Event(), threading.Event()
    take_apart = gc_control.dismantle

    def held_back(root: Any, step: int = gc_control.STEP) -> None:  # gc_control.dismantle, once released
        started.set()
        release.wait(30)
        take_apart(root, step)

    monkeypatch.setattr(gc_control, "dismantle", held_back)
    old = weakref.ref(refresher.catalog)
    rebuilding = asyncio.create_task(refresher.rebuild())
    try:

        async def taking_apart() -> bool:
            return started.is_set()

        await eventually(taking_apart, "the old catalog to be taken apart")
        # The new catalog is in place and the old one still held: a poll is not kept waiting.
        assert await asyncio.wait_for(refresher.poll(), timeout=10) == 0
        assert not rebuilding.done() and old() is not None
    finally:
        release.set()
        await rebuilding
    gc.collect()
    assert old() is None


async def test_changes_are_merged_into_the_indexes_in_a_worker_thread(
    small: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresher = small.app[refresher_key]
    monkeypatch.setattr("location_api.refresh.MERGE_AT", 3)
    merges = refresher.merges
    rows = [(f"Merged {i}", 33.0 + i * 1e-4, -40.0, "merged", "", geohash12(33.0 + i * 1e-4, -40.0)) for i in range(7)]
    conn = await asyncpg.connect(small.settings.pg_primary)
    try:
        for row in rows:  # one transaction each: seven changes, polled over one or more turns
            await conn.execute(
                "INSERT INTO businesses (name, latitude, longitude, category, address, geohash)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                *row,
            )

        async def merged() -> bool:
            catalog = refresher.catalog
            if catalog is None or refresher.merges == merges:
                return False
            if any(index.pending >= 3 for index in catalog.indexes.values()):
                return False
            return [len(await ids_near(small, 33.0, -40.0, s)) for s in MEMORY_STRATEGIES] == [7] * 3

        await eventually(merged, "the changes merged into every index", timeout=30)
        ids = await ids_near(small, 33.0, -40.0, "geohash")
        await conn.execute("DELETE FROM businesses WHERE category = 'merged'")
        # Removals after the merge reach the merged bulk.
        await eventually(functools.partial(_none_near, small), "the merged businesses to go", timeout=30)
        assert len(ids) == 7
    finally:
        await conn.close()


async def _none_near(api: Api) -> bool:
    return [await ids_near(api, 33.0, -40.0, s) for s in MEMORY_STRATEGIES] == [[]] * 3
