"""geo-loadgen's set-up makes friends by consent: each of the population's friendships is
asked by one user and accepted by the other, with their own tokens, one friendship at a time
per worker, so that no user passes the API's limit of requests waiting.

The API is the real one, on port 0, over a database of this module's own with a limit of
:data:`PENDING` requests waiting: fewer than the friends of the first user of each community,
so that asking everything first would be refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from geo_common.settings import Settings
from geo_common.tokens import mint_token
from loadgen.friends_options import FriendsOptions
from loadgen.friendships import create_friendships
from loadgen.graph import GraphKind, Population, build_population
from loadgen.stats import Recorder
from loadgen.user_tokens import SigningKey
from location_api.app import create_app
from tests.location_api.conftest import drop_database, small_database

#: The most requests a user may have waiting, and the set-up's workers: as many.
PENDING = 3
#: Users with this many friends each (communities of six: the first asks five).
FRIENDS = 5
CONSISTENCY = "X-Consistency-Token"


@pytest.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    """The API (base URL, settings) over a database of this module's own."""
    small = await small_database(settings, "setup", places=10)
    small = replace(small, api_role="all", max_pending_requests=PENDING)
    server = TestServer(create_app(small), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), small
    await server.close()
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


def options(url: str, secret: str, first_id: int) -> FriendsOptions:
    return FriendsOptions(
        api=url,
        ws="ws://127.0.0.1:1",
        auth=SigningKey(path="signing.key", key=secret),
        users=12,
        friends_per_user=FRIENDS,
        graph=GraphKind.COMMUNITIES,
        first_user_id=first_id,
        setup_concurrency=PENDING,
    )


def population_of(opts: FriendsOptions) -> Population:
    return build_population(opts.users, opts.friends_per_user, opts.graph, first_id=opts.first_user_id, seed=opts.seed)


async def relations(url: str, secret: str, user_id: int, consistency: str | None) -> dict[str, set[int]]:
    """What ``user_id`` sees with their own token: friends, and requests either way, by user id."""
    headers = {"Authorization": f"Bearer {mint_token(secret, user_id, ttl_s=60)}"}
    if consistency is not None:
        headers[CONSISTENCY] = consistency  # read what the set-up wrote, whichever copy answers
    seen: dict[str, set[int]] = {}
    async with aiohttp.ClientSession() as http:
        for state in ("friends", "outgoing", "incoming"):
            url_ = f"{url}/v1/users/{user_id}/friends"
            async with http.get(url_, params={"state": state}, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                body: dict[str, Any] = await resp.json()
            assert body["next"] is None  # one page: a dozen users
            seen[state] = {int(entry["user_id"]) for entry in body[state]}
    return seen


async def last_write(url: str, secret: str, a: int, b: int) -> str | None:
    """Ask again for a friendship the set-up made (200): the consistency token of a write
    after every write of the set-up."""
    headers = {"Authorization": f"Bearer {mint_token(secret, a, ttl_s=60)}"}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/v1/users/{a}/friends/{b}", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["state"] == "friends"
        return resp.headers.get(CONSISTENCY)


async def test_set_up_makes_every_friendship_by_request_and_acceptance_and_reruns_cleanly(
    api: tuple[str, Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    url, settings = api
    opts = options(url, settings.jwt_secret, first_id=7_000_000)
    population = population_of(opts)
    edges = population.edges()
    assert max(sum(1 for a, _ in edges if a == u) for u in population.friends) > PENDING  # asking first would fail

    recorder = Recorder()
    await create_friendships(opts, population, recorder)
    assert not recorder.counters, dict(recorder.counters)
    assert f"friends: set-up {len(edges)} friendships in " in capsys.readouterr().out

    token = await last_write(url, settings.jwt_secret, *edges[-1])
    for user_id, friends in population.friends.items():
        seen = await relations(url, settings.jwt_secret, user_id, token)
        assert seen == {"friends": set(friends), "outgoing": set(), "incoming": set()}, user_id

    again = Recorder()
    await create_friendships(opts, population, again)  # a re-run over the same users: 200 twice each
    assert not again.counters, dict(again.counters)
    token = await last_write(url, settings.jwt_secret, *edges[0])
    for user_id, friends in population.friends.items():
        assert (await relations(url, settings.jwt_secret, user_id, token))["friends"] == set(friends)


async def test_a_refused_request_is_one_error_and_is_not_followed_by_an_acceptance(api: tuple[str, Settings]) -> None:
    url, settings = api
    # Signed with another key: every request is refused (401), and no acceptance follows it.
    opts = options(url, "another-key-" + "x" * 32, first_id=8_000_000)
    population = population_of(opts)
    recorder = Recorder()
    await create_friendships(opts, population, recorder)
    edges = len(population.edges())
    assert dict(recorder.counters) == {"setup_status_401": edges, "errors": edges}


async def test_set_up_signs_with_the_deployments_issuer_and_audience(settings: Settings) -> None:
    own = replace(settings, api_role="all", jwt_issuer="acme-geo", jwt_audience="acme-friends")
    server = TestServer(create_app(own), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        opts = options(url, own.jwt_secret, first_id=9_000_000)
        recorder = Recorder()
        acme = SigningKey(path="signing.key", issuer="acme-geo", audience="acme-friends", key=own.jwt_secret)
        await create_friendships(replace(opts, auth=acme), population_of(opts), recorder)
        assert not recorder.counters, dict(recorder.counters)
        # With the default issuer the same deployment refuses every request.
        refused = Recorder()
        await create_friendships(replace(opts, first_user_id=9_100_000), population_of(opts), refused)
        assert refused.counters["errors"] == len(population_of(opts).edges())
    finally:
        await server.close()
