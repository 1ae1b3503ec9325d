"""Server-paced updates: ``pace`` frames follow who can see the user, against the real app."""

from __future__ import annotations

import asyncpg

from geo_common import consent_db, friends_db
from tests.friends_ws.ws_helpers import NEAR, SF, new_user

#: 111 km north of SF: beyond any default radius.
FAR = (SF[0] + 1.0, SF[1])
#: About 20 km north of SF: beyond the default radius (8 km), within 30 km.
TWENTY_KM = (SF[0] + 0.18, SF[1])


async def test_the_pace_quickens_while_a_connected_friend_has_the_user_in_range(  # type: ignore[no-untyped-def]
    servers, connect, befriend, ws_settings
) -> None:
    fast, slow = ws_settings.pace_fast_s, ws_settings.pace_slow_s
    server = await servers()
    a, b, stranger = new_user(), new_user(), new_user()
    await befriend((a, b))
    alice, bob, nobody = await connect(server, a), await connect(server, b), await connect(server, stranger)
    await nobody.location(*SF)  # a stranger next to Alice changes nothing
    await nobody.expect("init")
    await alice.location(*SF)
    await alice.expect("init")
    await alice.expect("pace", interval_s=slow)  # nobody looks
    await bob.location(*NEAR)
    await bob.expect("init")
    await bob.expect("pace", interval_s=fast)  # Alice is connected, Bob within her radius
    assert [f["type"] for f in bob.received[:2]] == ["init", "pace"]  # never a pace before init
    await alice.expect("pace", interval_s=fast)  # and she within his
    await bob.location(*FAR)
    await alice.expect("pace", interval_s=slow)
    await bob.expect("pace", interval_s=slow)
    await bob.location(*NEAR)
    await alice.expect("pace", interval_s=fast)
    await bob.expect("pace", interval_s=fast)
    # Alice stops sharing: nobody sees her, whoever looks; and starts again.
    await alice.send(type="sharing", enabled=False)
    assert [f["type"] for f in (await alice.quiet(0.5))[-2:]] == ["sharing", "pace"]
    assert alice.received[-1] == {"type": "pace", "interval_s": slow}
    await alice.send(type="sharing", enabled=True)
    await alice.expect("pace", interval_s=fast)
    # Bob's app goes to the background: his socket closes, nobody looks at Alice any more.
    await bob.close()
    await alice.expect("pace", interval_s=slow)
    # A pace is sent only when it changes.
    await alice.location(*SF)
    assert [f for f in await alice.quiet(0.3) if f["type"] == "pace"] == []


async def test_a_wider_radius_quickens_the_friends_it_now_covers(servers, connect, befriend, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(server, a), await connect(server, b)
    await alice.location(*SF)
    await alice.expect("init")
    await bob.location(*TWENTY_KM)
    await bob.expect("init")
    await alice.expect("pace", interval_s=ws_settings.pace_slow_s)
    await bob.send(type="settings", radius_m=30_000.0)  # Alice is 20 km away: Bob sees her now
    await alice.expect("pace", interval_s=ws_settings.pace_fast_s)
    await bob.send(type="settings", radius_m=5_000.0)
    await alice.expect("pace", interval_s=ws_settings.pace_slow_s)


async def test_a_friend_who_hides_never_quickens_the_user(  # type: ignore[no-untyped-def]
    servers, connect, befriend, ws_settings, primary: asyncpg.Connection
) -> None:
    """Bob hides from Alice: were he to quicken her pace, she would learn he is near and looking.
    Nor does Carol, no longer her friend, next to her."""
    server = await servers()
    a, b, c = new_user(), new_user(), new_user()
    await befriend((a, b), (a, c))
    await friends_db.set_friend_sharing(primary, b, a, "hidden")
    assert await consent_db.remove_relation(primary, c, a) is consent_db.Removed.FRIENDSHIP
    carol = await connect(server, c)
    await carol.location(*SF)
    await carol.expect("init")
    alice, bob = await connect(server, a), await connect(server, b)
    await alice.location(*SF)
    await alice.expect("init")
    await bob.location(*NEAR)
    await bob.expect("init")
    await bob.expect("pace", interval_s=ws_settings.pace_fast_s)  # Alice shares with Bob and looks
    await bob.location(*NEAR)
    frames = await alice.quiet(0.5)
    assert [f for f in frames if f["type"] == "pace"] == [{"type": "pace", "interval_s": ws_settings.pace_slow_s}]


async def test_friends_on_another_instance_pace_the_user_too(servers, connect, befriend, ws_settings) -> None:  # type: ignore[no-untyped-def]
    one, two = await servers(), await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(one, a), await connect(two, b)
    await alice.location(*SF)
    await alice.expect("init")
    await alice.expect("pace", interval_s=ws_settings.pace_slow_s)
    await bob.location(*NEAR)
    await alice.expect("pace", interval_s=ws_settings.pace_fast_s)
    await bob.close()
    await alice.expect("pace", interval_s=ws_settings.pace_slow_s)
