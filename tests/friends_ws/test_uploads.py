"""``POST /v1/me/locations``: background uploads, against the real app, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import jsonschema
import pytest

from friends_ws.clock import now_ms
from geo_common import consent_db, friends_db
from geo_common.tokens import mint_token
from tests.friends_ws.ws_helpers import NEAR, SF, new_user

PATH = "/v1/me/locations"
PROBLEM = "application/problem+json"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def points(*seqs: int, at: tuple[float, float] = NEAR) -> dict[str, Any]:
    """An upload of one point per sequence number, each a little north of ``at``."""
    stamp = now_ms()
    return {
        "locations": [
            {"seq": s, "latitude": at[0] + s * 1e-5, "longitude": at[1], "timestamp": stamp + s} for s in seqs
        ]
    }


async def upload(
    http: aiohttp.ClientSession, server: Any, token: str | None, body: Any, *, raw: bytes | None = None
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    """One upload; its answer is checked against the instance's ``/openapi.json``."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with http.post(server.http + PATH, headers=headers, **kwargs) as resp:
        if resp.status != 200:
            assert resp.content_type == PROBLEM, await resp.text()
        answer = await resp.json(content_type=None)
        status, content_type, answered = resp.status, resp.content_type, resp.headers
    await conforms(http, server, status, content_type, answer, answered)
    return status, answer, answered


async def watched_by_alice(server: Any, connect: Any, befriend: Any, ws_settings: Any) -> tuple[int, Any, str]:
    """A user ``b`` befriended by Alice, who is connected at SF: ``b``, Alice's client, ``b``'s token."""
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice = await connect(server, a)
    await alice.location(*SF)
    await alice.expect("init")
    return b, alice, mint_token(ws_settings.jwt_secret, b)


async def conforms(
    http: aiohttp.ClientSession, server: Any, status: int, content_type: str, answer: Any, headers: Any
) -> None:
    """The answer is one the document describes: its status, content type, schema and headers."""
    async with http.get(server.http + "/openapi.json") as resp:
        assert resp.status == 200
        document = await resp.json()
    described = document["paths"][PATH]["post"]["responses"][str(status)]
    schema = {**described["content"][content_type]["schema"], "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(answer)
    for name, header in described.get("headers", {}).items():
        assert name in headers, name
        value = headers[name]
        jsonschema.Draft202012Validator(header["schema"]).validate(int(value) if value.isdigit() else value)


async def test_the_document_states_this_instance_s_limits(servers, http) -> None:  # type: ignore[no-untyped-def]
    server = await servers(upload_max_points=7, upload_max_per_min=12.0)
    async with http.get(server.http + "/openapi.json") as resp:
        document = await resp.json()
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["Upload"])
    assert document["openapi"] == "3.1.0"
    assert document["components"]["schemas"]["Upload"]["properties"]["locations"]["maxItems"] == 7
    assert "at most 12 uploads a minute" in document["paths"][PATH]["post"]["description"]
    # What the document allows, the instance takes; one point more, it refuses.
    schema = {"$ref": "#/components/schemas/Upload", "components": document["components"]}
    seven, eight = points(*range(1, 8)), points(*range(1, 9))
    jsonschema.Draft202012Validator(schema).validate(seven)
    assert not jsonschema.Draft202012Validator(schema).is_valid(eight)


async def test_a_user_without_a_socket_is_seen_live_by_a_friend(servers, connect, befriend, http, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice = await connect(server, a)
    await alice.location(*SF)
    await alice.expect("init")
    status, answer, _ = await upload(http, server, mint_token(ws_settings.jwt_secret, b), points(1, 2, 3))
    assert status == 200
    # Alice is connected and has Bob within her radius: he is asked to upload often.
    assert answer == {"accepted": 3, "ignored": 0, "last_seq": 3, "interval_s": ws_settings.pace_fast_s}
    seen = await alice.expect("friend_location", user_id=b)
    newest = points(3)["locations"][0]
    assert (seen["latitude"], seen["longitude"]) == (newest["latitude"], newest["longitude"])
    assert seen["sent_at"] is not None  # the phone's own timestamp of that point
    # Only the newest point of a batch is shown; the others went to the history.
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []


async def test_duplicates_and_older_batches_are_ignored(servers, connect, befriend, http, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(upload_max_per_min=600.0)
    b, alice, token = await watched_by_alice(server, connect, befriend, ws_settings)
    assert (await upload(http, server, token, points(5, 4, 6)))[1]["accepted"] == 3  # sorted by seq
    first = await alice.expect("friend_location", user_id=b)
    # The same batch again (a retry after a lost answer), and an older one arriving late.
    for body in (points(4, 5, 6), points(1, 2)):
        status, answer, _ = await upload(http, server, token, body)
        assert (status, answer["accepted"], answer["last_seq"]) == (200, 0, 6)
        assert answer["ignored"] == len(body["locations"])
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []
    # A batch overlapping the last one applies only what is new.
    status, answer, _ = await upload(http, server, token, points(6, 7))
    assert (answer["accepted"], answer["ignored"], answer["last_seq"]) == (1, 1, 7)
    later = await alice.expect("friend_location", user_id=b)
    assert later["updated_at"] >= first["updated_at"]
    # The same sequence number twice in one batch counts once.
    assert (await upload(http, server, token, points(8, 8)))[1]["accepted"] == 1


async def test_uploads_obey_sharing_and_reach_only_friends(  # type: ignore[no-untyped-def]
    servers, connect, befriend, http, ws_settings, primary: asyncpg.Connection
) -> None:
    server = await servers()
    a, b, stranger, hidden_from, ex = new_user(), new_user(), new_user(), new_user(), new_user()
    await befriend((a, b), (b, hidden_from), (b, ex))
    await friends_db.set_friend_sharing(primary, b, hidden_from, "hidden")
    assert await consent_db.remove_relation(primary, ex, b) is consent_db.Removed.FRIENDSHIP
    watchers = []
    for user in (a, stranger, hidden_from, ex):
        client = await connect(server, user)
        await client.location(*SF)
        await client.expect("init")
        watchers.append(client)
    alice, strange, hidden, removed = watchers
    token = mint_token(ws_settings.jwt_secret, b)
    await upload(http, server, token, points(1))
    await alice.expect("friend_location", user_id=b)
    for client in (strange, hidden, removed):
        assert [f for f in await client.quiet(0.3) if f.get("user_id") == b] == []
    # Sharing off: points are accepted (so the phone stops resending) and shown to nobody.
    await friends_db.set_sharing(primary, b, enabled=False, precision="exact", private_history=False)
    status, answer, _ = await upload(http, server, token, points(2))
    assert (status, answer["accepted"]) == (200, 1)
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []


async def test_the_answer_paces_fast_while_a_connected_friend_has_the_user_in_range(  # type: ignore[no-untyped-def]
    servers, connect, befriend, http, ws_settings
) -> None:
    server = await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    token = mint_token(ws_settings.jwt_secret, b)
    assert (await upload(http, server, token, points(1)))[1]["interval_s"] == ws_settings.pace_slow_s
    alice = await connect(server, a)
    await alice.location(*SF)  # Alice is connected and looking, 1.4 km away: within her radius
    await alice.expect("init")
    assert (await upload(http, server, token, points(2)))[1]["interval_s"] == ws_settings.pace_fast_s
    far = (SF[0] + 1.0, SF[1])  # 111 km north: beyond her radius
    assert (await upload(http, server, token, points(3, at=far)))[1]["interval_s"] == ws_settings.pace_slow_s
    await alice.close()  # her socket closed: nobody looks, wherever the user is
    answer = (await upload(http, server, token, points(4)))[1]
    assert answer["interval_s"] == ws_settings.pace_slow_s


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"locations": []}, "locations"),
        ({"points": [1]}, "locations"),
        ([1, 2], "locations"),
        ({"locations": [{"seq": 1, "latitude": 91, "longitude": 0, "timestamp": 1}]}, "locations[0].latitude"),
        ({"locations": [{"seq": -1, "latitude": 0, "longitude": 0, "timestamp": 1}]}, "locations[0].seq"),
        ({"locations": [{"seq": 1, "latitude": 0, "longitude": "e", "timestamp": 1}]}, "locations[0].longitude"),
        ({"locations": [{"seq": 1, "latitude": 0, "longitude": 0}]}, "locations[0].timestamp"),
        ({"locations": [{"seq": True, "latitude": 0, "longitude": 0, "timestamp": 1}]}, "locations[0].seq"),
        ({"locations": ["here"]}, "locations[0]"),
    ],
)
async def test_bad_uploads_name_the_field(servers, http, ws_settings, body, field) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    status, problem, _ = await upload(http, server, mint_token(ws_settings.jwt_secret, new_user()), body)
    assert status == 400
    assert field in [e["field"] for e in problem["errors"]]


async def test_too_many_points_not_json_and_too_large_are_refused(servers, http, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(upload_max_points=3)
    token = mint_token(ws_settings.jwt_secret, new_user())
    status, problem, _ = await upload(http, server, token, points(1, 2, 3, 4))
    assert (status, problem["errors"][0]["field"]) == (400, "locations")
    status, problem, _ = await upload(http, server, token, None, raw=b"{not json")
    assert (status, problem["errors"][0]["field"]) == (400, "body")
    status, problem, _ = await upload(http, server, token, None, raw=b" " * (65 * 1024))
    assert status == 413


async def test_forged_missing_and_url_tokens_are_refused(servers, http, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    user = new_user()
    forged = mint_token("another-secret-that-is-long-enough-0123456789", user)
    expired = mint_token(ws_settings.jwt_secret, user, ttl_s=60, now=0)
    for token in (None, forged, expired, "not.a.token"):
        status, problem, headers = await upload(http, server, token, points(1))
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="geo"'
        assert problem["errors"][0]["field"] == "Authorization"
    url = f"{server.http}{PATH}?token={mint_token(ws_settings.jwt_secret, user)}"
    async with http.post(url, json=points(1)) as resp:
        assert resp.status == 401


async def test_uploads_beyond_the_rate_get_429_with_retry_after(servers, http, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(upload_max_per_min=1.0)
    token = mint_token(ws_settings.jwt_secret, new_user())
    statuses = [(await upload(http, server, token, points(s)))[0] for s in range(1, 6)]
    assert statuses[:4] == [200] * 4  # a burst of four
    status, problem, headers = await upload(http, server, token, points(9))
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert problem["type"] == "/problems/too-many-requests"


async def test_an_upload_that_could_not_be_published_is_accepted_when_sent_again(  # type: ignore[no-untyped-def]
    servers, connect, befriend, http, ws_settings
) -> None:
    """Pub/sub refuses (its breaker is open): 503, and the points are not marked as seen, so
    the same upload sent again is applied, not ignored. Nothing acknowledged is lost."""
    server = await servers(breaker_reset_s=0.3)
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice = await connect(server, a)
    await alice.location(*SF)
    await alice.expect("init")
    token = mint_token(ws_settings.jwt_secret, b)
    breaker = server.hub.broker.breakers["default"]
    for _ in range(ws_settings.breaker_failures):
        permit = breaker.allow()
        assert permit is not None
        breaker.failure(permit)
    batch = points(1, 2)
    status, problem, headers = await upload(http, server, token, batch)
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert problem["type"] == "/problems/unavailable"
    await asyncio.sleep(0.4)  # the breaker lets a probe through: pub/sub answers again
    status, answer, _ = await upload(http, server, token, batch)
    assert (status, answer["accepted"], answer["ignored"]) == (200, 2, 0)
    await alice.expect("friend_location", user_id=b)


async def test_an_upload_retried_after_an_erasure_brings_nothing_back(  # type: ignore[no-untyped-def]
    servers, connect, befriend, http, api_for, ws_settings
) -> None:
    """The sequence mark outlives an erasure: a retry in flight cannot show an erased place again."""
    call = await api_for(ws_settings)
    server = await servers(upload_max_per_min=600.0)
    b, alice, token = await watched_by_alice(server, connect, befriend, ws_settings)
    batch = points(1, 2)
    status, answer, _ = await upload(http, server, token, batch)
    assert (status, answer["accepted"]) == (200, 2)
    await alice.expect("friend_location", user_id=b)
    status, body = await call("DELETE", f"/v1/users/{b}/locations", b)
    assert status == 200, body
    await alice.expect("friend_left", user_id=b)
    # The same upload again (its answer was lost, say): accepted as seen, nothing shown.
    status, answer, _ = await upload(http, server, token, batch)
    assert (status, answer["accepted"], answer["ignored"], answer["last_seq"]) == (200, 0, 2, 2)
    assert [f for f in await alice.quiet(0.5) if f.get("user_id") == b] == []
    # A device numbering from 0 again goes on above last_seq, and is seen again.
    status, answer, _ = await upload(http, server, token, points(3))
    assert (status, answer["accepted"]) == (200, 1)
    await alice.expect("friend_location", user_id=b)
