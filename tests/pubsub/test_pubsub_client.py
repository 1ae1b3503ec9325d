"""The pipelined command connection: the sans-I/O core, and against real Redis."""

from __future__ import annotations

import asyncio

import pytest

from deploy.stack import redis_nodes
from deploy.stack.binaries import ensure_binaries
from geo_common.settings import Settings
from pubsub.client import CommandProtocol, ConnectionLost, RedisClient, ReplyError
from tests.pubsub.pubsub_helpers import RedisFactory, url


async def test_replies_complete_futures_in_order() -> None:
    loop = asyncio.get_running_loop()
    proto = CommandProtocol()
    first, second, third = loop.create_future(), loop.create_future(), loop.create_future()
    proto.send(("SET", "k", b"v", "EX", 10), first)
    proto.send(("GET", "k"), second)
    proto.send(("INCR", "k"), third)
    assert proto.data_to_send() == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n10\r\n"
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
    )
    proto.receive_data(b"+OK\r\n$1\r\nv")
    assert first.result() == b"OK" and not second.done()
    proto.receive_data(b"\r\n-ERR value is not an integer\r\n")
    assert second.result() == b"v"
    with pytest.raises(ReplyError, match="not an integer"):
        third.result()
    assert proto.waiting == 0


async def test_a_lost_connection_fails_what_is_in_flight() -> None:
    loop = asyncio.get_running_loop()
    proto = CommandProtocol()
    future = loop.create_future()
    proto.send(("PING",), future)
    proto.fail(ConnectionLost("gone"))
    with pytest.raises(ConnectionLost):
        future.result()


async def test_commands_of_one_iteration_share_one_write(settings: Settings) -> None:
    client = RedisClient.from_url(settings.redis_url)
    key = f"{settings.redis_namespace}:client:counter"
    try:
        await client.execute("DEL", key)
        results = await asyncio.gather(*(client.execute("INCR", key) for _ in range(500)))
        assert sorted(results) == list(range(1, 501))
        assert await client.execute("MGET", key, f"{key}:absent") == [b"500", None]
        with pytest.raises(ReplyError):
            await client.execute("LPUSH", key, "x")  # WRONGTYPE
        assert client.connections == 1
    finally:
        await client.execute("DEL", key)
        await client.close()


async def test_the_client_reconnects_after_a_restart(throwaway_redis: RedisFactory) -> None:
    node = await throwaway_redis()
    client = RedisClient.from_url(url(node), connect_timeout_s=1.0)
    try:
        assert await client.execute("SET", "k", "1") == b"OK"
        await asyncio.to_thread(redis_nodes.stop, node)
        with pytest.raises(ConnectionLost):
            await client.execute("GET", "k", retries=0)
        await asyncio.to_thread(redis_nodes.start, ensure_binaries(), node)
        assert await client.execute("GET", "k") is None  # a new, empty server
        assert client.connections == 2
    finally:
        await client.close()


async def _fake_server(replies: int, delay_s: float = 0.0) -> tuple[asyncio.Server, int]:
    """A server that answers its first ``replies`` commands ``+OK``, each ``delay_s`` after
    the one before, and then nothing."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        while chunk := await reader.read(65536):
            count = chunk.count(b"*")  # one array header per command (no '*' in these arguments)
            while count and answered < replies:
                await asyncio.sleep(delay_s)
                writer.write(b"+OK\r\n")
                answered, count = answered + 1, count - 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_server_that_stops_answering_is_dropped() -> None:
    server, port = await _fake_server(replies=1)
    client = RedisClient.from_url(f"redis://127.0.0.1:{port}", command_timeout_s=0.3)
    try:
        assert await client.execute("PING", retries=0) == b"OK"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionLost, match="no reply within 0.3 s"):
            await client.execute("PING", retries=0)
        assert loop.time() - started >= 0.3  # never before a whole period without a reply
    finally:
        await client.close()
        server.close()


async def test_a_slow_server_that_answers_is_not_dropped() -> None:
    """Replies keep coming, each within the timeout, though the last one waits longer in all."""
    server, port = await _fake_server(replies=4, delay_s=0.2)
    client = RedisClient.from_url(f"redis://127.0.0.1:{port}", command_timeout_s=0.5)
    try:
        replies = await asyncio.gather(*(client.execute("PING", retries=0) for _ in range(4)))
        assert replies == [b"OK"] * 4  # the fourth ~0.8 s after it was sent
        assert client.connections == 1
    finally:
        await client.close()
        server.close()
