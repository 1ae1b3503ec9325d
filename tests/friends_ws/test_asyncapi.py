"""The AsyncAPI document (``GET /asyncapi.json``) against the real server: a session sends every
client frame it describes, and every frame the server answers must match its schema.

The document is read from the running server, as a client generator would; each server frame
is validated against the payload of the one server message whose ``type`` it has, and every
server message of the document must have been received at least once (so a frame the
document lists but the server no longer sends fails too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from friends_ws.keys import drain_key
from geo_common import consent_db, friends_db
from geo_common.tokens import mint_token
from tests.friends_ws.consent_helpers import Publisher, homes
from tests.friends_ws.ws_helpers import NEAR, SF, Client, Server, new_user

LIMITS = consent_db.Limits(max_friends=100, max_pending=100)
BASE = "urn:geo:asyncapi"
#: 1 km from SF the other way: Carol, in Alice's view once they are friends.
SOUTH = (SF[0] - 0.009, SF[1])

Connect = Callable[..., Awaitable[Client]]


class Document:
    """The AsyncAPI document: its messages by side, each with a validator of its payload."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.registry: Registry[Any] = Registry().with_resource(
            BASE, Resource.from_contents(doc, default_specification=DRAFT7)
        )
        self.client: dict[str, Draft7Validator] = {}
        self.server: dict[str, Draft7Validator] = {}
        for operation in doc["operations"].values():
            side = self.server if operation["action"] == "send" else self.client
            for ref in operation["messages"]:
                name = self._component(ref["$ref"])
                side[name] = self.validator(f"/components/messages/{name}/payload")

    def _component(self, pointer: str) -> str:
        """The name of the component message an operation's reference leads to."""
        node: Any = self.doc
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part]
        return str(node["$ref"].rpartition("/")[2])

    def validator(self, pointer: str) -> Draft7Validator:
        return Draft7Validator({"$ref": f"{BASE}#{pointer}"}, registry=self.registry)

    def kind(self, name: str) -> str:
        return str(self.doc["components"]["messages"][name]["payload"]["properties"]["type"]["const"])

    def server_message(self, frame: dict[str, Any]) -> str:
        """The server message ``frame`` is, checked against its schema."""
        names = [name for name in self.server if self.kind(name) == frame.get("type")]
        assert len(names) == 1, f"{frame}: not exactly one server message of this type in the document"
        errors = [e.message for e in self.server[names[0]].iter_errors(frame)]
        assert errors == [], f"{frame} does not match {names[0]}: {errors}"
        return names[0]


@pytest.fixture
async def document(servers) -> Document:  # type: ignore[no-untyped-def]
    server = await servers()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.http}/asyncapi.json") as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            return Document(await resp.json())


def test_the_document_is_asyncapi_3_and_its_examples_match_their_schemas(document: Document) -> None:
    doc = document.doc
    assert doc["asyncapi"] == "3.0.0" and doc["channels"]["friends"]["address"] == "/v1/friends/ws"
    for name, message in doc["components"]["messages"].items():
        validator = document.validator(f"/components/messages/{name}/payload")
        Draft7Validator.check_schema(message["payload"])
        for example in message["examples"]:
            assert list(validator.iter_errors(example["payload"])) == [], name
    assert set(document.client) == {"location", "signOut", "settings", "sharing", "discover", "auth"}
    # The refusals the document describes are refused by the schemas too.
    location = document.client["location"]
    assert not location.is_valid({"type": "location", "latitude": "north", "longitude": 0})
    assert not location.is_valid({"type": "location", "latitude": 91, "longitude": 0})
    assert not document.client["settings"].is_valid({"type": "settings", "radius_m": 10})
    resume = {"type": "location", "latitude": 0, "longitude": 0, "resume": {"at": 1, "friends": {"x": 1}}}
    assert not location.is_valid(resume)


async def test_every_frame_of_a_session_matches_the_document(  # type: ignore[no-untyped-def]
    document: Document,
    servers,
    connect: Connect,
    befriend,
    primary: asyncpg.Connection,
    publisher: Publisher,
    ws_settings,
) -> None:
    server: Server = await servers(ws_drain_s=0.2)
    a, b, c = new_user(), new_user(), new_user()
    await befriend((a, b))
    await friends_db.set_display_name(primary, c, "Carol")
    alice, bob, carol = await connect(server, a), await connect(server, b), await connect(server, c)
    first_bob = bob
    sent: list[dict[str, Any]] = []

    async def send(client: Client, **frame: Any) -> None:
        sent.append(frame)
        await client.send(**frame)

    # Positions: Bob first, so Alice's init lists him.
    await send(bob, type="location", latitude=NEAR[0], longitude=NEAR[1], timestamp=1_763_890_000_000)
    await bob.expect("init")
    await send(carol, type="location", latitude=SOUTH[0], longitude=SOUTH[1])
    await carol.expect("init")
    # Nearby strangers: Carol and Dave (not friends) opt in and see each other, coarsely.
    dave = await connect(server, new_user())
    await send(carol, type="discover", enabled=True, handle="carol_c")
    await carol.expect("discover", enabled=True, handle="carol_c")
    await send(dave, type="location", latitude=SOUTH[0] + 0.002, longitude=SOUTH[1])
    await dave.expect("init")
    await send(dave, type="discover", enabled=True)
    await dave.expect("discover", enabled=True, handle=None)
    await dave.expect("stranger", handle="carol_c")
    await carol.expect("stranger", handle=None)
    await send(carol, type="discover", enabled=False)
    await carol.expect("discover", enabled=False)
    await dave.expect("stranger_left", reason="hidden")
    await send(alice, type="location", latitude=SF[0], longitude=SF[1])
    alice_init = await alice.expect("init")
    assert [f["user_id"] for f in alice_init["friends"]] == [b]
    await send(bob, type="location", latitude=NEAR[0] + 1e-4, longitude=NEAR[1])
    await alice.expect("friend_location", user_id=b)
    # The radius: Bob leaves the view, and comes back.
    await send(alice, type="settings", radius_m=1000.0)
    await alice.expect("friend_left", user_id=b, reason="out_of_range")
    await alice.expect("settings", radius_m=1000.0)
    await send(alice, type="settings", radius_m=8047.0)
    await alice.expect("friend_location", user_id=b)
    # Sharing: off (Alice sees Bob leave), then on again, coarsely.
    await send(bob, type="sharing", enabled=False)
    await bob.expect("sharing", enabled=False)
    await alice.expect("friend_left", user_id=b, reason="sharing_off")
    await send(bob, type="sharing", enabled=True, precision="coarse", private_history=False)
    await bob.expect("sharing", enabled=True, precision="coarse")
    await alice.expect("friend_location", user_id=b)
    # A fresh token, and a bad one.
    await send(alice, type="auth", token=mint_token(ws_settings.jwt_secret, a))
    await alice.expect("auth")
    await send(alice, type="auth", token="not.a.token")
    await alice.expect("error", code="invalid_token")
    # Frames the server cannot use.
    await alice.ws.send("not json")
    await alice.expect("error", code="invalid_json")
    await alice.ws.send(b"\x00binary")
    await alice.expect("error", code="invalid_message")
    await send(alice, type="dance")
    await alice.expect("error", code="invalid_message")
    await send(alice, type="location", latitude="north", longitude=0)
    await alice.expect("error", code="invalid_value")
    # Carol asks Alice to be friends (geo-api's part played here), then Alice accepts.
    assert await consent_db.request_friendship(primary, c, a, LIMITS) is consent_db.Outcome.REQUESTED
    await publisher.publish(publisher.announcer.request_sent(c, a, await homes(primary, a, c), "Carol"))
    await alice.expect("friend_request", user_id=c, display_name="Carol")
    assert await consent_db.request_friendship(primary, a, c, LIMITS) is consent_db.Outcome.ACCEPTED
    names = {a: None, c: "Carol"}
    await publisher.publish(publisher.announcer.friendship_started(a, c, await homes(primary, a, c), names))
    await alice.expect("friend_added", user_id=c, display_name="Carol")
    await carol.expect("friend_added", user_id=a, display_name=None)
    await alice.expect("friend_location", user_id=c)
    # Bob signs out; he comes back, resuming what he held; Carol's friendship ends.
    await send(bob, type="sign_out")
    await alice.expect("friend_left", user_id=b, reason="offline")
    await bob.closed()
    bob = await connect(server, b)
    seen_at = alice_init["at"]
    await send(bob, type="location", latitude=NEAR[0], longitude=NEAR[1], resume={"at": seen_at, "friends": {}})
    await bob.expect("resumed")
    assert await consent_db.remove_relation(primary, c, a) is consent_db.Removed.FRIENDSHIP
    await publisher.publish(publisher.announcer.relation_ended(c, a, await homes(primary, a, c)))
    await alice.expect("friend_left", user_id=c, reason="unfriended")
    # More settings than the limit allows (GEO_WS_MAX_MESSAGES_PER_S, bursts of 5).
    for _ in range(6):
        await send(alice, type="settings", radius_m=2000.0)
    await alice.expect("error", code="rate_limited")
    for client in (alice, carol):
        await client.quiet(0.2)
    # The instance drains (geo-friends begins it on SIGTERM): each client is told when it closes.
    server.app[drain_key].begin(server.hub.keepalive, done=lambda: None)
    for client in (alice, carol):
        await client.expect("reconnect")

    received = [*alice.received, *first_bob.received, *bob.received, *carol.received, *dave.received]
    seen = {document.server_message(frame) for frame in received}
    assert seen == set(document.server), f"described but never received: {set(document.server) - seen}"
    valid = [f for f in sent if any(v.is_valid(f) for v in document.client.values())]
    assert {f["type"] for f in valid} == {document.kind(name) for name in document.client}
    assert {f["type"] for f in sent if f not in valid} == {"dance", "location"}
