"""Resume after a reconnect: only what changed, within the window, against the real app."""

from __future__ import annotations

from typing import Any

import asyncpg

from friends_ws.clock import now_ms
from geo_common import consent_db
from tests.friends_ws.ws_helpers import NEAR, SF, Client, new_user

#: About 560 m north of SF: where a friend moves.
NEAR_2 = (37.7799, -122.4194)
FAR = (SF[0] + 1.0, SF[1])


def held(client: Client) -> dict[str, int]:
    """What a client shows: friend id -> updated_at of the newest position it received."""
    shown: dict[str, int] = {}
    for frame in client.received:
        if frame["type"] == "init":
            shown = {str(f["user_id"]): f["updated_at"] for f in frame["friends"]}
        elif frame["type"] == "friend_location":
            shown[str(frame["user_id"])] = frame["updated_at"]
        elif frame["type"] == "friend_left":
            shown.pop(str(frame["user_id"]), None)
    return shown


def newest_at(client: Client) -> int:
    """The newest server time the client received (init's at, friends' updated_at)."""
    times = [f["at"] for f in client.received if f["type"] in ("init", "resumed")]
    times += [f["updated_at"] for f in client.received if f["type"] == "friend_location"]
    return max(times)


def about_friends(frames: list[dict[str, Any]]) -> list[tuple[str, int, Any]]:
    return sorted(
        (f["type"], f["user_id"], f.get("reason", f.get("latitude")))
        for f in frames
        if f["type"] in ("friend_location", "friend_left")
    )


async def test_a_client_back_within_the_window_gets_only_what_changed(  # type: ignore[no-untyped-def]
    servers, connect, befriend, primary: asyncpg.Connection
) -> None:
    one, two = await servers(), await servers()
    a, still, mover, leaver, newcomer, ex = (new_user() for _ in range(6))
    await befriend((a, still), (a, mover), (a, leaver), (a, newcomer), (a, ex))
    friends = {u: await connect(one, u) for u in (still, mover, leaver, ex)}
    for client in friends.values():
        await client.location(*NEAR)
        await client.expect("init")
    alice = await connect(one, a)
    await alice.location(*SF)
    assert len((await alice.expect("init"))["friends"]) == 4
    await friends[mover].location(*NEAR_2)
    await alice.expect("friend_location", user_id=mover)
    before, at = held(alice), newest_at(alice)
    await alice.close()
    # While Alice is away: one friend moves, one signs out, one arrives, one is no longer a
    # friend; one stays where he was.
    await friends[mover].location(*NEAR)
    await friends[leaver].send(type="sign_out")
    late = await connect(one, newcomer)
    await late.location(*NEAR)
    await late.expect("init")
    assert await consent_db.remove_relation(primary, a, ex) is consent_db.Removed.FRIENDSHIP
    # Alice comes back on another instance, with what she holds.
    again = await connect(two, a)
    await again.location(*SF, resume={"at": at, "friends": before})
    resumed = await again.expect("resumed")
    assert resumed["radius_m"] == 8047.0 and resumed["at"] >= at
    frames = await again.quiet(0.5)
    assert about_friends(frames) == sorted(
        [
            ("friend_location", mover, NEAR[0]),
            ("friend_location", newcomer, NEAR[0]),
            ("friend_left", leaver, "offline"),
            ("friend_left", ex, "unfriended"),
        ]
    )
    assert not [f for f in frames if f["type"] == "init"]


async def test_after_the_window_a_client_gets_a_fresh_init(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_resume_s=1)
    a, b = new_user(), new_user()
    await befriend((a, b))
    bob = await connect(server, b)
    await bob.location(*NEAR)
    await bob.expect("init")
    alice = await connect(server, a)
    stale = now_ms() - 5_000
    await alice.location(*SF, resume={"at": stale, "friends": {str(b): 1}})
    init = await alice.expect("init")
    assert [f["user_id"] for f in init["friends"]] == [b]
    # A resume is read on the first location only; later ones are plain moves.
    await alice.location(*SF, resume={"at": now_ms(), "friends": {}})
    assert not [f for f in await alice.quiet(0.3) if f["type"] in ("init", "resumed")]


async def test_a_resume_keeps_the_radius_and_the_margin(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    """Bob at 1.1 km, Alice's radius 1 km: in view on the lost connection (inside the margin),
    so still in view after the resume, not a friend_left."""
    server = await servers(friend_hysteresis_m=200.0)
    a, b = new_user(), new_user()
    await befriend((a, b))
    bob = await connect(server, b)
    await bob.location(*NEAR)
    init = await bob.expect("init")
    alice = await connect(server, a)
    await alice.location(*SF)
    (shown,) = (await alice.expect("init"))["friends"]
    away = (NEAR[0] - 1.1 / 111.195, NEAR[1])  # Alice now 1.1 km south of Bob
    moved = {str(b): shown["updated_at"]}
    again = await connect(server, a)
    await again.location(*away, resume={"at": init["at"], "radius_m": 1000.0, "friends": moved})
    assert (await again.expect("resumed"))["radius_m"] == 1000.0
    assert about_friends(await again.quiet(0.4)) == []
    # A fresh connection there would not show Bob: he is beyond the radius itself.
    fresh = await connect(server, a)
    await fresh.location(*away, resume={"at": init["at"], "radius_m": 1000.0, "friends": {}})
    await fresh.expect("resumed")
    assert about_friends(await fresh.quiet(0.4)) == []
    await fresh.send(type="settings", radius_m=1150.0)
    await fresh.expect("friend_location", user_id=b)


async def test_a_forged_resume_reveals_nothing(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    """Naming strangers and friends' positions it never had gets a client no location."""
    server = await servers()
    a, b, stranger = new_user(), new_user(), new_user()
    await befriend((a, b))
    far_friend = await connect(server, b)
    await far_friend.location(*FAR)  # a friend, out of range
    await far_friend.expect("init")
    other = await connect(server, stranger)
    await other.location(*NEAR)  # a stranger, in range
    await other.expect("init")
    alice = await connect(server, a)
    await alice.location(*SF, resume={"at": now_ms(), "friends": {str(b): 1, str(stranger): 1}})
    await alice.expect("resumed")
    frames = await alice.quiet(0.4)
    assert about_friends(frames) == sorted(
        [("friend_left", b, "out_of_range"), ("friend_left", stranger, "unfriended")]
    )


async def test_a_bad_resume_is_refused(servers, connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    alice = await connect(server, new_user())
    for resume in ({"friends": {}}, {"at": "now"}, {"at": 1, "friends": {"x": 1}}, {"at": 1, "friends": [1]}):
        await alice.location(*SF, resume=resume)
        assert (await alice.expect("error"))["code"] == "invalid_value"
    await alice.location(*SF)
    await alice.expect("init")
