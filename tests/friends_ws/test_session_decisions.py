"""A session's own decisions, driven without a socket.

Each test opens a real :class:`~friends_ws.session.Session` in the real process parts (the
app's services on the shared PostgreSQL and Redis, no HTTP site) with a :class:`RecordingLink`
in place of the connection: the seam is :class:`~friends_ws.ports.SessionLink`, the
session's only way out. A friend's location arrives as the broker hands it on (through
:meth:`~friends_ws.subscriptions.Subscriptions.on_message`), a change of friendship or
sharing as a control message; what the session decides shows in the frames it queued. The
end-to-end tests (test_ws_*.py) keep covering the same rules over real sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web

from friends_ws.app import create_app
from friends_ws.clock import now_ms
from friends_ws.hub import Hub
from friends_ws.keys import hub_key, services_key
from friends_ws.nearby import coarsen
from friends_ws.protocol import TOKEN_EXPIRED
from friends_ws.services import Services
from friends_ws.session import Session
from geo_common import consent_db, friends_db
from geo_common.presence import Location, encode_location
from geo_common.control_messages import FriendAdded, FriendRemoved, FriendShares, SharingChanged
from geo_common.settings import Settings
from geo_index import haversine_m
from tests.friends_ws.ws_helpers import NEAR, SF, new_user

#: Farther from SF than the default radius (8,047 m) plus the margin (200 m): about 8.9 km.
FAR = (37.8549, -122.4194)


class RecordingLink:
    """The session's link without a socket: it records the frames queued and how it was closed."""

    def __init__(self) -> None:
        self.closed = False
        self.frames: list[dict[str, Any]] = []
        self.closed_with: tuple[int, bytes] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def send(self, frame: bytes) -> None:
        if not self.closed:
            self.frames.append(orjson.loads(frame))

    def send_friend(self, friend_id: int, frame: bytes) -> None:
        self.send(frame)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.add(asyncio.get_running_loop().create_task(coro))

    def close(self, code: int, reason: bytes) -> None:
        self.closed, self.closed_with = True, (code, reason)

    def stop(self) -> None:
        self.closed = True
        for task in self._tasks:
            task.cancel()

    async def settle(self) -> None:
        """Wait for the background work the session started (grants being confirmed, ...)."""
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending)

    def take(self) -> list[dict[str, Any]]:
        """The frames queued since the last call."""
        frames, self.frames = self.frames, []
        return frames


@dataclass
class Process:
    """The app's parts, started without an HTTP site, and the sessions a test opened."""

    services: Services
    hub: Hub
    opened: list[Session]

    async def open(self, user_id: int) -> tuple[Session, RecordingLink]:
        link = RecordingLink()
        session = Session(self.services, link, user_id)
        self.opened.append(session)
        await session.open()
        return session, link

    async def at(self, session: Session, link: RecordingLink, point: tuple[float, float]) -> dict[str, Any]:
        """The user sends their first location; returns its ``init`` frame (a ``pace`` follows)."""
        await session.receive(orjson.dumps({"type": "location", "latitude": point[0], "longitude": point[1]}).decode())
        frames = link.take()
        assert [f["type"] for f in frames] == ["init", "pace"]
        return frames[0]

    def heard(self, friend: int, point: tuple[float, float], updated_at: int, *, radius_m: float = 0.0) -> None:
        """A location of ``friend`` arrives on their location channel (from a socket looking
        within ``radius_m``, metres, when given; else an upload)."""
        location = Location(friend, *point, updated_at, live=radius_m > 0, radius_m=radius_m)
        self.hub.subscriptions.on_message(friend, encode_location(location))


@pytest.fixture
async def process(ws_settings: Settings) -> AsyncIterator[Process]:
    app = create_app(ws_settings)
    runner = web.AppRunner(app)
    await runner.setup()  # the backends of the app's cleanup context, no socket
    local = Process(app[services_key], app[hub_key], [])
    try:
        yield local
    finally:
        for session in local.opened:
            await session.close()
        await runner.cleanup()


Pair = tuple[int, Session, RecordingLink]


@pytest.fixture
def viewer(
    process: Process, befriend: Callable[..., Awaitable[None]], primary: asyncpg.Connection
) -> Callable[..., Awaitable[Pair]]:
    """``await viewer(shares=...)``: a new friend b who shares ``shares`` with a, and a's
    session at SF with b shown at NEAR (at the precision b shares).

    Returns (b, a's session, its link), with the link's frames taken.
    """

    async def make(shares: str = "exact") -> Pair:
        a, b = new_user(), new_user()
        await befriend((a, b))
        await friends_db.set_friend_sharing(primary, b, a, shares)
        session, link = await process.open(a)
        await process.at(session, link, SF)
        process.heard(b, NEAR, now_ms())
        assert [f["type"] for f in link.take()] == ["friend_location"]
        return b, session, link

    return make


def point(frame: dict[str, Any]) -> tuple[float, float]:
    return frame["latitude"], frame["longitude"]


async def test_an_exact_friend_in_range_is_shown_where_they_are(process: Process, befriend: Any) -> None:
    a, b = new_user(), new_user()
    await befriend((a, b))
    session, link = await process.open(a)
    assert (await process.at(session, link, SF))["friends"] == []  # b has not shared anything yet
    process.heard(b, NEAR, now_ms())
    [frame] = link.take()
    assert frame["type"] == "friend_location" and frame["user_id"] == b and point(frame) == NEAR
    assert frame["distance_m"] == round(haversine_m(*SF, *NEAR), 1)


async def test_a_watcher_whose_socket_died_unannounced_stops_quickening_the_user(
    process: Process, befriend: Any, ws_settings: Settings
) -> None:
    """Bob's instance crashed: no word that his socket closed. Once he has been silent longer
    than a connected client may be (1.5 slow intervals), he is watching nobody."""
    a, b = new_user(), new_user()
    await befriend((a, b))
    session, link = await process.open(a)
    await process.at(session, link, SF)
    slow_ms = ws_settings.pace_slow_s * 1000
    process.heard(b, NEAR, now_ms() - slow_ms, radius_m=8047.0)
    assert sorted(f["type"] for f in link.take()) == ["friend_location", "pace"]
    await session.receive(orjson.dumps({"type": "location", "latitude": SF[0], "longitude": SF[1]}).decode())
    assert link.take() == []  # heard a slow interval ago: may still be there
    session.following.prune_watchers(process.services.config.pace, now_ms() + slow_ms)
    assert link.take() == [{"type": "pace", "interval_s": ws_settings.pace_slow_s}]


async def test_a_friend_who_shares_coarsely_is_shown_at_the_centre_of_their_cell(
    process: Process, viewer: Any, primary: asyncpg.Connection
) -> None:
    b, session, link = await viewer()
    await friends_db.set_friend_sharing(primary, b, session.user_id, "coarse")
    session.control(FriendShares(b, "coarse"))  # a restriction: applied at once, no read
    [again] = link.take()
    assert again["type"] == "friend_location" and point(again) == coarsen(*NEAR)
    assert again["distance_m"] == round(haversine_m(*SF, *coarsen(*NEAR)), 1)
    moved = (NEAR[0] + 0.004, NEAR[1])
    process.heard(b, moved, now_ms() + 1)
    assert [point(f) for f in link.take()] == [coarsen(*moved)]


async def test_exact_again_only_once_the_primary_says_so(
    process: Process, viewer: Any, primary: asyncpg.Connection
) -> None:
    b, session, link = await viewer(shares="coarse")
    session.control(FriendShares(b, "exact"))  # the message claims more than the database holds
    await link.settle()
    assert link.take() == [] and session.following.seen(b) == "coarse"
    await friends_db.set_friend_sharing(primary, b, session.user_id, "exact")
    session.control(FriendShares(b, "exact"))
    await link.settle()
    assert [point(f) for f in link.take()] == [NEAR]  # re-sent at the exact point at once
    assert session.following.seen(b) == "exact"


async def test_a_friend_who_hides_goes_offline_and_is_no_longer_followed(
    process: Process, viewer: Any, primary: asyncpg.Connection
) -> None:
    b, session, link = await viewer()
    await friends_db.set_friend_sharing(primary, b, session.user_id, "hidden")
    session.control(FriendShares(b, "hidden"))
    assert link.take() == [{"type": "friend_left", "user_id": b, "reason": "offline"}]
    assert session.following.seen(b) == "hidden"
    assert session.following not in process.hub.fanout.listeners.get(b, [])
    session.following.friend_moved(Location(b, *NEAR, now_ms() + 1))  # a late message
    assert link.take() == []


async def test_a_removed_friend_leaves_as_unfriended(
    process: Process, viewer: Any, primary: asyncpg.Connection
) -> None:
    b, session, link = await viewer()
    await friends_db.remove_friendship(primary, session.user_id, b)
    session.control(FriendRemoved(b))
    assert link.take() == [{"type": "friend_left", "user_id": b, "reason": "unfriended"}]
    assert session.following.seen(b) == "none" and b not in process.hub.fanout.listeners
    session.following.friend_moved(Location(b, *NEAR, now_ms() + 1))
    assert link.take() == []


async def test_a_blocked_user_announced_as_a_friend_again_is_shown_nothing(
    process: Process, viewer: Any, primary: asyncpg.Connection
) -> None:
    b, session, link = await viewer()
    await consent_db.block(primary, session.user_id, b)
    session.control(FriendRemoved(b))
    assert link.take() == [{"type": "friend_left", "user_id": b, "reason": "unfriended"}]
    session.control(FriendAdded(b, None))  # late, repeated or forged: the primary has no friendship
    await link.settle()
    assert link.take() == [] and session.following.seen(b) == "none"
    assert b not in process.hub.fanout.listeners


async def test_a_new_friend_is_announced_once_confirmed_and_shown_in_range(
    process: Process, primary: asyncpg.Connection
) -> None:
    a, b = new_user(), new_user()
    session, link = await process.open(a)
    await process.at(session, link, SF)
    await process.services.cache.store(process.services.regions.default.name, Location(b, *NEAR, now_ms()))
    session.control(FriendAdded(b, None))  # no friendship on the primary yet
    await link.settle()
    assert link.take() == []
    await friends_db.add_friendship(primary, a, b)
    await friends_db.set_display_name(primary, b, "Ada")
    session.control(FriendAdded(b, None))
    await link.settle()
    added, shown = link.take()
    assert added == {"type": "friend_added", "user_id": b, "display_name": "Ada"}
    assert shown["type"] == "friend_location" and shown["user_id"] == b and point(shown) == NEAR


async def test_a_friend_out_of_range_leaves_and_comes_back_within_the_radius(process: Process, viewer: Any) -> None:
    b, session, link = await viewer()
    start = now_ms()
    process.heard(b, FAR, start + 1)
    assert link.take() == [{"type": "friend_left", "user_id": b, "reason": "out_of_range"}]
    process.heard(b, FAR, start + 2)  # still out: nothing new
    assert link.take() == []
    process.heard(b, NEAR, start + 3)
    assert [(f["type"], point(f)) for f in link.take()] == [("friend_location", NEAR)]


async def test_a_friend_silent_for_the_ttl_expires(process: Process, viewer: Any) -> None:
    b, session, link = await viewer()
    fanout = process.hub.fanout
    last = fanout.known[b].updated_at
    assert fanout.expire(last + fanout.ttl_ms - 1) == 0  # not yet
    assert link.take() == []
    assert fanout.expire(last + fanout.ttl_ms + fanout.expiry.granularity_ms) == 1
    assert link.take() == [{"type": "friend_left", "user_id": b, "reason": "expired"}]


async def test_sharing_turned_off_on_another_connection_applies_here(process: Process) -> None:
    session, link = await process.open(new_user())
    await process.at(session, link, SF)
    session.control(SharingChanged(False, "exact", origin="another connection"))
    await link.settle()
    assert link.take() == [{"type": "sharing", "enabled": False, "precision": "exact", "private_history": False}]
    assert not session.sharing.enabled
    region = process.services.regions.default.name
    assert await process.services.cache.fetch(region, [session.user_id]) == {}
    session.control(SharingChanged(True, "exact", origin=session.connection_id))  # its own echo
    await link.settle()
    assert link.take() == [] and not session.sharing.enabled


async def test_an_expired_token_closes_with_4001_and_nothing_more_is_applied(process: Process) -> None:
    session, link = await process.open(new_user())
    expiries = process.services.stats.token_expiries
    session.token_expired()
    assert link.closed_with == (TOKEN_EXPIRED, b"token expired")
    assert process.services.stats.token_expiries == expiries + 1
    updates = process.services.stats.updates
    await session.receive(orjson.dumps({"type": "location", "latitude": SF[0], "longitude": SF[1]}).decode())
    assert process.services.stats.updates == updates and session.following.position is None
    session.token_expired()  # once only
    assert process.services.stats.token_expiries == expiries + 1


async def test_a_bad_frame_is_answered_with_an_error_and_the_session_goes_on(process: Process) -> None:
    session, link = await process.open(new_user())
    await session.receive("not json")
    await session.receive(orjson.dumps({"type": "location", "latitude": 91, "longitude": 0}).decode())
    assert [(f["type"], f["code"]) for f in link.take()] == [("error", "invalid_json"), ("error", "invalid_value")]
    assert (await process.at(session, link, SF))["friends"] == []
