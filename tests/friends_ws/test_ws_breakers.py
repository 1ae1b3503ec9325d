"""The friends tier's circuit breakers: a dead Redis fast-fails location updates with an
``unavailable`` error (the connection stays), and the breaker closes when Redis returns."""

from __future__ import annotations

import asyncio

import aiohttp

from deploy.stack import redis_nodes
from deploy.stack.binaries import ensure_binaries
from friends_ws.keys import services_key
from geo_common.breaker import State
from tests.friends_ws.ws_helpers import SF, WAIT, new_user
from tests.pubsub.pubsub_helpers import url


async def test_redis_down_updates_fail_fast_then_recover(servers, connect, throwaway_redis) -> None:  # type: ignore[no-untyped-def]
    node = await throwaway_redis()
    server = await servers(redis_url=url(node), breaker_failures=2, breaker_reset_s=0.5, pubsub_probe_s=0.3)
    breaker = server.app[services_key].cache.breakers[0]
    alice = await connect(server, new_user())
    await alice.location(*SF)
    await alice.expect("init")

    await asyncio.to_thread(redis_nodes.stop, node)
    for i in range(4):
        await alice.location(SF[0] + i / 1e5, SF[1])
        await alice.expect("error", code="unavailable")
    assert breaker.state is State.OPEN and breaker.rejected >= 1
    async with aiohttp.ClientSession() as http, http.get(f"{server.http}/metrics") as resp:
        text = await resp.text()
    assert 'geo_circuit_breaker_state{dependency="redis-cache",state="open"} 1.0' in text
    assert 'geo_circuit_breaker_state{dependency="pubsub",state="closed"} 1.0' in text
    assert 'geo_circuit_breaker_state{dependency="postgres-primary",state="closed"} 1.0' in text

    await asyncio.to_thread(redis_nodes.start, ensure_binaries(), node)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:  # after the cool-down one update probes Redis and closes the breaker
        await alice.location(SF[0], SF[1] + 1e-5)
        errors = [f for f in await alice.quiet(0.2) if f.get("type") == "error"]
        if not errors and breaker.state is State.CLOSED:
            break
        assert loop.time() < deadline, (errors, breaker)
    assert alice.ws.state.name == "OPEN"
