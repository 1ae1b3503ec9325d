"""Faults on a ``geo-stack up --full`` stack of its own, under light load, through nginx.

The first test checks the shape (the location cache and pub/sub on the Sentinel set, the
API's business cache apart); each other test breaks one dependency while ``geo-loadgen
search`` runs at 50 searches/s through the entry port, and records what clients saw:
requests attempted and failed, and how long recovery took. The figures are printed at the end of the module (``pytest -s``) and kept in
docs/reliability.md. The read instances answer searches with the ``sql`` strategy here, so
every search goes through the Redis cache and PostgreSQL, where the faults are.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from deploy.stack import postgres, redis_nodes
from deploy.stack.binaries import ensure_binaries
from deploy.stack.instances import instances
from deploy.stack.postgres import pg_nodes
from deploy.stack.procs import run
from deploy.stack.redis_nodes import RedisNode
from deploy.stack.stack import Stack
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from loadgen.targets import TargetError, check_friendship_api, check_search_api
from tests.conftest import discard_stack
from tests.ports import free_block, free_port
from tests.deploy.full_stack_helpers import (
    SEARCH_RATE,
    FullStack,
    SearchLoad,
    eventually,
    markdown,
    metric,
)
from tests.friends_ws.ws_helpers import NEAR, SF, Client, new_user

#: What the tests change from the defaults, for every instance.
EXTRA_ENV = {
    "GEO_API_INDEX": "sql",  # searches through the cache and the database, where the faults are
    "GEO_API_INDEXES": "geohash",  # one in-memory index: a quicker start
    "GEO_WS_MAX_UPDATES_PER_S": "20",
    # The load comes from one address, faster than one client may search through nginx.
    "GEO_HTTP_RATE_PER_S": "10000",
    "GEO_LOG_LEVEL": "warning",
}
READ_INSTANCES = ("api-read-1", "api-read-2")
#: Seconds between the primary's crash and the promotion (the time to decide to fail over).
DETECTION_S = 3.0


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    """A full stack on ports of its own, brought up for the module and taken down after it."""
    root = tmp_path_factory.mktemp("full-stack") / "stack"
    stack = Stack(root, port_base=free_block(20, cluster=True))
    out = root.parent / "results"
    results: list[dict[str, Any]] = []
    try:
        tier = stack.up_full(entry_port=free_port(), extra_env=EXTRA_ENV)
        state = tier.state
        stack_env = Stack.env_vars(state)
        primary, replica = pg_nodes(state)
        yield FullStack(
            stack=stack,
            tier=tier,
            bins=ensure_binaries(),
            primary=primary,
            replica=replica,
            redis=RedisNode("standalone", stack.layout.redis_dir, state.ports["redis"]),
            settings=Settings.from_env(tier.environment(stack_env, EXTRA_ENV)),
            stack_env=stack_env,
            extra_env=EXTRA_ENV,
            out=out,
            results=results,
        )
    finally:
        discard_stack(stack, root)
        if results:
            out.mkdir(parents=True, exist_ok=True)
            (out / "reliability.md").write_text(markdown(results))
            print("\n" + markdown(results))


async def ws_client(full: FullStack, user_id: int) -> Client:
    token = mint_token(full.settings.jwt_secret, user_id)
    ws = await connect(
        full.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, compression=None, open_timeout=3
    )
    return Client(ws, user_id)


def admin(full: FullStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(full.settings.jwt_secret, 1, Role.ADMIN)}"}


async def read_metric_sum(http: aiohttp.ClientSession, full: FullStack, name: str, **labels: str) -> float:
    return sum([await metric(http, full.instance_url(n), name, **labels) or 0.0 for n in READ_INSTANCES])


async def test_locations_are_on_the_sentinel_set_and_the_api_cache_apart(full: FullStack) -> None:
    locations = full.tier.locations
    rows = {c.name: c.detail for c in await asyncio.to_thread(full.stack.status)}
    assert rows["redis-locations-a"] == "locations primary" and rows["redis-locations-b"] == "locations replica"
    for node in locations.sentinels:
        assert rows[f"redis-{node.name}"] == f"sentinel, geo-locations primary on :{locations.primary.port}"
    for instance in instances(full.tier.state):
        pid = full.tier.pid(instance)
        assert pid is not None, instance.name
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().partition("=")[::2] for item in raw if item)
        assert env["GEO_REDIS_URL"] == locations.url, instance.name
        assert env["GEO_API_CACHE_URL"] == full.stack_env["GEO_REDIS_URL"], instance.name
    # Through nginx: two friends see each other, their positions held by the Sentinel set.
    a, b = new_user(), new_user()
    alice, bob = await ws_client(full, a), await ws_client(full, b)
    try:
        await alice.location(*SF)
        await alice.expect("init")
        await bob.location(*NEAR)
        await bob.expect("init")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{full.entry}/v1/users/{a}/friends/{b}", headers=admin(full)) as resp,
        ):
            assert resp.status == 201, await resp.text()
        await alice.expect("friend_location", user_id=b)
        await bob.location(NEAR[0] + 0.001, NEAR[1], timestamp=2)
        await alice.expect("friend_location", user_id=b)
        # While they are connected (a user who leaves is removed from the cache).
        keys = await asyncio.to_thread(redis_nodes.cli, full.bins, locations.primary, "dbsize")
        assert int(keys) > 0
    finally:
        await alice.close()
        await bob.close()


async def test_geo_loadgen_sets_up_through_nginx_and_not_on_a_read_instance(full: FullStack) -> None:
    # Through nginx /openapi.json is a read instance's, which lists no write route, while the
    # set-up's POSTs reach the write instance: the check asks the route, not the document.
    await asyncio.to_thread(check_friendship_api, full.entry, "--api", setup=True)
    assert (await asyncio.to_thread(check_search_api, full.entry, "--url")).max_radius_m is not None
    await asyncio.to_thread(check_friendship_api, full.instance_url("api-write-1"), "--api", setup=True)
    read = full.instance_url("api-read-1")
    with pytest.raises(TargetError, match="does not create friendships"):
        await asyncio.to_thread(check_friendship_api, read, "--api", setup=True)
    await asyncio.to_thread(check_friendship_api, read, "--api", setup=False)  # --skip-setup


async def test_replica_stopped_searches_answer_from_the_primary(full: FullStack) -> None:
    duration = 12.0
    async with aiohttp.ClientSession() as http:
        load = SearchLoad(full.entry, duration, full.out / "replica")
        await asyncio.sleep(3)
        primary_reads = await read_metric_sum(http, full, "geo_api_db_queries_total", server="primary")
        assert await asyncio.to_thread(postgres.stop, full.bins, full.replica)
        stopped_at = time.monotonic()
        await asyncio.sleep(1)
        # The price of synchronous replication with one standby: a write waits for it.
        write = asyncio.create_task(
            http.post(
                f"{full.entry}/v1/businesses",
                json={"name": "written while the replica is down", "latitude": 1.0, "longitude": 1.0},
                headers=admin(full),
            )
        )
        await asyncio.sleep(3)
        assert not write.done()
        assert await read_metric_sum(http, full, "geo_api_db_queries_total", server="primary") > primary_reads
        await asyncio.to_thread(postgres.up_replica, full.bins, full.primary, full.replica)
        restarted_at = time.monotonic()
        async with await write as resp:
            assert resp.status == 201, await resp.text()
        write_waited = time.monotonic() - stopped_at - 1
        before = {
            n: await metric(http, full.instance_url(n), "geo_api_db_queries_total", server="replica-1")
            for n in READ_INSTANCES
        }

        async def replica_serves() -> bool:
            for name in READ_INSTANCES:
                now = await metric(http, full.instance_url(name), "geo_api_db_queries_total", server="replica-1")
                if now is None or now <= (before[name] or 0.0):
                    return False
            return True

        back_s = await eventually(replica_serves, "both read instances to read from the replica again", timeout=15)
        result = await load.result()
    full.results.append(
        {
            "fault": "PostgreSQL replica stopped (pg_ctl stop -m fast), restarted 4 s later",
            "searches attempted": result.attempted,
            "searches failed": result.failed,
            "search latency p99 / max (ms)": f"{result.p99_ms:.1f} / {result.max_ms:.1f}",
            "replica down for (s)": restarted_at - stopped_at,
            "recovery: replica serving reads again after restart (s)": back_s,
            "a write sent while the replica was down waited (s)": write_waited,
        }
    )
    assert result.failed == 0, result
    assert result.attempted >= SEARCH_RATE * duration * 0.95


async def test_cache_redis_stopped_searches_answer_and_deliveries_resume(full: FullStack) -> None:
    duration = 14.0
    a, b = new_user(), new_user()
    alice, bob = await ws_client(full, a), await ws_client(full, b)
    async with aiohttp.ClientSession() as http:
        try:
            await alice.location(*SF)
            await alice.expect("init")
            await bob.location(*NEAR, timestamp=1)
            await bob.expect("init")
            async with http.post(f"{full.entry}/v1/users/{a}/friends/{b}", headers=admin(full)) as resp:
                assert resp.status == 201, await resp.text()  # an admin makes them friends directly
                assert (await resp.json())["state"] == "friends"
            await alice.expect("friend_location", user_id=b)

            load = SearchLoad(full.entry, duration, full.out / "redis")
            stopped_at = restarted_at = delivered_at = 0.0
            refused: Counter[str] = Counter()

            async def move() -> None:
                """Bob moves every 0.1 s throughout; stops at the first delivery after the restart."""
                nonlocal delivered_at
                seq = 100
                while time.monotonic() - (restarted_at or time.monotonic()) < 15:
                    seq += 1
                    await bob.location(NEAR[0] + seq / 1e5, NEAR[1], timestamp=seq)
                    for frame in await bob.quiet(0.01):
                        if frame.get("type") == "error":
                            refused[frame["code"]] += 1
                    frames = [
                        f
                        for f in await alice.quiet(0.1)
                        if f.get("type") == "friend_location" and f.get("user_id") == b
                    ]
                    if restarted_at and any(
                        f["sent_at"] > 100 and f["updated_at"] / 1000 > wall_restart for f in frames
                    ):
                        delivered_at = time.monotonic()
                        return
                raise AssertionError("no delivery after Redis came back")

            async def cache_back() -> bool:
                for name in READ_INSTANCES:
                    base = full.instance_url(name)
                    closed = await metric(
                        http, base, "geo_circuit_breaker_state", dependency="redis-cache", state="closed"
                    )
                    if closed != 1.0:
                        return False
                    if await metric(http, base, "geo_api_cache_up") != 1.0:
                        return False
                return True

            wall_restart = time.time()
            mover = asyncio.create_task(move())
            await asyncio.sleep(2)
            assert await asyncio.to_thread(redis_nodes.stop, full.redis)
            stopped_at = time.monotonic()
            await asyncio.sleep(3)
            await asyncio.to_thread(redis_nodes.start, full.bins, full.redis)
            wall_restart, restarted_at = time.time(), time.monotonic()
            cache_s = await eventually(cache_back, "the read instances to use the cache again", timeout=10)
            await mover
            delivered_s = delivered_at - restarted_at
            # The same two connections: nobody had to reconnect.
            assert alice.ws.state.name == "OPEN" and bob.ws.state.name == "OPEN"
            rejected = await read_metric_sum(http, full, "geo_circuit_breaker_rejected_total", dependency="redis-cache")
            result = await load.result()
        finally:
            await alice.close()
            await bob.close()
    full.results.append(
        {
            "fault": "cache Redis stopped (SIGTERM), restarted 3 s later",
            "searches attempted": result.attempted,
            "searches failed": result.failed,
            "search latency p99 / max (ms)": f"{result.p99_ms:.1f} / {result.max_ms:.1f}",
            "Redis down for (s)": restarted_at - stopped_at,
            "cache calls fast-failed by the read instances' breakers": int(rejected),
            "location updates refused meanwhile (WS error frames)": dict(refused),
            "recovery: WebSocket delivery after restart, same connections (s)": delivered_s,
            "recovery: read instances using the cache again after restart (s)": cache_s,
        }
    )
    assert result.failed == 0, result
    assert set(refused) <= {"unavailable"}, refused


async def test_ws_instance_killed_clients_reconnect_to_the_other(full: FullStack) -> None:
    users = [new_user() for _ in range(6)]
    clients = [await ws_client(full, u) for u in users]
    for client in clients:
        await client.location(*SF)
        await client.expect("init")
    async with aiohttp.ClientSession() as http:
        for name in ("ws-1", "ws-2"):  # least_conn spread them over both
            assert (await metric(http, full.instance_url(name), "geo_friends_sessions") or 0) > 0, name
    load = SearchLoad(full.entry, 8, full.out / "ws")
    await asyncio.sleep(1)
    failed_handshakes = 0
    fresh: list[Client] = []
    killed_at = time.monotonic()
    assert full.tier.stop_instance("ws-1", kill=True)

    async def follow(client: Client) -> float | None:
        """None when the client's connection survived; else seconds from the kill to a new init."""
        nonlocal failed_handshakes
        try:
            while True:
                await asyncio.wait_for(client.ws.recv(), timeout=max(0.0, killed_at + 3 - time.monotonic()))
        except TimeoutError:
            return None
        except ConnectionClosed:
            pass
        while True:
            try:
                new = await ws_client(full, client.user_id)
                break
            except (OSError, TimeoutError, ConnectionClosed, Exception):  # noqa: BLE001 - any refusal is counted
                failed_handshakes += 1
                assert time.monotonic() - killed_at < 10, "could not reconnect"
                await asyncio.sleep(0.1)
        fresh.append(new)
        await new.location(*SF)
        await new.expect("init", timeout=5)
        return time.monotonic() - killed_at

    try:
        outcomes = await asyncio.gather(*(follow(c) for c in clients))
        result = await load.result()
    finally:
        for client in [*clients, *fresh]:
            await client.close()
    reconnected = [s for s in outcomes if s is not None]
    full.results.append(
        {
            "fault": "one WebSocket instance killed (SIGKILL), 6 clients connected through nginx",
            "clients disconnected": len(reconnected),
            "clients kept": len(outcomes) - len(reconnected),
            "reconnection handshakes failed": failed_handshakes,
            "searches attempted": result.attempted,
            "searches failed": result.failed,
            "recovery: kill to fresh init, slowest client (s)": max(reconnected) if reconnected else float("nan"),
        }
    )
    await asyncio.to_thread(full.tier.up, full.bins, full.stack_env, extra_env=full.extra_env)  # ws-1 back
    assert reconnected and len(reconnected) < len(clients)
    assert max(reconnected) < 5.0, reconnected
    assert result.failed == 0, result


async def test_primary_lost_replica_promoted_no_acknowledged_write_lost(full: FullStack) -> None:
    acked: list[int] = []
    failures: Counter[str] = Counter()
    attempted = 0
    crashed_at: float | None = None  # once the primary is gone (pg_ctl stop returned)
    first_ok: float | None = None  # the first 201 of a write sent after that
    slowest_refusal = 0.0
    stop = asyncio.Event()

    async def writer(http: aiohttp.ClientSession) -> None:
        nonlocal attempted, first_ok, slowest_refusal
        while not stop.is_set():
            attempted += 1
            started = time.monotonic()
            body = {"name": f"failover {attempted}", "latitude": 45.0 + attempted / 1e4, "longitude": 7.0}
            try:
                async with http.post(
                    f"{full.entry}/v1/businesses",
                    json=body,
                    headers=admin(full),
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as resp:
                    if resp.status == 201:
                        acked.append(int((await resp.json())["id"]))
                        if crashed_at is not None and started >= crashed_at and first_ok is None:
                            first_ok = time.monotonic()
                    else:
                        failures[str(resp.status)] += 1
                        slowest_refusal = max(slowest_refusal, time.monotonic() - started)
                        # The documented answer, fast-failed or not: 503 problem+json, Retry-After.
                        assert resp.status == 503, await resp.text()
                        assert resp.content_type == "application/problem+json"
                        assert int(resp.headers["Retry-After"]) >= 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures[type(exc).__name__] += 1
            await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - started)))

    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(writer(http))
        load = SearchLoad(full.entry, 14, full.out / "failover")
        await asyncio.sleep(2)
        # A crash, not a clean shutdown: nothing more is written or sent.
        await asyncio.to_thread(
            run,
            [full.bins.pg("pg_ctl"), "-D", full.primary.data_dir, "-m", "immediate", "stop"],
            as_postgres=True,
            timeout=60,
            cwd=full.primary.data_dir.parent,
        )
        crashed_at = time.monotonic()
        acked_before = len(acked)
        await asyncio.sleep(DETECTION_S)  # whoever decides to fail over takes a moment
        promoting_at = time.monotonic()
        await asyncio.to_thread(postgres.promote, full.bins, full.replica)
        promoted_at = time.monotonic()

        async def writable() -> bool:
            return first_ok is not None

        await eventually(writable, "a write to succeed on the promoted replica", timeout=20)
        await asyncio.sleep(2)
        stop.set()
        await task
        fast_failed = await metric(
            http, full.instance_url("api-write-1"), "geo_circuit_breaker_rejected_total", dependency="postgres-primary"
        )
        result = await load.result()
        # Every acknowledged write is on the new primary and readable through nginx.
        conn = await asyncpg.connect(full.replica.dsn)
        try:
            stored = {
                r["id"] for r in await conn.fetch("SELECT id FROM businesses WHERE id = any($1::bigint[])", acked)
            }
        finally:
            await conn.close()
        unreadable = 0
        for bid in acked:
            async with http.get(f"{full.entry}/v1/businesses/{bid}") as resp:
                unreadable += resp.status != 200
    assert first_ok is not None and crashed_at is not None
    full.results.append(
        {
            "fault": f"PostgreSQL primary crashed (pg_ctl stop -m immediate), replica promoted {DETECTION_S:g} s later",
            "writes attempted": attempted,
            "writes acknowledged (201)": len(acked),
            "writes acknowledged before the crash": acked_before,
            "writes failed": sum(failures.values()),
            "failures by kind": dict(failures),
            "acknowledged writes missing after failover": len(set(acked) - stored),
            "acknowledged writes not readable through nginx": unreadable,
            "searches attempted": result.attempted,
            "searches failed": result.failed,
            "writes fast-failed by the write instance's breaker": int(fast_failed or 0),
            "slowest refused write (ms)": slowest_refusal * 1000,
            "pg_ctl promote took (s)": promoted_at - promoting_at,
            "recovery: promotion done to first acknowledged write (s)": max(0.0, first_ok - promoted_at),
            "writes unavailable for (s): crash to first acknowledged write": first_ok - crashed_at,
        }
    )
    assert set(acked) == stored, sorted(set(acked) - stored)
    assert unreadable == 0
    assert set(failures) <= {"503"}, failures
    assert result.failed == 0, result


async def test_failover_after_the_crash_rebuilds_the_old_primary_and_keeps_writes_synchronous(full: FullStack) -> None:
    # After the previous test the old primary is down and the replica promoted by hand:
    # `geo-stack failover` takes the promoted server as the primary and rebuilds the other.
    await asyncio.to_thread(full.stack.failover)
    state = full.stack.layout.load_state()
    assert state is not None
    primary, replica = pg_nodes(state)
    assert (primary.port, replica.port) == (full.replica.port, full.primary.port)
    conn = await asyncpg.connect(primary.dsn)
    try:  # the full tier runs: commits wait for the rebuilt standby, as after `up --full`
        assert await conn.fetchval("SHOW synchronous_standby_names") == "*"
    finally:
        await conn.close()
    assert postgres.replica_streaming(full.bins, replica)
    async with aiohttp.ClientSession() as http:
        body = {"name": "after failover", "latitude": 46.0, "longitude": 7.0}
        async with http.post(
            f"{full.entry}/v1/businesses", json=body, headers=admin(full), timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            assert resp.status == 201, await resp.text()  # a synchronous commit: the standby has it
            bid = int((await resp.json())["id"])
    conn = await asyncpg.connect(replica.dsn)
    try:

        async def replayed() -> bool:
            return await conn.fetchval("SELECT count(*) FROM businesses WHERE id = $1", bid) == 1

        await eventually(replayed, "the rebuilt replica to replay the write", timeout=10)
    finally:
        await conn.close()
