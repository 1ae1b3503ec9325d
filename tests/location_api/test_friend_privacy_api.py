"""Per-friend sharing, the profile, and a user's stored locations (export, erasure) over HTTP.

The real geo-api application (role ``all``) on port 0 over the session's database, the real
Redis and pub/sub of the session's namespace (docs/friends-protocol.md, "Per-friend privacy
and blocks", "Profile", "Stored locations").
"""

from __future__ import annotations

import datetime as dt

import asyncpg
import redis.asyncio as aioredis

from geo_common import friends_db, history_db
from geo_common.history_db import HistoryRow
from geo_common.presence import erasures_channel, location_key
from location_api import queries
from location_api.consistency import issue_token
from tests.friends_ws.ws_helpers import new_user
from tests.location_api import test_friend_consent_api as consent
from tests.location_api.test_friend_consent_api import ADMIN, Heard, Users

# The consent tests' fixtures, bound here so that pytest finds them for this module too.
start_users, users, primary, heard = consent.start_users, consent.users, consent.primary, consent.heard


async def test_sharing_with_one_friend(users: Users, heard: Heard) -> None:
    a, b, stranger = new_user(), new_user(), new_user()
    await users.ask(a, b, as_=ADMIN)
    await heard.bus.subscribe([heard.location(a), heard.control(b)])
    shared = await users.call("PUT", f"/v1/users/{a}/friends/{b}/sharing", a, body={"sharing": "coarse"})
    assert (shared.status, shared.body) == (200, {"user_id": a, "friend_id": b, "sharing": "coarse"})
    assert shared.headers["X-Consistency-Token"]
    # On a's location channel first (no later location reaches b exactly), then b is told.
    assert await heard.next() == (heard.location(a), {"t": "access", "u": a, "v": b, "l": "coarse"})
    assert await heard.next() == (heard.control(b), {"t": "friend_shares", "u": a, "l": "coarse"})
    (friend,) = (await users.call("GET", f"/v1/users/{a}/friends", a)).body["friends"]
    assert (friend["user_id"], friend["sharing"]) == (b, "coarse")
    (other,) = (await users.call("GET", f"/v1/users/{b}/friends", b)).body["friends"]
    assert (other["user_id"], other["sharing"]) == (a, "exact")  # what b shares; a's choice stays a's

    hidden = await users.call("PUT", f"/v1/users/{a}/friends/{b}/sharing", ADMIN, body={"sharing": "hidden"})
    assert hidden.body["sharing"] == "hidden"
    missing = await users.call("PUT", f"/v1/users/{a}/friends/{stranger}/sharing", a, body={"sharing": "exact"})
    assert (missing.status, missing.problem, missing.fields) == (404, "not-found", ["friend_id"])
    refused = {
        b'{"sharing": "blurry"}': "sharing",
        b'{"sharing": 1}': "sharing",
        b'{"sharing": null}': "sharing",
        b"{}": "sharing",
        b'{"sharing": "exact", "colour": "blue"}': "colour",
        b'["exact"]': "body",
        b"sharing=exact": "body",
        b"": "body",
    }
    for body, name in refused.items():
        answer = await users.call("PUT", f"/v1/users/{a}/friends/{b}/sharing", a, body=body)
        assert (answer.status, answer.fields) == (400, [name]), (body, answer)
    (friend,) = (await users.call("GET", f"/v1/users/{a}/friends", a)).body["friends"]
    assert friend["sharing"] == "hidden"  # nothing refused was stored


async def test_profile(users: Users) -> None:
    a = new_user()
    fresh = await users.call("GET", f"/v1/users/{a}/profile", a)
    assert fresh.body == {
        "user_id": a,
        "display_name": None,
        "sharing": {"enabled": True, "precision": "exact", "private_history": False},
    }
    for name in ("Ada", "x" * 64, "Zoë 🙂", None):
        put = await users.call("PUT", f"/v1/users/{a}/profile", a, body={"display_name": name})
        assert (put.status, put.body) == (200, {"user_id": a, "display_name": name})
        assert (await users.call("GET", f"/v1/users/{a}/profile", a)).body["display_name"] == name
    refused = [{"display_name": ""}, {"display_name": "x" * 65}, {"display_name": 7}, {"display_name": ["Ada"]}]
    refused += [{"display_name": "A\u0000da"}, {}]
    for body in refused:
        answer = await users.call("PUT", f"/v1/users/{a}/profile", a, body=body)
        assert (answer.status, answer.problem, answer.fields) == (400, "invalid-body", ["display_name"]), body
    assert (await users.call("PUT", f"/v1/users/{a}/profile", a, body=b"{")).fields == ["body"]
    assert (await users.call("GET", f"/v1/users/{a}/profile", a)).body["display_name"] is None


async def _visible(users: Users, conn: asyncpg.Connection) -> str:
    """A consistency token covering everything written on the primary so far."""
    return issue_token(users.settings.jwt_secret, await queries.visible_lsn(conn))


async def test_export_pages_the_history_oldest_first(users: Users, primary: asyncpg.Connection) -> None:
    a, other = new_user(), new_user()
    start = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    rows = [
        HistoryRow(a, 59.9 + i / 100, 10.7, start + dt.timedelta(seconds=i, microseconds=7), None if i % 2 else start)
        for i in range(5)
    ]
    await history_db.insert_history(primary, [*reversed(rows), HistoryRow(other, 1.0, 2.0, start)])
    users.token = await _visible(users, primary)
    pages = []
    cursors: list[str] = []
    while True:
        after = f"&cursor={cursors[-1]}" if cursors else ""
        answer = await users.call("GET", f"/v1/users/{a}/locations/export?limit=2{after}", a)
        assert answer.status == 200, answer
        pages.append(answer.body["locations"])
        if answer.body["next"] is None:
            break
        cursors.append(answer.body["next"])
    assert [len(p) for p in pages] == [2, 2, 1]
    exported = [item for page in pages for item in page]
    assert exported == [
        {
            "latitude": r.latitude,
            "longitude": r.longitude,
            "recorded_at": r.recorded_at.isoformat(),
            "sent_at": None if r.sent_at is None else r.sent_at.isoformat(),
        }
        for r in rows
    ]
    assert (await users.call("GET", f"/v1/users/{a}/locations/export", ADMIN)).body["locations"] == exported
    assert (await users.call("GET", f"/v1/users/{a}/locations/export?limit=1000", a)).body["next"] is None
    for query, name in [("limit=1001", "limit"), ("limit=0", "limit"), ("cursor=abc", "cursor"), ("at=1", "at")]:
        answer = await users.call("GET", f"/v1/users/{a}/locations/export?{query}", a)
        assert (answer.status, answer.fields) == (400, [name]), (query, answer)
    # A cursor belongs to one user's export: not another's, nor to a friends list.
    for path in (f"/v1/users/{other}/locations/export", f"/v1/users/{a}/friends"):
        answer = await users.call("GET", f"{path}?cursor={cursors[0]}", ADMIN)
        assert (answer.status, answer.problem) == (400, "invalid-cursor"), answer


async def test_export_pages_rows_received_in_the_same_microsecond_once_each(
    users: Users, primary: asyncpg.Connection
) -> None:
    a = new_user()
    start = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
    later = start + dt.timedelta(milliseconds=1)
    rows = [HistoryRow(a, 10.0 + i, 20.0, start) for i in range(5)] + [HistoryRow(a, 1.0, 2.0, later)]
    await history_db.insert_history(primary, rows)
    users.token = await _visible(users, primary)
    seen: list[tuple[float, str]] = []
    cursor = ""
    for _ in range(10):
        answer = await users.call("GET", f"/v1/users/{a}/locations/export?limit=2{cursor}", a)
        seen += [(item["latitude"], item["recorded_at"]) for item in answer.body["locations"]]
        if answer.body["next"] is None:
            break
        cursor = f"&cursor={answer.body['next']}"
    assert seen == [(r.latitude, r.recorded_at.isoformat()) for r in rows]


async def test_erasing_clears_history_cache_and_home(users: Users, primary: asyncpg.Connection, heard: Heard) -> None:
    a, friend = new_user(), new_user()
    await users.ask(a, friend, as_=ADMIN)
    await friends_db.claim_home_region(primary, a, heard.region.name)
    now = dt.datetime.now(dt.UTC)
    await history_db.insert_history(
        primary, [HistoryRow(a, 59.91, 10.75, now - dt.timedelta(seconds=s)) for s in range(3)]
    )
    key = location_key(heard.namespace, heard.region.name, a)
    cache = aioredis.Redis.from_url(users.settings.redis_url)
    try:
        await cache.set(key, b'{"lat": 59.91, "lon": 10.75, "at": 1, "sent": null, "c": ""}', ex=600)
        erasures = erasures_channel(heard.namespace, heard.region.name)
        await heard.bus.subscribe([heard.location(a), heard.control(a), erasures])
        erased = await users.call("DELETE", f"/v1/users/{a}/locations", a)
        assert (erased.status, erased.body) == (
            200,
            {
                "user_id": a,
                "history_rows_deleted": 3,
                "cached_location_deleted": True,
                "home_region_cleared": True,
                "instances_notified": 1,  # this test's own subscriber: no geo-friends runs here
            },
        )
        assert await cache.exists(key) == 0
        assert await heard.next() == (heard.location(a), {"t": "left", "u": a, "r": "offline"})
        assert await heard.next() == (heard.control(a), {"t": "erased"})
        assert await heard.next() == (erasures, {"t": "erased", "u": a})
        assert await primary.fetchval("SELECT home_region FROM users WHERE id = $1", a) is None
        assert await history_db.history_of(primary, a) == []
        users.token = erased.headers["X-Consistency-Token"]
        assert (await users.call("GET", f"/v1/users/{a}/locations/export", a)).body["locations"] == []
        assert await users.ids(a) == [friend]  # erasing locations ends no friendship

        again = await users.call("DELETE", f"/v1/users/{a}/locations", ADMIN)
        assert again.body == {
            "user_id": a,
            "history_rows_deleted": 0,
            "cached_location_deleted": False,
            "home_region_cleared": False,
            "instances_notified": 1,
        }
    finally:
        await cache.aclose()
