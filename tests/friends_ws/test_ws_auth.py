"""Identity on the socket: no token in the URL, the browser's subprotocol form, and tokens
that expire on an open connection (closed with 4001 unless an ``auth`` frame renews them)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from multidict import CIMultiDict
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from friends_ws.auth import handshake_token
from friends_ws.lifetimes import Deadlines
from geo_common.tokens import TokenError, mint_token
from tests.friends_ws.ws_helpers import SF, TIMEOUT_FACTOR, WAIT, Client, new_user

#: A token's lifetime in the expiry tests, seconds: long enough to connect and exchange a
#: frame first (``exp`` is whole seconds, so up to one second of it may be gone at once).
SHORT_TTL_S = max(3, round(3 * TIMEOUT_FACTOR))
#: How late after its token's expiry a connection may close, seconds: the loop's tick, a
#: round trip, and a loaded machine's scheduling.
CLOSE_SLACK_S = 1.0 * TIMEOUT_FACTOR


def expiry_of(token: str) -> float:
    """A token's ``exp``, Unix seconds (read without checking: the test minted it)."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def refused(url: str, **options: Any) -> websockets.InvalidStatus:
    """The refusal of a handshake that must not be upgraded."""
    with pytest.raises(websockets.InvalidStatus) as info:
        await ws_connect(url, open_timeout=WAIT, **options)
    return info.value


async def closed_at(client: Client, timeout: float) -> float:
    """Read until the server closes the connection; when that was, Unix seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await client.ws.recv()
    except ConnectionClosed:
        return time.time()


# --- where the token goes (pure) -----------------------------------------------------------------


def test_the_token_comes_from_the_header_or_the_bearer_subprotocol() -> None:
    assert handshake_token(CIMultiDict({"Authorization": "Bearer abc.def.ghi"}), {}) == "abc.def.ghi"
    offered = CIMultiDict({"Sec-WebSocket-Protocol": "geo.v1, bearer.abc.def.ghi"})
    assert handshake_token(offered, {}) == "abc.def.ghi"
    two_lines = CIMultiDict([("Sec-WebSocket-Protocol", "geo.v1"), ("Sec-WebSocket-Protocol", "bearer.a.b.c")])
    assert handshake_token(two_lines, {}) == "a.b.c"


@pytest.mark.parametrize(
    ("headers", "query", "says"),
    [
        ({}, {"token": "a.b.c"}, "URL"),
        ({"Authorization": "Bearer a.b.c"}, {"token": "a.b.c"}, "URL"),
        ({}, {}, "missing token"),
        ({"Sec-WebSocket-Protocol": "bearer.a.b.c"}, {}, "geo.v1"),
        ({"Sec-WebSocket-Protocol": "geo.v1, bearer."}, {}, "missing token"),
        ({"Sec-WebSocket-Protocol": "geo.v1, bearer.a.b.c, bearer.d.e.f"}, {}, "one bearer"),
        ({"Sec-WebSocket-Protocol": "geo.v1, bearer.a.b.c", "Authorization": "Bearer a.b.c"}, {}, "once"),
        ({"Authorization": "Basic abc"}, {}, "Bearer"),
    ],
)
def test_a_handshake_without_one_clear_token_is_refused(
    headers: dict[str, str], query: dict[str, str], says: str
) -> None:
    with pytest.raises(TokenError, match=says):
        handshake_token(CIMultiDict(headers), query)


def test_geo_v1_must_be_in_the_header_line_the_server_selects_from() -> None:
    # aiohttp reads the first line only, and logs it when nothing there is known to it.
    lines = CIMultiDict([("Sec-WebSocket-Protocol", "bearer.a.b.c"), ("Sec-WebSocket-Protocol", "geo.v1")])
    with pytest.raises(TokenError, match="geo.v1"):
        handshake_token(lines, {})


def test_deadlines_come_due_once_in_order_and_stale_entries_do_not() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("a", 100)
    deadlines.set("b", 50)
    deadlines.set("c", 70)
    deadlines.set("b", 200)  # moved later: its old entry is stale
    deadlines.discard("c")
    assert deadlines.due(99) == []
    assert deadlines.due(150) == ["a"]
    assert deadlines.due(10_000) == ["b"]
    assert deadlines.due(10_000) == [] and len(deadlines) == 0
    for n in range(1000):  # moving one key often keeps the heap small
        deadlines.set("d", n)
    assert len(deadlines._heap) <= 2 * len(deadlines) + 65  # noqa: SLF001 - the memory bound itself
    assert deadlines.due(999) == ["d"]


# --- the handshake -------------------------------------------------------------------------------


async def test_a_token_in_the_url_is_refused(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    token = mint_token(ws_settings.jwt_secret, new_user())
    refusal = await refused(f"{server.url}?token={token}")
    assert refusal.response.status_code == 401
    body = refusal.response.body.decode()
    assert "Authorization" in body and "bearer." in body and token not in body
    # Not even beside a valid header: the URL is in the logs already, the client must change.
    refusal = await refused(f"{server.url}?token={token}", additional_headers={"Authorization": f"Bearer {token}"})
    assert refusal.response.status_code == 401


async def test_the_subprotocol_handshake_selects_geo_v1_and_never_echoes_the_token(  # type: ignore[no-untyped-def]
    servers, connect
) -> None:
    server = await servers()
    user = new_user()
    client = await connect(server, user, subprotocol=True)
    assert client.ws.subprotocol == "geo.v1"
    response = client.ws.response
    assert response is not None and response.headers["Sec-WebSocket-Protocol"] == "geo.v1"
    assert "bearer" not in str(response.headers).lower()
    await client.location(*SF)
    await client.expect("init")
    # A header client offering geo.v1 is answered the same; one offering nothing is not.
    headed = await connect(server, new_user())
    assert headed.ws.subprotocol is None


async def test_a_bearer_subprotocol_without_geo_v1_is_refused(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    token = mint_token(ws_settings.jwt_secret, new_user())
    refusal = await refused(server.url, subprotocols=[Subprotocol(f"bearer.{token}")])
    assert refusal.response.status_code == 401 and b"geo.v1" in refusal.response.body
    refusal = await refused(server.url, subprotocols=[Subprotocol("geo.v1"), Subprotocol("bearer.not-a-token")])
    assert refusal.response.status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "..",
        "e30.e30.",  # {}.{}. unsigned
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",  # alg none
        "eyJhbGciOiJIUzI1NiJ9.W10.sig",  # a payload that is a list
        "x" * 5000,
        "\u00e9uro.tok.en",
    ],
)
async def test_a_malformed_token_is_a_401_before_the_upgrade_never_a_500(servers, token: str) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    async with aiohttp.ClientSession() as http:
        for headers in (
            {"Authorization": f"Bearer {token}"},
            {"Sec-WebSocket-Protocol": f"geo.v1, bearer.{token}"},
        ):
            upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
            upgrade["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
            async with http.get(server.http + "/v1/friends/ws", headers={**upgrade, **headers}) as resp:
                assert resp.status == 401, await resp.text()
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")


# --- tokens that expire on an open socket --------------------------------------------------------


async def test_an_expired_token_closes_the_socket_with_4001(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(jwt_leeway_s=0)
    user = new_user()
    token = mint_token(ws_settings.jwt_secret, user, ttl_s=SHORT_TTL_S)
    client = await connect(server, user, token=token)
    await client.location(*SF)
    await client.expect("init")  # streaming while the token holds
    when = await closed_at(client, SHORT_TTL_S + WAIT)
    exp = expiry_of(token)
    assert exp <= when <= exp + CLOSE_SLACK_S, f"closed {when - exp:+.2f} s from the token's expiry"
    assert client.ws.close_code == 4001 and client.ws.close_reason == "token expired"
    assert server.hub.stats.token_expiries == 1


async def test_a_subprotocol_connection_expires_too(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(jwt_leeway_s=0)
    user = new_user()
    token = mint_token(ws_settings.jwt_secret, user, ttl_s=SHORT_TTL_S)
    client = await connect(server, user, token=token, subprotocol=True)
    when = await closed_at(client, SHORT_TTL_S + WAIT)
    assert when <= expiry_of(token) + CLOSE_SLACK_S and client.ws.close_code == 4001


async def test_an_auth_frame_with_a_fresh_token_keeps_the_socket_open(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(jwt_leeway_s=0)
    user = new_user()
    token = mint_token(ws_settings.jwt_secret, user, ttl_s=SHORT_TTL_S)
    client = await connect(server, user, token=token)
    fresh = mint_token(ws_settings.jwt_secret, user, ttl_s=3600)
    await client.send(type="auth", token=fresh)
    assert await client.expect("auth") == {"type": "auth", "expires_at": int(expiry_of(fresh) * 1000)}
    # Past the first token's expiry, with room for a late close: still open, still served.
    await asyncio.sleep(max(0.0, expiry_of(token) + CLOSE_SLACK_S - time.time()))
    await client.location(*SF)
    await client.expect("init")
    assert client.ws.close_code is None and server.hub.stats.reauths == 1


async def test_an_auth_frame_with_a_bad_or_foreign_token_changes_nothing(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(jwt_leeway_s=0)
    user, other = new_user(), new_user()
    secret = ws_settings.jwt_secret
    token = mint_token(secret, user, ttl_s=SHORT_TTL_S)
    client = await connect(server, user, token=token)
    for bad in (
        mint_token(secret, other, ttl_s=3600),  # another user's
        mint_token(secret, user, ttl_s=60, now=time.time() - 3600),  # this user's, expired
        mint_token("another-secret-that-is-long-enough-0123456789", user, ttl_s=3600),  # forged
        "garbage",
    ):
        await client.send(type="auth", token=bad)
        error = await client.expect("error")
        assert error["code"] == "invalid_token", error
        assert bad not in error["detail"]
    await client.send(type="auth", token="")
    assert (await client.expect("error"))["code"] == "invalid_value"
    # The connection keeps its own token's expiry.
    when = await closed_at(client, SHORT_TTL_S + WAIT)
    assert when <= expiry_of(token) + CLOSE_SLACK_S and client.ws.close_code == 4001
    assert not [f for f in client.received if f["type"] == "auth"]


# --- an identity provider's tokens -----------------------------------------------------------------

PROVIDER = "https://idp.example"


def provider_token(key: ec.EllipticCurvePrivateKey, subject: str, audience: str, ttl_s: int = 3600) -> str:
    """A token of the identity provider (ES256), as it would issue one."""
    now = int(time.time())
    claims = {"iss": PROVIDER, "aud": audience, "sub": subject, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})


async def test_a_providers_token_names_the_user_it_maps_to(servers, connect, ws_settings, primary) -> None:  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    server = await servers(jwt_provider_issuer=PROVIDER, jwt_public_key=pem)
    subject = f"auth0|{new_user()}"
    token = provider_token(key, subject, ws_settings.jwt_audience)
    client = await connect(server, 0, token=token, subprotocol=True)  # the mapping is created now
    await client.location(*SF)
    await client.expect("init")
    user_id = await primary.fetchval(
        "SELECT user_id FROM identities WHERE issuer = $1 AND subject = $2", PROVIDER, subject
    )
    assert user_id is not None and set(server.hub.subscriptions.owners) == {user_id}
    # A fresh token of the same subject renews the connection; another subject's does not.
    fresh = provider_token(key, subject, ws_settings.jwt_audience, ttl_s=7200)
    await client.send(type="auth", token=fresh)
    assert (await client.expect("auth"))["expires_at"] == int(expiry_of(fresh) * 1000)
    await client.send(type="auth", token=provider_token(key, f"auth0|{new_user()}", ws_settings.jwt_audience))
    assert (await client.expect("error"))["code"] == "invalid_token"


async def test_a_handshake_whose_token_cannot_be_checked_now_is_a_503(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    # The provider's keys are fetched on first use, from a port nobody listens on.
    server = await servers(jwt_provider_issuer=PROVIDER, jwt_jwks_url="http://127.0.0.1:9/jwks.json")
    token = provider_token(ec.generate_private_key(ec.SECP256R1()), "auth0|x", ws_settings.jwt_audience)
    refusal = await refused(server.url, additional_headers={"Authorization": f"Bearer {token}"})
    assert refusal.response.status_code == 503 and int(refusal.response.headers["Retry-After"]) >= 1
