"""Identity over HTTP: local and provider tokens on the real geo-api (role all) on port 0.

The identity provider is the test's own: key pairs generated here, the JWKS served from
127.0.0.1 (tests/foundation/test_identity.py). The session's real PostgreSQL and Redis.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer

from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from location_api.app import create_app
from tests.foundation.test_identity import (
    MALFORMED_SUBJECTS,
    PROVIDER,
    JwksServer,
    SigningKey,
    hs256,
    local_claims,
    provider_claims,
)

PROBLEM = "application/problem+json"
#: Routes that need a caller, each with the kind of caller it needs.
GUARDED = [
    ("GET", "/v1/me", None),
    ("GET", "/v1/users/12/friends", None),
    ("GET", "/v1/watch/positions", None),
    ("POST", "/v1/businesses", {"name": "x", "latitude": 1.0, "longitude": 2.0, "category": "cafe"}),
]


@dataclass
class Api:
    http: aiohttp.ClientSession
    settings: Settings

    async def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, path, headers=headers, **kwargs) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else None
            return resp.status, body, resp.headers


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    server = await JwksServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def start_api(settings: Settings) -> AsyncIterator[ApiFactory]:
    """``await start_api(**settings_overrides)``: geo-api (role all) and a client of it."""
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(**overrides: Any) -> Api:
        app_settings = replace(settings, api_role="all", **overrides)
        server = TestServer(create_app(app_settings), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        sessions.append(aiohttp.ClientSession(str(server.make_url(""))))
        return Api(sessions[-1], app_settings)

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def key(jwks: JwksServer) -> SigningKey:
    signing = SigningKey.new("RS256", "k1")
    jwks.keys = [signing, SigningKey.new("EdDSA", "k2")]
    return signing


@pytest.fixture
async def api(start_api: ApiFactory, jwks: JwksServer, key: SigningKey) -> Api:
    """geo-api trusting the session's local key and the test's identity provider."""
    return await start_api(jwt_provider_issuer=PROVIDER, jwt_jwks_url=jwks.url)


def assert_401(status: int, body: Any, headers: Any, what: object) -> None:
    assert status == 401, (what, status, body)
    assert body["type"] == "/problems/not-authenticated" and headers["Content-Type"] == PROBLEM, what
    assert headers["WWW-Authenticate"].startswith("Bearer"), what


# --- local tokens -------------------------------------------------------------------------------


async def test_geo_token_n_still_acts_as_user_n(api: Api) -> None:
    secret = api.settings.jwt_secret
    status, body, headers = await api.call("GET", "/v1/me", mint_token(secret, 12))
    assert (status, body) == (200, {"user_id": 12, "role": "user", "issuer": "geo-local"})
    assert headers["Cache-Control"] == "no-store"
    assert (await api.call("GET", "/v1/users/12/friends", mint_token(secret, 12)))[0] == 200
    assert (await api.call("GET", "/v1/users/13/friends", mint_token(secret, 12)))[0] == 403
    assert (await api.call("GET", "/v1/users/13/friends", mint_token(secret, 1, Role.ADMIN)))[0] == 200
    status, body, _ = await api.call("GET", "/v1/me", mint_token(secret, 7, Role.OWNER))
    assert body == {"user_id": 7, "role": "owner", "issuer": "geo-local"}


@pytest.mark.parametrize("subject", MALFORMED_SUBJECTS)
async def test_malformed_subjects_are_401_on_every_guarded_route(api: Api, subject: str) -> None:
    token = hs256(local_claims(subject, role="admin"), secret=api.settings.jwt_secret)
    for method, path, body in GUARDED:
        assert_401(*await api.call(method, path, token, json=body), (subject, path))


async def test_bad_tokens_of_every_kind_are_401(api: Api, key: SigningKey) -> None:
    secret = api.settings.jwt_secret
    now = int(time.time())
    tokens = {
        "wrong iss": hs256(local_claims(iss="someone"), secret),
        "no aud": hs256({k: v for k, v in local_claims().items() if k != "aud"}, secret),
        "wrong aud": hs256(local_claims(aud="other"), secret),
        "30 years": hs256(local_claims(exp=now + 30 * 365 * 86_400), secret),
        "too long a lifetime": hs256(local_claims(iat=now - 30 * 86_400, exp=now + 60), secret),
        "expired": hs256(local_claims(iat=now - 600, exp=now - 120), secret),
        "infinite exp": hs256(local_claims(exp=1e400), secret),
        "alg none": jwt.encode(local_claims(), key="", algorithm="none"),
        "HS256 as the provider": hs256(provider_claims(), secret),
        "RS256 as local": key.sign(local_claims()),
        "provider, wrong aud": key.sign(provider_claims(aud="other")),
        "provider, unknown kid": SigningKey.new("RS256", "nope").sign(provider_claims()),
        "provider, empty sub": key.sign(provider_claims(sub="")),
        "provider, 256 chars": key.sign(provider_claims(sub="x" * 256)),
        "garbage": "not.a.token",
        "not base64": "\u00e9\u00e9.\u00e9.\u00e9",
        "two parts": "abc.def",
    }
    for what, token in tokens.items():
        assert_401(*await api.call("GET", "/v1/me", token), what)
    # Expired but within the leeway: still fine.
    fresh = hs256(local_claims(iat=now - 600, exp=now - 5), secret)
    assert (await api.call("GET", "/v1/me", fresh))[0] == 200
    for header in ("Basic dXNlcjpwdw==", "Bearer", "Bearer ", "bearer  ", "Token abc"):
        assert_401(*await api.call("GET", "/v1/me", headers={"Authorization": header}), header)
    assert_401(*await api.call("GET", "/v1/me"), "no header")


async def test_a_search_is_served_whatever_its_authorization_header_holds(api: Api) -> None:
    path = "/v1/search/nearby?latitude=48.85&longitude=2.35&radius=1000"
    anonymous, _, _ = await api.call("GET", path)
    assert anonymous == 200
    for token in ("not.a.token", hs256(local_claims("\u00b2"), api.settings.jwt_secret)):
        status, _, _ = await api.call("GET", path, token)
        assert status == 200, token


# --- a provider's tokens ------------------------------------------------------------------------


async def test_a_provider_subject_is_one_stable_user(api: Api, key: SigningKey, start_api: ApiFactory) -> None:
    subject = f"auth0|{time.time_ns()}"
    status, me, _ = await api.call("GET", "/v1/me", key.sign(provider_claims(subject)))
    assert status == 200 and me["issuer"] == PROVIDER and me["role"] == "user"
    user_id = me["user_id"]
    assert user_id >= 2**52
    # Again, with another token of the same subject, and from another instance.
    assert (await api.call("GET", "/v1/me", key.sign(provider_claims(subject, iat=int(time.time()) - 5))))[1] == me
    other_instance = await start_api(jwt_provider_issuer=PROVIDER, jwt_jwks_url=api.settings.jwt_jwks_url)
    assert (await other_instance.call("GET", "/v1/me", key.sign(provider_claims(subject))))[1] == me
    # It is that user on the user routes, and no one else.
    token = key.sign(provider_claims(subject))
    assert (await api.call("GET", f"/v1/users/{user_id}/friends", token))[0] == 200
    assert (await api.call("GET", "/v1/users/12/friends", token))[0] == 403
    # Another subject is another user.
    status, other, _ = await api.call("GET", "/v1/me", key.sign(provider_claims(subject + "-2")))
    assert status == 200 and other["user_id"] != user_id


async def test_the_same_subject_of_another_issuer_is_another_user(
    api: Api, key: SigningKey, start_api: ApiFactory
) -> None:
    subject = f"auth0|{time.time_ns()}"
    mine = (await api.call("GET", "/v1/me", key.sign(provider_claims(subject))))[1]
    other = "https://other-idp.example/"
    elsewhere = await start_api(jwt_provider_issuer=other, jwt_jwks_url=api.settings.jwt_jwks_url)
    theirs = (await elsewhere.call("GET", "/v1/me", key.sign(provider_claims(subject, iss=other))))[1]
    assert theirs["issuer"] == other and theirs["user_id"] != mine["user_id"]
    # Each instance trusts only its own provider.
    assert_401(*await elsewhere.call("GET", "/v1/me", key.sign(provider_claims(subject))), "the first provider")


async def test_provider_tokens_are_plain_users_whatever_they_claim(api: Api, key: SigningKey) -> None:
    token = key.sign(provider_claims(f"admin-{time.time_ns()}", role="admin"))
    assert (await api.call("GET", "/v1/me", token))[1]["role"] == "user"
    status, body, _ = await api.call("GET", "/v1/watch/positions", token)
    assert status == 403 and body["type"] == "/problems/forbidden"
    status, _, _ = await api.call("POST", "/v1/businesses", token, json=GUARDED[3][2])
    assert status == 403


async def test_an_unreachable_provider_is_503_not_401(start_api: ApiFactory, jwks: JwksServer, key: SigningKey) -> None:
    api = await start_api(jwt_provider_issuer=PROVIDER, jwt_jwks_url=jwks.url)
    await jwks.stop()
    token = key.sign(provider_claims())
    status, body, headers = await api.call("GET", "/v1/me", token)
    assert status == 503 and body["type"] == "/problems/identity-provider-unavailable" and headers["Retry-After"]
    # Local tokens and anonymous searches do not depend on the provider.
    assert (await api.call("GET", "/v1/me", mint_token(api.settings.jwt_secret, 3)))[0] == 200
    path = "/v1/search/nearby?latitude=48.85&longitude=2.35&radius=1000"
    assert (await api.call("GET", path, token))[0] == 200


# --- the map page's WebSocket URL ---------------------------------------------------------------


async def test_the_page_never_takes_the_websocket_url_from_host_outside_dev(start_api: ApiFactory) -> None:
    evil = {"Host": "evil.example:443"}
    production = await start_api(dev=False, friends_public_url="")
    _, config, _ = await production.call("GET", "/v1/page/config", headers=evil)
    assert config["friends_ws_url"] == "/v1/friends/ws"
    public = "wss://geo.example.com/v1/friends/ws"
    configured = await start_api(dev=False, friends_public_url=public)
    assert (await configured.call("GET", "/v1/page/config", headers=evil))[1]["friends_ws_url"] == public
    dev = await start_api(dev=True, friends_public_url="")
    _, config, _ = await dev.call("GET", "/v1/page/config", headers=evil)
    assert config["friends_ws_url"] == f"ws://evil.example:{dev.settings.ws_port}/v1/friends/ws"
    assert (await production.call("POST", "/v1/dev/token", json={"user_id": 1}))[0] == 404
