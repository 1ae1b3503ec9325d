"""Friendship by consent over HTTP: requests, answers, lists and their pages, blocks, limits,
and who may call what.

The routes are served by the real geo-api application (role ``all``) on port 0 over the
session's database; what the API publishes is read back from the real pub/sub of the
session's namespace (docs/friends-protocol.md, "Friendships over HTTP").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestServer

from geo_common.presence import control_channel, location_channel
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from location_api.app import create_app
from pubsub import PubSub, create_pubsub
from tests.conftest import TIMEOUT_FACTOR
from tests.friends_ws.ws_helpers import new_user

ADMIN = 0  #: ``as_`` of an admin's call (user 1 with the admin role)
NOBODY = -1  #: ``as_`` of a call without a token


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def problem(self) -> str:
        """The problem slug of an error answer (and that it is a problem document)."""
        assert self.headers["Content-Type"].startswith("application/problem+json"), self
        return str(self.body["type"]).removeprefix("/problems/")

    @property
    def fields(self) -> list[str]:
        return [e["field"] for e in self.body["errors"]]


@dataclass
class Users:
    """A client of the user routes that reads its own writes (it sends back the last token)."""

    http: aiohttp.ClientSession
    base: str
    settings: Settings
    token: str | None = field(default=None)

    def auth(self, as_: int) -> dict[str, str]:
        if as_ == NOBODY:
            return {}
        role = Role.ADMIN if as_ == ADMIN else Role.USER
        return {"Authorization": f"Bearer {mint_token(self.settings.jwt_secret, as_ or 1, role)}"}

    async def call(
        self, method: str, path: str, as_: int, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        sent = {**self.auth(as_), **(headers or {})}
        if method == "GET" and self.token is not None:
            sent.setdefault("X-Consistency-Token", self.token)
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        async with self.http.request(method, self.base + path, headers=sent, data=data) as resp:
            raw = await resp.read()
            answer = Answer(resp.status, orjson.loads(raw) if raw else None, dict(resp.headers))
        if "X-Consistency-Token" in answer.headers:
            self.token = answer.headers["X-Consistency-Token"]
        assert answer.status < 500, answer
        return answer

    async def ask(self, a: int, b: int, as_: int | None = None) -> Answer:
        return await self.call("POST", f"/v1/users/{a}/friends/{b}", a if as_ is None else as_)

    async def ids(self, user: int, state: str = "friends", **query: str) -> list[int]:
        """The user ids of a whole list, every page followed."""
        found: list[int] = []
        cursor: str | None = None
        while True:
            extra = {**query, **({"cursor": cursor} if cursor else {})}
            path = f"/v1/users/{user}/friends?state={state}" + "".join(f"&{k}={v}" for k, v in extra.items())
            answer = await self.call("GET", path, user)
            assert answer.status == 200, answer
            found += [item["user_id"] for item in answer.body[state]]
            cursor = answer.body["next"]
            if cursor is None:
                return found


UsersFactory = Callable[..., Awaitable[Users]]


@pytest.fixture
async def start_users(settings: Settings) -> AsyncIterator[UsersFactory]:
    """``await start_users(**settings_overrides)``: geo-api (role all) and a client of it."""
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(**overrides: Any) -> Users:
        server = TestServer(create_app(replace(settings, api_role="all", **overrides)), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        sessions.append(aiohttp.ClientSession())
        return Users(sessions[-1], str(server.make_url("")).rstrip("/"), settings)

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def users(start_users: UsersFactory) -> Users:
    return await start_users()


@pytest.fixture
async def primary(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.pg_primary)
    yield conn
    await conn.close()


class Heard:
    """What the API publishes on some channels, read from the session's real pub/sub."""

    def __init__(self, settings: Settings) -> None:
        self.namespace = settings.redis_namespace
        self.region = RegionMap.from_settings(settings).default
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.bus: PubSub = create_pubsub(
            self.region.pubsub_backend,
            self.region.pubsub_nodes,
            on_message=lambda channel, data: self.queue.put_nowait((channel, orjson.loads(data))),
        )

    def control(self, user_id: int) -> str:
        return control_channel(self.namespace, self.region.name, user_id)

    def location(self, user_id: int) -> str:
        return location_channel(self.namespace, self.region.name, user_id)

    async def next(self) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.queue.get(), 5 * TIMEOUT_FACTOR)


@pytest.fixture
async def heard(settings: Settings) -> AsyncIterator[Heard]:
    listener = Heard(settings)
    await listener.bus.start()
    yield listener
    await listener.bus.close()


async def test_a_request_then_the_answer_makes_friends(users: Users, primary: asyncpg.Connection) -> None:
    a, b = new_user(), new_user()
    assert (await users.call("PUT", f"/v1/users/{a}/profile", a, body={"display_name": "Ada"})).status == 200
    assert (await users.call("PUT", f"/v1/users/{b}/profile", b, body={"display_name": "Bo"})).status == 200
    asked = await users.ask(a, b)
    assert asked.status == 202, asked
    assert asked.body == {"user_id": a, "friend_id": b, "state": "requested"}
    assert asked.headers["X-Consistency-Token"] and asked.headers["Location"].startswith(f"/v1/users/{a}/friends")
    again = await users.ask(a, b)
    assert (again.status, again.body) == (202, asked.body)
    assert await primary.fetchval("SELECT count(*) FROM friend_requests WHERE from_id = $1", a) == 1

    # b sees who asked, with the name a chose to show; a's own list shows no name of b's.
    incoming = (await users.call("GET", f"/v1/users/{b}/friends?state=incoming", b)).body
    assert [(i["user_id"], i["display_name"]) for i in incoming["incoming"]] == [(a, "Ada")]
    assert incoming["next"] is None
    (outgoing,) = (await users.call("GET", f"/v1/users/{a}/friends?state=outgoing", a)).body["outgoing"]
    assert set(outgoing) == {"user_id", "since"} and outgoing["user_id"] == b
    assert await users.ids(a) == [] and await users.ids(b) == []  # nothing shared before the answer

    accepted = await users.ask(b, a)
    assert (accepted.status, accepted.body) == (201, {"user_id": b, "friend_id": a, "state": "friends"})
    friends_of_a = (await users.call("GET", f"/v1/users/{a}/friends", a)).body["friends"]
    assert [(f["user_id"], f["display_name"], f["sharing"]) for f in friends_of_a] == [(b, "Bo", "exact")]
    assert await users.ids(b) == [a]
    for user in (a, b):
        assert await users.ids(user, "incoming") == [] and await users.ids(user, "outgoing") == []
    repeated = await users.ask(a, b)
    assert (repeated.status, repeated.body["state"]) == (200, "friends")


async def test_an_admin_makes_friends_directly(users: Users) -> None:
    c, d = new_user(), new_user()
    made = await users.ask(c, d, as_=ADMIN)
    assert (made.status, made.body) == (201, {"user_id": c, "friend_id": d, "state": "friends"})
    assert (await users.ask(c, d, as_=ADMIN)).status == 200
    assert await users.ids(c) == [d] and await users.ids(d) == [c]


async def test_withdraw_decline_and_unfriend_each_say_what_ended(users: Users) -> None:
    a, b, c, d = (new_user() for _ in range(4))
    await users.ask(a, b)
    await users.ask(c, a)
    await users.ask(a, d, as_=ADMIN)
    for user, other, removed in [(a, b, "request_withdrawn"), (a, c, "request_declined"), (a, d, "friendship")]:
        ended = await users.call("DELETE", f"/v1/users/{user}/friends/{other}", user)
        assert (ended.status, ended.body) == (200, {"user_id": user, "friend_id": other, "removed": removed})
        again = await users.call("DELETE", f"/v1/users/{user}/friends/{other}", user)
        assert (again.status, again.body["removed"]) == (200, "nothing")
    for state in ("friends", "incoming", "outgoing"):
        assert await users.ids(a, state) == []
    assert await users.ids(c, "outgoing") == []  # declined: gone from the asker's list too
    selfish = await users.call("DELETE", f"/v1/users/{a}/friends/{a}", a)
    assert (selfish.status, selfish.fields) == (400, ["friend_id"])


async def test_every_list_pages_by_user_id_with_opaque_cursors(users: Users) -> None:
    owner = new_user()
    friends = [new_user() for _ in range(5)]
    for friend in friends:
        assert (await users.ask(owner, friend, as_=ADMIN)).status == 201
    pages: list[list[int]] = []
    cursors: list[str] = []
    while True:
        after = f"&cursor={cursors[-1]}" if cursors else ""
        answer = await users.call("GET", f"/v1/users/{owner}/friends?limit=2{after}", owner)
        assert answer.status == 200, answer
        pages.append([f["user_id"] for f in answer.body["friends"]])
        if answer.body["next"] is None:
            break
        cursors.append(answer.body["next"])
    assert pages == [sorted(friends)[0:2], sorted(friends)[2:4], sorted(friends)[4:]]
    first_cursor = cursors[0]
    assert await users.ids(owner, limit="5") == sorted(friends)  # exactly one page: next is null

    someone = friends[0]
    refused = {
        "state=pending": "state",
        "limit=0": "limit",
        "limit=501": "limit",
        "limit=two": "limit",
        "limit=1&limit=2": "limit",
        "cursor=": "cursor",
        "cursor=bm90LWEtY3Vyc29y": "cursor",  # base64 of "not-a-cursor"
        f"cursor={first_cursor}x": "cursor",
        f"state=incoming&cursor={first_cursor}": "cursor",  # another list's
        "colour=blue": "colour",
    }
    for query, name in refused.items():
        answer = await users.call("GET", f"/v1/users/{owner}/friends?{query}", owner)
        assert answer.status == 400 and name in answer.fields, (query, answer)
    # A cursor of another user's list, used by them or an admin.
    stolen = await users.call("GET", f"/v1/users/{someone}/friends?cursor={first_cursor}", ADMIN)
    assert (stolen.status, stolen.problem, stolen.fields) == (400, "invalid-cursor", ["cursor"])


async def test_blocks_end_everything_and_drop_requests_silently(users: Users, heard: Heard) -> None:
    a, b, c = new_user(), new_user(), new_user()
    await users.ask(a, b, as_=ADMIN)
    blocked = await users.call("PUT", f"/v1/users/{a}/blocks/{b}", a)
    assert (blocked.status, blocked.body) == (200, {"user_id": a, "blocked_id": b, "removed": "friendship"})
    assert await users.ids(a) == [] and await users.ids(b) == []
    listed = (await users.call("GET", f"/v1/users/{a}/blocks", a)).body
    assert [x["user_id"] for x in listed["blocks"]] == [b] and listed["next"] is None

    # b's request is answered like any other and goes nowhere: stored nowhere, told nobody.
    await heard.bus.subscribe([heard.control(a)])
    dropped = await users.ask(b, a)
    assert (dropped.status, dropped.body) == (202, {"user_id": b, "friend_id": a, "state": "requested"})
    assert await users.ids(a, "incoming") == [] and await users.ids(b, "outgoing") == []
    assert (await users.call("PUT", f"/v1/users/{c}/profile", c, body={"display_name": "Cy"})).status == 200
    assert (await users.ask(c, a)).status == 202
    # The first message a's connections hear is c's request: b's left no trace before it.
    assert await heard.next() == (heard.control(a), {"t": "request", "u": c, "name": "Cy"})
    assert (await users.ask(c, a)).status == 202  # a repeat is not announced again ...
    d = new_user()
    assert (await users.ask(d, a)).status == 202  # ... so the next message is d's
    assert await heard.next() == (heard.control(a), {"t": "request", "u": d, "name": None})

    for asker, as_ in [(a, a), (a, ADMIN), (b, ADMIN)]:
        refused = await users.ask(asker, b if asker == a else a, as_=as_)
        assert (refused.status, refused.problem) == (409, "blocked"), refused
    declined = await users.call("PUT", f"/v1/users/{a}/blocks/{c}", a)  # c's request ends with the block
    assert declined.body["removed"] == "request_declined"
    assert await users.ids(a, "incoming") == [d] and await users.ids(c, "outgoing") == []

    unblocked = await users.call("DELETE", f"/v1/users/{a}/blocks/{b}", a)
    assert (unblocked.status, unblocked.body) == (200, {"user_id": a, "blocked_id": b, "unblocked": True})
    assert (await users.call("DELETE", f"/v1/users/{a}/blocks/{b}", a)).body["unblocked"] is False
    assert (await users.ask(b, a)).status == 202
    assert await users.ids(a, "incoming") == [b, d]
    assert (await users.ask(a, b)).status == 201
    assert await users.ids(a) == [b]
    selfish = await users.call("PUT", f"/v1/users/{a}/blocks/{a}", a)
    assert (selfish.status, selfish.fields) == (400, ["blocked_id"])


async def test_ending_nothing_is_still_announced_to_both(users: Users, heard: Heard) -> None:
    a, b = new_user(), new_user()
    await heard.bus.subscribe([heard.location(a), heard.location(b), heard.control(a), heard.control(b)])
    nothing = await users.call("DELETE", f"/v1/users/{a}/friends/{b}", a)
    assert (nothing.status, nothing.body["removed"]) == (200, "nothing")
    got = [await heard.next() for _ in range(4)]
    assert got == [
        (heard.location(a), {"t": "access", "u": a, "v": b, "l": "removed"}),
        (heard.location(b), {"t": "access", "u": b, "v": a, "l": "removed"}),
        (heard.control(a), {"t": "friend_removed", "u": b}),
        (heard.control(b), {"t": "friend_removed", "u": a}),
    ]


async def test_request_and_friend_limits(start_users: UsersFactory) -> None:
    users = await start_users(max_pending_requests=2, max_friends=2)
    a = new_user()
    asked = [new_user() for _ in range(3)]
    assert [(await users.ask(a, x)).status for x in asked[:2]] == [202, 202]
    over = await users.ask(a, asked[2])
    assert (over.status, over.problem, over.fields) == (409, "request-limit", ["id"])
    assert await users.ids(a, "outgoing") == sorted(asked[:2])
    # Both accept: a has the most friends allowed.
    assert [(await users.ask(x, a)).status for x in asked[:2]] == [201, 201]
    late = new_user()
    assert (await users.ask(late, a)).status == 202  # stored: late has room ...
    full = await users.ask(a, late)  # ... but accepting would give a a third friend
    assert (full.status, full.problem) == (409, "friend-limit")
    assert (await users.ask(a, new_user())).status == 409  # nor may a ask anyone new
    assert sorted(await users.ids(a)) == sorted(asked[:2]) and await users.ids(a, "incoming") == [late]
    assert (await users.call("DELETE", f"/v1/users/{a}/friends/{asked[0]}", a)).body["removed"] == "friendship"
    assert (await users.ask(a, late)).status == 201  # room again


#: Every user route, with a body where it takes one: (method, path, body).
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/users/{a}/friends/{b}", None),
    ("DELETE", "/v1/users/{a}/friends/{b}", None),
    ("GET", "/v1/users/{a}/friends", None),
    ("GET", "/v1/users/{a}/friends?state=incoming", None),
    ("GET", "/v1/users/{a}/friends?state=outgoing", None),
    ("PUT", "/v1/users/{a}/friends/{b}/sharing", {"sharing": "coarse"}),
    ("PUT", "/v1/users/{a}/blocks/{b}", None),
    ("DELETE", "/v1/users/{a}/blocks/{b}", None),
    ("GET", "/v1/users/{a}/blocks", None),
    ("PUT", "/v1/users/{a}/profile", {"display_name": "Ada"}),
    ("GET", "/v1/users/{a}/profile", None),
    ("GET", "/v1/users/{a}/locations/export", None),
    ("DELETE", "/v1/users/{a}/locations", None),
]


@pytest.mark.parametrize(("method", "template", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_only_the_user_or_an_admin_may_call_a_user_route(
    users: Users, settings: Settings, method: str, template: str, body: Any
) -> None:
    a, b, mallory = new_user(), new_user(), new_user()
    path = template.format(a=a, b=b)
    forged = {"Authorization": f"Bearer {mint_token(settings.jwt_secret + '-not-ours', a)}"}
    garbage = {"Authorization": "Bearer not.a.token"}
    for as_, headers in [(NOBODY, None), (NOBODY, forged), (NOBODY, garbage)]:
        refused = await users.call(method, path, as_, body=body, headers=headers)
        assert (refused.status, refused.problem) == (401, "not-authenticated"), refused
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    refused = await users.call(method, path, mallory, body=body)
    assert (refused.status, refused.problem) == (403, "forbidden"), refused
    # Nothing of the other user leaked or changed: a's own view is that of a new user.
    assert await users.ids(a) == [] and await users.ids(a, "outgoing") == []
    # The user themself, and an admin, are answered (sharing with a non-friend is a 404).
    for as_ in (a, ADMIN):
        allowed = await users.call(method, path, as_, body=body)
        assert allowed.status in ((404,) if template.endswith("/sharing") else (200, 201, 202)), allowed
    bad_id = await users.call(method, template.format(a=0, b=b), a, body=body)
    assert (bad_id.status, bad_id.fields) == (400, ["id"])
