"""Logging in to Redis: every backend and cache client against real password-protected servers.

Each throwaway ``redis-server`` requires a password for the default user (``requirepass``)
and has an ACL user ``geo`` with a password of its own. With the right credentials in the URL
each client works, and keeps working across reconnections (``AUTH`` is sent on every new
connection); with a wrong password, or none, it fails at once with
:class:`~pubsub.errors.AuthenticationFailed`, whose message and whose log lines name the node
and the user but never the password.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError

from deploy.stack import redis_nodes
from deploy.stack.binaries import Binaries
from deploy.stack.redis_nodes import RedisNode
from friends_ws.cache import LocationCache
from geo_common.breaker import State
from geo_common.presence import Location
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from location_api.cache import Cache
from pubsub import AuthenticationFailed, ClusterPubSub, RedisPubSub, RingPubSub, create_pubsub, open_redis
from pubsub.address import NodeAddress, without_credentials
from pubsub.client import CommandProtocol, RedisClient
from pubsub.protocol import Acknowledged, SubscriberProtocol, encode_command
from tests.pubsub.pubsub_helpers import FAST, TIMEOUT_FACTOR, Collector, eventually
from tests.ports import free_port

#: The default user's password and the ACL user's, different on every run.
ADMIN_PASSWORD = f"admin-{secrets.token_hex(8)}"
USER = "geo"
USER_PASSWORD = f"geo-{secrets.token_hex(8)}"
WRONG_PASSWORD = f"wrong-{secrets.token_hex(8)}"
#: The passwords nothing may show.
SECRETS = (ADMIN_PASSWORD, USER_PASSWORD, WRONG_PASSWORD)

LockedFactory = Callable[..., Awaitable[RedisNode]]


@pytest.fixture
async def locked_redis(redis_bins: Binaries, tmp_path: Path) -> AsyncIterator[LockedFactory]:
    """Start redis-server processes that require a login; all are stopped at the end."""
    started: list[RedisNode] = []

    async def start(*, cluster: bool = False) -> RedisNode:
        port = free_port(cluster=cluster)
        node = RedisNode(
            f"locked-{port}",
            tmp_path / str(port),
            port,
            cluster=cluster,
            password=ADMIN_PASSWORD,
            users=(f"{USER} on >{USER_PASSWORD} ~* &* +@all",),
        )
        await asyncio.to_thread(redis_nodes.start, redis_bins, node)
        started.append(node)
        return node

    yield start
    for node in started:
        await asyncio.to_thread(redis_nodes.stop, node)


def url(node: RedisNode, login: str = f"{USER}:{USER_PASSWORD}@") -> str:
    return f"redis://{login}127.0.0.1:{node.port}/0"


def assert_hidden(text: str) -> None:
    for password in SECRETS:
        assert password not in text, text


def assert_refused(exc: AuthenticationFailed, node: RedisNode, *, wanted: bool = False) -> None:
    """A refusal names the node (and the user, or that a login is needed), never a password."""
    message = str(exc)
    assert f"127.0.0.1:{node.port}" in message, message
    if wanted:
        assert "requires authentication" in message and "NOAUTH" in message, message
    else:
        assert f"user {USER!r}" in message and "WRONGPASS" in message, message
    assert isinstance(exc, ConnectionError)
    assert_hidden(message)


# --- the redis backend --------------------------------------------------------------------


async def test_the_redis_backend_logs_in_as_an_acl_user_and_again_after_a_reconnection(
    locked_redis: LockedFactory, redis_bins: Binaries
) -> None:
    node = await locked_redis()
    got = Collector()
    async with RedisPubSub(url(node), on_message=got, **FAST) as bus:
        await bus.subscribe(["auth:a", "auth:b"])
        assert await bus.publish("auth:a", b"1") == 1
        await eventually(lambda: got.data("auth:a") == [b"1"], "the first message")
        # Drop every client connection: both come back logged in, the subscriptions restored.
        await asyncio.to_thread(redis_nodes.cli, redis_bins, node, "CLIENT", "KILL", "USER", USER)
        await eventually(lambda: bus.subscriber.connections == 2 and bus.subscriber.connected, "a reconnection")

        async def delivered() -> bool:
            return await bus.publish("auth:b", b"2") == 1

        deadline = asyncio.get_running_loop().time() + 5 * TIMEOUT_FACTOR
        while not await delivered():
            assert asyncio.get_running_loop().time() < deadline, "subscriptions were not restored"
            await asyncio.sleep(0.05)
        await eventually(lambda: b"2" in got.data("auth:b"), "a message after the reconnection")
        assert await bus.ping()
    refusals = await asyncio.to_thread(redis_nodes.cli, redis_bins, node, "ACL", "LOG")
    assert refusals == ""  # Redis logged no refused login: every connection logged in right


async def test_the_default_user_logs_in_with_a_password_alone(locked_redis: LockedFactory) -> None:
    node = await locked_redis()
    got = Collector()
    async with create_pubsub("redis", [url(node, f":{ADMIN_PASSWORD}@")], on_message=got, **FAST) as bus:
        await bus.subscribe(["auth:default"])
        assert await bus.publish("auth:default", b"x") == 1
        await eventually(lambda: got.data() == [b"x"], "the message")


@pytest.mark.parametrize("login", [f"{USER}:{WRONG_PASSWORD}@", ""], ids=["wrong-password", "no-password"])
async def test_the_redis_backend_fails_clearly_without_the_right_password(
    locked_redis: LockedFactory, login: str, caplog: pytest.LogCaptureFixture
) -> None:
    node = await locked_redis()
    caplog.set_level(logging.DEBUG)
    async with RedisPubSub(url(node, login), on_message=Collector(), **FAST) as bus:
        with pytest.raises(AuthenticationFailed) as subscribing:
            await asyncio.wait_for(bus.subscribe(["auth:x"]), 5 * TIMEOUT_FACTOR)
        assert_refused(subscribing.value, node, wanted=not login)
        with pytest.raises(AuthenticationFailed) as publishing:
            await asyncio.wait_for(bus.publish("auth:x", b"x"), 5 * TIMEOUT_FACTOR)
        assert_refused(publishing.value, node, wanted=not login)
        assert not await bus.ping()
        # The channel stays wanted: it is subscribed once the credentials are right.
        assert bus.channels == frozenset({"auth:x"})
    assert_hidden(caplog.text)
    assert "refused the credentials" in caplog.text or "requires authentication" in caplog.text


async def test_a_refused_subscriber_backs_off_rather_than_spinning(locked_redis: LockedFactory) -> None:
    node = await locked_redis()
    async with RedisPubSub(url(node, f"{USER}:{WRONG_PASSWORD}@"), on_message=Collector(), **FAST) as bus:
        with pytest.raises(AuthenticationFailed):
            await bus.subscribe(["auth:spin"])
        await asyncio.sleep(1.0)
        # Backoff doubles from 50 ms up to 2 s: a handful of attempts in a second, not hundreds.
        assert bus.subscriber.connections <= 6


# --- the ring backend ---------------------------------------------------------------------


async def test_the_ring_logs_in_to_every_node(locked_redis: LockedFactory) -> None:
    nodes = [await locked_redis() for _ in range(2)]
    channels = [f"auth:ring:{{{i}}}" for i in range(60)]
    got = Collector()
    async with RingPubSub([url(n) for n in nodes], on_message=got, **FAST) as bus:
        await bus.subscribe(channels)
        assert {bus.node_for(c) for c in channels} == {url(n) for n in nodes}
        counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in channels))
        assert set(counts) == {1}
        await eventually(lambda: len(got.messages) == len(channels), "every message")


async def test_the_ring_fails_clearly_with_a_wrong_password(locked_redis: LockedFactory) -> None:
    nodes = [await locked_redis() for _ in range(2)]
    async with RingPubSub([url(n, f"{USER}:{WRONG_PASSWORD}@") for n in nodes], on_message=Collector(), **FAST) as bus:
        with pytest.raises(AuthenticationFailed) as caught:
            await asyncio.wait_for(bus.subscribe([f"auth:ring:{{{i}}}" for i in range(20)]), 5 * TIMEOUT_FACTOR)
        assert_hidden(str(caught.value))
        assert any(str(caught.value).startswith(f"redis 127.0.0.1:{n.port} refused") for n in nodes)
        with pytest.raises(AuthenticationFailed):
            await bus.publish("auth:ring:{1}", b"x")


def test_credentials_do_not_move_channels_on_the_ring() -> None:
    plain = ["redis://127.0.0.1:7001/0", "redis://127.0.0.1:7002/0", "redis://127.0.0.1:7003/0"]
    logged_in = [p.replace("redis://", f"redis://{USER}:{USER_PASSWORD}@") for p in plain]
    channels = [f"ring:{{{i}}}" for i in range(500)]
    a = RingPubSub(plain, on_message=Collector())
    b = RingPubSub(logged_in, on_message=Collector())
    assert [plain.index(a.node_for(c)) for c in channels] == [logged_in.index(b.node_for(c)) for c in channels]
    assert b.nodes == tuple(logged_in)  # callers see the URLs they gave
    assert_hidden(repr(b.subscriber(logged_in[0]).address))


# --- the cluster backend ------------------------------------------------------------------


@pytest.fixture
async def locked_cluster(locked_redis: LockedFactory, redis_bins: Binaries) -> list[RedisNode]:
    nodes = [await locked_redis(cluster=True) for _ in range(3)]
    await asyncio.to_thread(redis_nodes.up_cluster, redis_bins, nodes)
    return nodes


async def test_the_cluster_logs_in_to_the_seeds_and_to_every_node_it_finds(locked_cluster: list[RedisNode]) -> None:
    seed = f"{USER}:{USER_PASSWORD}@127.0.0.1:{locked_cluster[0].port}"  # one seed: the rest is found
    channels = [f"auth:cluster:{{{i}}}" for i in range(90)]
    got = Collector()
    async with ClusterPubSub([seed], on_message=got, **FAST) as bus:
        await bus.subscribe(channels)
        assert {bus.node_for(c) for c in channels} == {f"127.0.0.1:{n.port}" for n in locked_cluster}
        counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in channels))
        assert set(counts) == {1}
        await eventually(lambda: len(got.messages) == len(channels), "every shard message")
        assert await bus.ping()


@pytest.mark.parametrize("login", [f"{USER}:{WRONG_PASSWORD}@", ""], ids=["wrong-password", "no-password"])
async def test_the_cluster_fails_clearly_without_the_right_password(
    locked_cluster: list[RedisNode], login: str
) -> None:
    bus = ClusterPubSub([f"{login}127.0.0.1:{locked_cluster[0].port}"], on_message=Collector(), **FAST)
    try:
        with pytest.raises(AuthenticationFailed) as caught:
            await bus.start()
        assert_refused(caught.value, locked_cluster[0], wanted=not login)
    finally:
        await bus.close()


def test_cluster_seeds_must_share_one_login() -> None:
    with pytest.raises(ValueError, match="same user, password and scheme") as caught:
        ClusterPubSub([f"{USER}:{USER_PASSWORD}@h:1", f"{USER}:{WRONG_PASSWORD}@h:2"], on_message=Collector())
    assert_hidden(str(caught.value))


# --- the caches ---------------------------------------------------------------------------


def regions(settings: Settings, redis_url: str) -> RegionMap:
    return RegionMap.from_settings(replace(settings, redis_url=redis_url, regions=()))


async def test_the_friends_location_cache_works_through_a_password_url(
    locked_redis: LockedFactory, settings: Settings
) -> None:
    node = await locked_redis()
    cache = LocationCache(regions(settings, url(node)), namespace="auth", ttl_s=60)
    try:
        here = Location(
            user_id=7, latitude=59.91, longitude=10.75, updated_at=1_700_000_000_000, connection="c1", live=True
        )
        await cache.store("default", here)
        assert (await cache.fetch("default", [7, 8])) == {7: here}
        assert await cache.mark_away_if_mine("default", 7, "c1")
        assert await cache.ping()
    finally:
        await cache.close()


async def test_the_friends_location_cache_counts_a_refused_login_against_its_breaker(
    locked_redis: LockedFactory, settings: Settings
) -> None:
    node = await locked_redis()
    cache = LocationCache(
        regions(settings, url(node, f"{USER}:{WRONG_PASSWORD}@")), namespace="auth", ttl_s=60, breaker_failures=2
    )
    try:
        for _ in range(2):
            with pytest.raises(AuthenticationFailed) as caught:
                await cache.fetch("default", [7])
            assert_refused(caught.value, node)
        assert cache.breakers[0].state is State.OPEN
        assert not await cache.ping()
    finally:
        await cache.close()


async def test_the_http_api_cache_and_redis_py_clients_log_in_from_the_url(locked_redis: LockedFactory) -> None:
    node = await locked_redis()
    cache = Cache(url(node), "auth", 60)
    try:
        await cache.check()
        assert cache.up
    finally:
        await cache.close()
    refused = Cache(url(node, f"{USER}:{WRONG_PASSWORD}@"), "auth", 60)
    try:
        await refused.check()
        assert not refused.up  # served from the database instead
    finally:
        await refused.close()
    client = open_redis(url(node, f"{USER}:{WRONG_PASSWORD}@"))
    try:
        with pytest.raises(AuthenticationError) as caught:
            await client.ping()
        assert_hidden(str(caught.value))
    finally:
        await client.aclose()


async def test_the_command_client_fails_every_queued_command_when_the_login_is_refused(
    locked_redis: LockedFactory,
) -> None:
    node = await locked_redis()
    client = RedisClient.from_url(url(node, f"{USER}:{WRONG_PASSWORD}@"), connect_timeout_s=1.0)
    try:
        results = await asyncio.gather(*(client.execute("GET", f"k{i}") for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, AuthenticationFailed) for r in results), results
        assert client.connections == 1  # not retried: a refusal is not a dropped connection
    finally:
        await client.close()


# --- the sans-I/O cores -------------------------------------------------------------------


async def test_the_login_goes_first_and_its_refusal_fails_every_command() -> None:
    loop = asyncio.get_running_loop()
    proto = CommandProtocol(lambda reply: AuthenticationFailed("h:1", reply, username=USER))
    first, second = loop.create_future(), loop.create_future()
    proto.send(("GET", "a"), first)
    proto.login(USER_PASSWORD, USER)
    proto.send(("GET", "b"), second)
    assert proto.data_to_send() == (
        encode_command([b"AUTH", USER.encode(), USER_PASSWORD.encode()])
        + encode_command([b"GET", b"a"])
        + encode_command([b"GET", b"b"])
    )
    assert proto.waiting == 2  # the login's reply is nobody's
    with pytest.raises(AuthenticationFailed, match="refused the credentials of user 'geo'"):
        proto.receive_data(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH x\r\n")
    for future in (first, second):
        with pytest.raises(AuthenticationFailed):
            future.result()
    assert proto.waiting == 0


async def test_a_command_refused_for_want_of_a_login_says_so() -> None:
    proto = CommandProtocol(lambda reply: AuthenticationFailed("h:1", reply))
    future = asyncio.get_running_loop().create_future()
    proto.send(("PING",), future)
    proto.receive_data(b"-NOAUTH Authentication required.\r\n")
    with pytest.raises(AuthenticationFailed, match="requires authentication"):
        future.result()


def test_channels_refused_for_want_of_a_login_stay_wanted() -> None:
    proto = SubscriberProtocol()
    proto.subscribe(["a", "b"])
    restore = proto.reset(password=WRONG_PASSWORD, username=USER)
    proto.data_to_send()
    proto.receive_data(b"-WRONGPASS invalid username-password pair\r\n-NOAUTH Authentication required.\r\n")
    events = proto.events_received()
    assert [(e.kind, (e.error or "").split()[0]) for e in events if isinstance(e, Acknowledged)] == [
        ("auth", "WRONGPASS"),
        ("subscribe", "NOAUTH"),
    ]
    assert restore and proto.channels == {"a", "b"}
    proto.subscribe(["c"])  # unlike a channel refused because it lives elsewhere
    proto.receive_data(b"-MOVED 1 h:2\r\n")
    proto.events_received()
    assert "c" not in proto.channels


def test_addresses_read_every_form_and_never_show_a_password() -> None:
    node = NodeAddress.parse(f"rediss://{USER}:p%40ss%3Aword@redis.example:6380/0", tls_ca="/ca.pem")
    assert (node.host, node.port, node.username, node.password, node.tls, node.tls_ca) == (
        "redis.example",
        6380,
        USER,
        "p@ss:word",
        True,
        "/ca.pem",
    )
    seed = NodeAddress.parse(f"{USER}:{USER_PASSWORD}@10.0.0.5:7000")
    assert (seed.host, seed.port, seed.password, seed.tls) == ("10.0.0.5", 7000, USER_PASSWORD, False)
    assert NodeAddress.parse("10.0.0.5:7000") == NodeAddress("10.0.0.5", 7000)
    assert seed.at("10.0.0.6", 7001) == replace(seed, host="10.0.0.6", port=7001)
    assert_hidden(repr(seed) + seed.name)
    for bad in (f"{USER}:{USER_PASSWORD}@10.0.0.5", f"redis://{USER}:{USER_PASSWORD}@h:port", "http://h:1"):
        with pytest.raises(ValueError) as caught:
            NodeAddress.parse(bad)
        assert_hidden(str(caught.value))
    assert without_credentials(f"redis://{USER}:{USER_PASSWORD}@h:1/0") == "redis://h:1/0"
    assert without_credentials(f"{USER}:{USER_PASSWORD}@h:1") == "h:1"
