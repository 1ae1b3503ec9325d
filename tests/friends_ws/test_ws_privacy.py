"""What each viewer sees and what is kept: per-friend privacy, the user's own sharing and
history, erasure, retention, and a replica that trails the primary.

geo-api's part is played by the tests: the change on the primary, then the
:class:`~geo_common.announcements.Announcer`'s publications, in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import aiohttp
import asyncpg
import pytest

from friends_ws.keys import history_key, purger_key
from friends_ws.nearby import coarsen
from friends_ws.privacy import grants, kept_point, seen_for, shown
from friends_ws.protocol import Sharing
from friends_ws.retention import PURGE_LOCK
from geo_common import friends_db, history_db
from geo_common.presence import Location
from geo_index import haversine_m
from tests.friends_ws.consent_helpers import Publisher, frames_of, homes, replay_paused
from tests.friends_ws.ws_helpers import NEAR, SF, TIMEOUT_FACTOR, WAIT, Client, new_user

#: Long enough for a frame that should not come to have come (changes apply within 1 s).
SETTLE = 1.0 * TIMEOUT_FACTOR


# --- the pure rules ----------------------------------------------------------------------------


def test_what_a_level_shows_and_which_changes_need_the_primary() -> None:
    assert [seen_for(level) for level in ("exact", "coarse", "hidden", "removed", None)] == [
        "exact",
        "coarse",
        "hidden",
        "none",
        "none",
    ]
    with pytest.raises(ValueError):
        seen_for("blurred")
    assert grants("none", "exact") and grants("hidden", "coarse") and grants("coarse", "exact")
    assert not grants("exact", "coarse") and not grants("coarse", "hidden") and not grants("none", "hidden")
    assert not grants("exact", "exact") and not grants("hidden", "none")


def test_a_coarse_viewer_sees_the_cell_centre_and_the_history_keeps_what_is_shared() -> None:
    exact = Location(7, *NEAR, 1_000, 900)
    assert shown(exact, coarse=False) is exact
    coarse = shown(exact, coarse=True)
    assert (coarse.latitude, coarse.longitude) == coarsen(*NEAR) != NEAR
    assert (coarse.user_id, coarse.updated_at, coarse.sent_at) == (7, 1_000, 900)
    assert shown(coarse, coarse=True) is coarse  # published coarse already
    assert kept_point(*NEAR, Sharing(True, "exact", False)) == NEAR
    assert kept_point(*NEAR, Sharing(True, "coarse", False)) == coarsen(*NEAR)
    assert kept_point(*NEAR, Sharing(False, "exact", False)) is None
    assert kept_point(*NEAR, Sharing(False, "coarse", True)) == NEAR
    assert kept_point(*NEAR, Sharing(True, "coarse", True)) == NEAR


# --- per-friend privacy on live connections ------------------------------------------------------


async def _friends_of(connect: Any, befriend: Any, server: Any, n: int) -> tuple[Client, list[Client]]:
    """A sharer at SF and ``n`` friends at NEAR, all connected, each friend seeing the sharer."""
    sharer_id, friend_ids = new_user(), [new_user() for _ in range(n)]
    await befriend(*((sharer_id, f) for f in friend_ids))
    friends = []
    for friend_id in friend_ids:
        friend = await connect(server, friend_id)
        await friend.location(*NEAR)
        await friend.expect("init")
        friends.append(friend)
    sharer = await connect(server, sharer_id)
    await sharer.location(*SF)
    await sharer.expect("init")
    for friend in friends:
        await friend.expect("friend_location", user_id=sharer_id)
    return sharer, friends


async def test_hidden_from_one_friend_while_another_still_sees(  # type: ignore[no-untyped-def]
    servers, connect, befriend, primary, publisher: Publisher
) -> None:
    one, two = await servers(), await servers()
    sharer, (hidden, watcher) = await _friends_of(connect, befriend, one, 2)
    s = sharer.user_id
    moved_watcher = await connect(two, watcher.user_id)  # the same friend on another instance too
    await moved_watcher.location(*NEAR)
    assert [f["user_id"] for f in (await moved_watcher.expect("init"))["friends"]] == [s]
    assert await friends_db.set_friend_sharing(primary, s, hidden.user_id, "hidden")
    await publisher.publish(publisher.announcer.sharing_with(s, hidden.user_id, "hidden", await homes(primary, s)))
    # Hiding reads like going away, within a second.
    await hidden.expect("friend_left", user_id=s, reason="offline", timeout=1.0 * TIMEOUT_FACTOR)
    for step in range(1, 4):
        await sharer.location(SF[0] + step / 1e4, SF[1])
        for client in (watcher, moved_watcher):
            await client.expect("friend_location", user_id=s, latitude=SF[0] + step / 1e4)
    await hidden.quiet(SETTLE)
    assert [f["type"] for f in frames_of(hidden.received, s)] == ["friend_location", "friend_left"]
    again = await connect(one, hidden.user_id)
    await again.location(*NEAR)
    assert (await again.expect("init"))["friends"] == []
    # Un-hidden: the primary confirms it, and the friend sees the sharer again at once.
    assert await friends_db.set_friend_sharing(primary, s, hidden.user_id, "exact")
    await publisher.publish(publisher.announcer.sharing_with(s, hidden.user_id, "exact", await homes(primary, s)))
    await hidden.expect("friend_location", user_id=s, latitude=SF[0] + 3e-4)


async def test_coarse_for_one_friend_and_exact_for_another(  # type: ignore[no-untyped-def]
    servers, connect, befriend, primary, publisher: Publisher
) -> None:
    server = await servers()
    sharer, (coarse, exact) = await _friends_of(connect, befriend, server, 2)
    s, c = sharer.user_id, coarse.user_id
    assert await friends_db.set_friend_sharing(primary, s, c, "coarse")
    where = await homes(primary, s, c)
    before = len(coarse.received)
    await publisher.publish(publisher.announcer.sharing_with(s, c, "coarse", where))
    # The coarse point at once, its distance measured from that point (not from the exact one).
    seen = await coarse.expect("friend_location", user_id=s, timeout=1.0 * TIMEOUT_FACTOR)
    assert (seen["latitude"], seen["longitude"]) == coarsen(*SF)
    assert seen["distance_m"] == round(haversine_m(*NEAR, *coarsen(*SF)), 1) != round(haversine_m(*NEAR, *SF), 1)
    point = (SF[0] + 2e-3, SF[1] + 1e-3)
    await sharer.location(*point)
    assert (await exact.expect("friend_location", user_id=s))["latitude"] == point[0]
    seen = await coarse.expect("friend_location", user_id=s, latitude=coarsen(*point)[0])
    assert (seen["longitude"], seen["distance_m"]) == (
        coarsen(*point)[1],
        round(haversine_m(*NEAR, *coarsen(*point)), 1),
    )
    fresh = await connect(server, c)  # init too
    await fresh.location(*NEAR)
    (friend,) = (await fresh.expect("init"))["friends"]
    assert (friend["latitude"], friend["longitude"]) == coarsen(*point)
    # A stale or forged "exact" is checked on the primary, which still says coarse.
    await publisher.publish(publisher.announcer.sharing_with(s, c, "exact", where))
    await coarse.quiet(0.3)
    await sharer.location(*SF)
    await coarse.expect("friend_location", user_id=s, latitude=coarsen(*SF)[0])
    for frame in frames_of(coarse.received[before:], s):
        if frame["type"] == "friend_location":
            assert (frame["latitude"], frame["longitude"]) in (coarsen(*SF), coarsen(*point))
    # The real change: the exact point at once.
    assert await friends_db.set_friend_sharing(primary, s, c, "exact")
    await publisher.publish(publisher.announcer.sharing_with(s, c, "exact", where))
    await coarse.expect("friend_location", user_id=s, latitude=SF[0], longitude=SF[1])


# --- the user's own sharing and history ----------------------------------------------------------


async def test_sharing_keeps_a_private_history_and_tells_every_connection(servers, connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    user = new_user()
    first, second = await connect(server, user), await connect(server, user)
    await second.opened()
    await first.send(type="sharing", enabled=True, private_history="yes")
    assert await first.expect("error") == {
        "type": "error",
        "code": "invalid_value",
        "detail": "private_history must be true or false",
    }
    await first.send(type="sharing", enabled=False, private_history=True)
    expected = {"type": "sharing", "enabled": False, "precision": "exact", "private_history": True}
    assert await first.expect("sharing") == expected
    assert await second.expect("sharing") == expected
    await first.send(type="sharing", enabled=True, precision="coarse")  # absent: kept
    expected = {"type": "sharing", "enabled": True, "precision": "coarse", "private_history": True}
    assert await first.expect("sharing") == expected
    assert await second.expect("sharing") == expected
    third = await connect(server, user)
    await third.location(*SF)
    assert (await third.expect("init"))["sharing"] == {"enabled": True, "precision": "coarse", "private_history": True}


async def test_history_keeps_what_the_user_shares(servers, connect, primary) -> None:  # type: ignore[no-untyped-def]
    server = await servers(history_flush_ms=20)
    users = {name: new_user() for name in ("exact", "coarse", "off", "private")}
    settings: dict[str, dict[str, Any]] = {
        "exact": {"enabled": True},
        "coarse": {"enabled": True, "precision": "coarse"},
        "off": {"enabled": False},
        "private": {"enabled": False, "precision": "coarse", "private_history": True},
    }
    for name, user in users.items():
        client = await connect(server, user)
        await client.send(type="sharing", **settings[name])
        await client.expect("sharing")
        await client.location(*NEAR)
        await client.expect("init")
    expected = {"exact": [NEAR], "coarse": [coarsen(*NEAR)], "off": [], "private": [NEAR]}
    deadline = time.monotonic() + WAIT
    while True:
        kept = {
            name: [(r.latitude, r.longitude) for r in await history_db.history_of(primary, user)]
            for name, user in users.items()
        }
        if kept == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert kept == expected


async def test_an_erasure_drops_waiting_rows_and_rows_written_meanwhile(  # type: ignore[no-untyped-def]
    servers, connect, primary, publisher: Publisher
) -> None:
    waiting = await servers(history_flush_ms=60_000, history_flush_rows=10_000)
    writing = await servers(history_flush_ms=20)
    erased, kept = new_user(), new_user()
    clients = [await connect(waiting, erased), await connect(waiting, kept), await connect(writing, erased)]
    for client in clients:
        await client.location(*SF)
        await client.expect("init")
    # The writing instance's row is on the primary (as if its COPY had committed after
    # geo-api's DELETE); the waiting instance still holds two rows.
    for _ in range(100):
        if await history_db.history_of(primary, erased):
            break
        await asyncio.sleep(0.05)
    assert waiting.app[history_key].waiting == 2
    heard = await publisher.publish(publisher.announcer.locations_erased(erased, None))
    assert heard[-1] >= 2  # the erasures channel: every instance hears it
    deadline = time.monotonic() + 5.0 * TIMEOUT_FACTOR
    while await history_db.history_of(primary, erased) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await history_db.history_of(primary, erased) == []
    assert waiting.app[history_key].waiting == 1 and waiting.app[history_key].erased == 1
    await waiting.stop()  # writes what it still holds: the other user's row only
    assert [r.user_id for r in await history_db.history_of(primary, kept)] == [kept]
    assert await history_db.history_of(primary, erased) == []


async def test_retention_runs_by_itself_one_instance_at_a_time(servers, settings, primary) -> None:  # type: ignore[no-untyped-def]
    user = new_user()
    now = dt.datetime.now(dt.UTC)
    old = [history_db.HistoryRow(user, 1.0, float(i), now - dt.timedelta(days=40, minutes=i)) for i in range(5)]
    await history_db.insert_history(primary, [*old, history_db.HistoryRow(user, 2.0, 2.0, now)])
    # Another instance is purging (it holds the lock): this one skips its rounds.
    holder = await asyncpg.connect(settings.pg_primary)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK)
        server = await servers(history_purge_interval_s=0.1)
        purger = server.app[purger_key]
        deadline = time.monotonic() + WAIT
        while purger.skipped < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert purger.skipped >= 2 and purger.purged == 0
        assert len(await history_db.history_of(primary, user)) == 6
    finally:
        await holder.close()  # releases the lock
    deadline = time.monotonic() + WAIT
    while len(await history_db.history_of(primary, user)) > 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [r.latitude for r in await history_db.history_of(primary, user)] == [2.0]

    def figure(metrics: str, name: str) -> float:
        return float(metrics.split(f"\n{name} ", 1)[1].split("\n", 1)[0])

    async with aiohttp.ClientSession() as http:
        while True:  # the round counts its rows once its lock is released, after they are gone
            async with http.get(f"{server.http}/metrics") as resp:
                metrics = await resp.text()
            purged = figure(metrics, "geo_friends_history_purged_total")
            if purged >= 5 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert purged >= 5  # other tests' old rows may go too
    last = figure(metrics, "geo_friends_history_purge_last_success_seconds")
    assert time.time() - 60 < last <= time.time()


async def test_a_trailing_replica_does_not_turn_sharing_back_on(  # type: ignore[no-untyped-def]
    servers, connect, in_view, settings
) -> None:
    server = await servers()
    a, b, alice, bob = await in_view(server)
    async with replay_paused(settings) as replicas:
        await bob.send(type="sharing", enabled=False)
        await bob.expect("sharing", enabled=False)
        await alice.expect("friend_left", user_id=b, reason="sharing_off")
        for replica in replicas:  # the replicas still say Bob shares
            assert await replica.fetchval("SELECT sharing_enabled FROM users WHERE id = $1", b) is True
        again = await connect(server, b)
        await again.location(NEAR[0] + 1e-4, NEAR[1])
        init = await again.expect("init")
        assert init["sharing"] == {"enabled": False, "precision": "exact", "private_history": False}
        await again.location(NEAR[0] + 2e-4, NEAR[1])
        fresh = await connect(server, a)
        await fresh.location(*SF)
        assert (await fresh.expect("init"))["friends"] == []
        await alice.quiet(SETTLE)
        assert [f["type"] for f in frames_of(alice.received, b)] == ["friend_location", "friend_left"]
