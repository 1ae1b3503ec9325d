"""Identity: local tokens and an identity provider's, verified by the real Authenticator.

The provider is played by the test: key pairs generated here (RSA, EC P-256, Ed25519), their
JWKS served by an aiohttp server on 127.0.0.1, port 0. Subjects are mapped in the session's
real PostgreSQL database. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings as hypothesis_settings, strategies as st

from geo_common.identity import MAX_SUBJECT_CHARS, Authenticator, Claims
from geo_common.provider_keys import KeysUnavailable
from geo_common.settings import Settings, SettingsError
from geo_common.tokens import Role, TokenError, mint_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
PROVIDER = "https://idp.example/"
AUDIENCE = "geo"
#: Subjects no local token may use (each was accepted, or failed with a 500, before).
MALFORMED_SUBJECTS = ["0012", "\u0661\u0662", "\u00b2", "1" * 30, "", "-1", " 1", "1.0", "+1", "1 ", "0", "9" * 19]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
ALGORITHMS: dict[str, type[Any]] = {
    "RS256": jwt.algorithms.RSAAlgorithm,
    "ES256": jwt.algorithms.ECAlgorithm,
    "EdDSA": jwt.algorithms.OKPAlgorithm,
}


def new_key(algorithm: str) -> PrivateKey:
    """A fresh private key for ``algorithm``."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@dataclass
class SigningKey:
    """A provider's key pair: signs tokens, publishes its public half."""

    algorithm: str
    kid: str
    private: PrivateKey = field(repr=False)

    @classmethod
    def new(cls, algorithm: str, kid: str) -> SigningKey:
        return cls(algorithm, kid, new_key(algorithm))

    def jwk(self) -> dict[str, Any]:
        public = ALGORITHMS[self.algorithm].to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig"}

    def pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = "", **header: Any) -> str:
        headers = {"kid": self.kid if kid == "" else kid, **header}
        if headers["kid"] is None:
            del headers["kid"]
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=headers)


def provider_claims(sub: str = "auth0|abc", **overrides: Any) -> dict[str, Any]:
    """A provider token's claims, valid for an hour, with ``overrides``."""
    now = int(time.time())
    return {"iss": PROVIDER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600, **overrides}


def local_claims(sub: str = "12", **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "geo-local", "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600, **overrides}


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    """Sign claims with HS256 by hand (PyJWT's encoder refuses some of the claims tested)."""
    b64 = jwt.utils.base64url_encode
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


class JwksServer:
    """An identity provider's JWKS endpoint on 127.0.0.1, port 0, counting its fetches."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> JwksServer:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        return self

    async def _jwks(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": [k.jwk() for k in self.keys]})

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    server = await JwksServer().start()
    yield server
    await server.stop()


def base_settings(**changes: Any) -> Settings:
    return replace(Settings(jwt_secret=SECRET), **changes)


def provider_settings(jwks_url: str = "", public_key: str = "", **changes: Any) -> Settings:
    return base_settings(jwt_provider_issuer=PROVIDER, jwt_jwks_url=jwks_url, jwt_public_key=public_key, **changes)


@pytest.fixture
async def primary(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.pg_primary, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


# --- local tokens ---------------------------------------------------------------------------------


async def test_a_local_token_acts_as_its_user(primary: asyncpg.Pool) -> None:
    auth = Authenticator(base_settings())
    claims = await auth.verify(mint_token(SECRET, 42, Role.OWNER))
    assert (claims.issuer, claims.subject, claims.role) == ("geo-local", "42", Role.OWNER)
    identity = await auth.identity_of(claims, primary)
    assert (identity.user_id, identity.role, identity.expires_at) == (42, Role.OWNER, claims.expires_at)
    assert auth.cached_identity(claims) == identity


async def test_geo_token_n_acts_as_user_n(primary: asyncpg.Pool) -> None:
    env = {"GEO_JWT_SECRET": SECRET, "PATH": "", "GEO_ENV_FILE": "/nonexistent"}
    out = subprocess.run(
        [sys.executable, "-m", "geo_common.token_cli", "31", "--role", "admin"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    auth = Authenticator(base_settings())
    identity = await auth.identity_of(await auth.verify(out.stdout.strip()), primary)
    assert (identity.user_id, identity.role) == (31, Role.ADMIN)
    # A configured issuer and audience are what geo-token signs with.
    env |= {"GEO_JWT_ISSUER": "ops", "GEO_JWT_AUDIENCE": "geo-prod"}
    out = subprocess.run(
        [sys.executable, "-m", "geo_common.token_cli", "7"], capture_output=True, text=True, env=env, check=True
    )
    ops = Authenticator(base_settings(jwt_issuer="ops", jwt_audience="geo-prod"))
    assert (await ops.verify(out.stdout.strip())).subject == "7"
    with pytest.raises(TokenError, match="iss"):
        await auth.verify(out.stdout.strip())


def test_geo_token_refuses_a_lifetime_the_services_would_refuse() -> None:
    env = {"GEO_JWT_SECRET": SECRET, "PATH": "", "GEO_ENV_FILE": "/nonexistent", "GEO_JWT_MAX_LIFETIME_S": "3600"}
    proc = subprocess.run(
        [sys.executable, "-m", "geo_common.token_cli", "3", "--ttl", "3601"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2 and proc.stdout == "" and "GEO_JWT_MAX_LIFETIME_S" in proc.stderr


@pytest.mark.parametrize("subject", MALFORMED_SUBJECTS)
async def test_malformed_local_subjects_are_refused(subject: str, primary: asyncpg.Pool) -> None:
    auth = Authenticator(base_settings())
    with pytest.raises(TokenError, match="sub"):
        await auth.verify(hs256(local_claims(subject)))
    # Claims built by hand are checked again before they name anyone.
    forged = Claims("geo-local", subject, Role.USER, time.time() + 60)
    with pytest.raises(TokenError, match="sub"):
        await auth.identity_of(forged, primary)


async def test_the_largest_user_id_is_a_subject_and_one_more_is_not() -> None:
    auth = Authenticator(base_settings())
    assert (await auth.verify(hs256(local_claims(str(2**63 - 1))))).subject == str(2**63 - 1)
    with pytest.raises(TokenError, match="sub"):
        await auth.verify(hs256(local_claims(str(2**63))))


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": "someone-else"}, "iss"),
        ({"iss": None}, "iss"),
        ({"iss": ["geo-local"]}, "iss"),
        ({"aud": None}, "aud"),
        ({"aud": "another-service"}, "aud"),
        ({"aud": ["another-service"]}, "aud"),
        ({"sub": None}, "sub"),
        ({"sub": 12}, "sub"),
        ({"exp": None}, "exp"),
        ({"exp": "9999999999"}, "exp"),
        ({"exp": True}, "exp"),
        ({"role": "root"}, "role"),
        ({"role": ["admin"]}, "role"),
    ],
)
async def test_bad_local_claims(claims: dict[str, Any], message: str) -> None:
    token_claims = {k: v for k, v in {**local_claims(), **claims}.items() if v is not None}
    with pytest.raises(TokenError, match=f"(?i){message}"):
        await Authenticator(base_settings()).verify(hs256(token_claims))


async def test_an_audience_list_containing_ours_is_accepted() -> None:
    claims = await Authenticator(base_settings()).verify(hs256(local_claims(aud=["other", AUDIENCE])))
    assert claims.subject == "12"


async def test_times_leeway_and_lifetime() -> None:
    auth = Authenticator(base_settings(jwt_leeway_s=30, jwt_max_lifetime_s=3600))
    now = int(time.time())
    # Expired 10 s ago: within the leeway. 100 s ago: beyond it.
    assert await auth.verify(hs256(local_claims(iat=now - 600, exp=now - 10)))
    with pytest.raises(TokenError, match="expired"):
        await auth.verify(hs256(local_claims(iat=now - 600, exp=now - 100)))
    with pytest.raises(TokenError, match="nbf"):
        await auth.verify(hs256(local_claims(nbf=now + 600)))
    assert await auth.verify(hs256(local_claims(nbf=now + 10)))
    with pytest.raises(TokenError, match="iat"):
        await auth.verify(hs256(local_claims(iat=now + 600)))
    # exp - iat above the maximum lifetime, even though exp itself is near.
    with pytest.raises(TokenError, match="lifetime"):
        await auth.verify(hs256(local_claims(iat=now - 7200, exp=now + 60)))
    # Thirty years ahead, with or without iat.
    thirty_years = now + 30 * 365 * 86_400
    with pytest.raises(TokenError, match="lifetime|from now"):
        await auth.verify(hs256(local_claims(exp=thirty_years)))
    no_iat = local_claims(exp=thirty_years)
    del no_iat["iat"]
    with pytest.raises(TokenError, match="from now"):
        await auth.verify(hs256(no_iat))
    with pytest.raises(TokenError, match="exp"):
        await auth.verify(hs256(local_claims(exp=1e400)))


async def test_unsigned_and_wrongly_signed_local_tokens() -> None:
    auth = Authenticator(base_settings())
    unsigned = jwt.encode(local_claims(role="admin"), key="", algorithm="none")
    with pytest.raises(TokenError, match="HS256"):
        await auth.verify(unsigned)
    with pytest.raises(TokenError, match="(?i)signature"):
        await auth.verify(hs256(local_claims(), secret="another-secret-that-is-long-enough-for-hs256"))
    # A token signed with the well-known development key is refused by a deployment's key.
    dev = mint_token(Settings().jwt_secret, 1, Role.ADMIN)
    with pytest.raises(TokenError):
        await auth.verify(dev)


async def test_a_provider_signed_token_with_the_local_issuer_is_refused(jwks: JwksServer) -> None:
    key = SigningKey.new("RS256", "k1")
    jwks.keys = [key]
    auth = Authenticator(provider_settings(jwks.url))
    with pytest.raises(TokenError, match="HS256"):
        await auth.verify(key.sign(local_claims()))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "e30.e30.",
        "\u00e9.\u00e9.\u00e9",
        "W10.W10.",  # [] and []
        "x" * 9000,
        jwt.utils.base64url_encode(b"[" * 5000).decode() + ".e30.",
    ],
)
async def test_garbage_is_a_token_error(token: str) -> None:
    with pytest.raises(TokenError):
        await Authenticator(base_settings()).verify(token)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "exp", "iat", "nbf", "role"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=40),
            st.lists(st.text(max_size=5), max_size=3),
            st.just("geo-local"),
            st.just(AUDIENCE),
        ),
    ),
    st.dictionaries(st.sampled_from(["alg", "kid", "typ"]), st.one_of(st.none(), st.integers(), st.text(max_size=8))),
)
def test_any_payload_is_claims_or_a_token_error(payload: dict[str, Any], header: dict[str, Any]) -> None:
    auth = Authenticator(base_settings())
    head = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", **header}).encode()).decode()
    body = jwt.utils.base64url_encode(json.dumps(payload).encode()).decode()
    for token in (f"{head}.{body}.", f"{head}.{body}.c2ln", hs256(payload)):
        try:
            claims = asyncio.run(auth.verify(token))
        except TokenError:
            continue
        assert claims.issuer == "geo-local" and claims.subject.isdecimal()


# --- an identity provider -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_provider_tokens_are_verified_with_the_jwks(jwks: JwksServer, algorithm: str) -> None:
    key = SigningKey.new(algorithm, f"{algorithm}-1")
    jwks.keys = [SigningKey.new("RS256", "other"), key]
    auth = Authenticator(provider_settings(jwks.url))
    claims = await auth.verify(key.sign(provider_claims(role="admin")))
    # The role claim is the provider's business: its tokens are plain users.
    assert (claims.issuer, claims.subject, claims.role) == (PROVIDER, "auth0|abc", Role.USER)
    assert jwks.fetches == 1
    await auth.verify(key.sign(provider_claims("someone-else")))
    assert jwks.fetches == 1  # cached


async def test_provider_tokens_are_held_to_the_same_claims(jwks: JwksServer) -> None:
    key = SigningKey.new("ES256", "k1")
    jwks.keys = [key]
    auth = Authenticator(provider_settings(jwks.url, jwt_max_lifetime_s=3600))
    now = int(time.time())
    for claims, message in [
        (provider_claims(aud="other"), "aud"),
        ({k: v for k, v in provider_claims().items() if k != "aud"}, "aud"),
        (provider_claims(exp=now - 3600), "expired"),
        (provider_claims(exp=now + 30 * 365 * 86_400), "lifetime|from now"),
        (provider_claims(sub=""), "sub"),
        (provider_claims(sub="x" * (MAX_SUBJECT_CHARS + 1)), "sub"),
        (provider_claims(sub="a\x00b"), "sub"),
        (provider_claims(sub=123), "sub"),
    ]:
        with pytest.raises(TokenError, match=f"(?i){message}"):
            await auth.verify(key.sign(claims))
    assert (await auth.verify(key.sign(provider_claims(sub="x" * MAX_SUBJECT_CHARS)))).subject


async def test_an_hs256_token_claiming_the_provider_is_refused(jwks: JwksServer) -> None:
    jwks.keys = [SigningKey.new("RS256", "k1")]
    auth = Authenticator(provider_settings(jwks.url))
    with pytest.raises(TokenError, match="RS256"):
        await auth.verify(hs256(provider_claims()))
    # Even signed with the local secret under the provider's kid, or with alg none.
    with pytest.raises(TokenError, match="RS256"):
        await auth.verify(jwt.encode(provider_claims(), SECRET, algorithm="HS256", headers={"kid": "k1"}))
    with pytest.raises(TokenError, match="RS256"):
        await auth.verify(jwt.encode(provider_claims(), key="", algorithm="none", headers={"kid": "k1"}))
    assert jwks.fetches == 0  # refused before any key was looked up


async def test_the_alg_must_match_the_key(jwks: JwksServer) -> None:
    rsa_key, ec_key = SigningKey.new("RS256", "rsa"), SigningKey.new("ES256", "ec")
    jwks.keys = [rsa_key, ec_key]
    auth = Authenticator(provider_settings(jwks.url))
    # An EC signature under the RSA key's id.
    with pytest.raises(TokenError, match="alg"):
        await auth.verify(ec_key.sign(provider_claims(), kid="rsa"))
    # The right alg, the wrong key.
    forged = SigningKey("RS256", "rsa", new_key("RS256"))
    with pytest.raises(TokenError, match="(?i)signature"):
        await auth.verify(forged.sign(provider_claims()))


async def test_a_rotated_key_is_fetched_on_its_unknown_kid(jwks: JwksServer) -> None:
    old, new = SigningKey.new("RS256", "2026-01"), SigningKey.new("ES256", "2026-02")
    jwks.keys = [old]
    auth = Authenticator(provider_settings(jwks.url), min_refetch_s=0.2)
    await auth.verify(old.sign(provider_claims()))
    assert jwks.fetches == 1
    jwks.keys = [old, new]
    await asyncio.sleep(0.25)
    assert (await auth.verify(new.sign(provider_claims("new-key-user")))).subject == "new-key-user"
    assert jwks.fetches == 2
    # The old key is withdrawn: tokens it signs stop working once the JWKS is read again.
    jwks.keys = [new]
    await asyncio.sleep(0.25)
    with pytest.raises(TokenError, match="key"):
        await auth.verify(SigningKey.new("RS256", "unknown").sign(provider_claims()))
    with pytest.raises(TokenError, match="key"):
        await auth.verify(old.sign(provider_claims()))


async def test_made_up_kids_do_not_hammer_the_provider(jwks: JwksServer) -> None:
    key = SigningKey.new("RS256", "real")
    jwks.keys = [key]
    auth = Authenticator(provider_settings(jwks.url))  # the default: at most every 5 s
    await auth.verify(key.sign(provider_claims()))
    forger = SigningKey.new("RS256", "x")
    for i in range(50):
        with pytest.raises(TokenError):
            await auth.verify(forger.sign(provider_claims(), kid=f"made-up-{i}"))
    assert jwks.fetches == 1
    # Concurrent first uses share one fetch.
    fresh = Authenticator(provider_settings(jwks.url))
    await asyncio.gather(*(fresh.verify(key.sign(provider_claims(f"u{i}"))) for i in range(20)))
    assert jwks.fetches == 2


async def test_an_unreachable_jwks_is_keys_unavailable(jwks: JwksServer) -> None:
    url = jwks.url
    await jwks.stop()
    auth = Authenticator(provider_settings(url))
    key = SigningKey.new("RS256", "k1")
    with pytest.raises(KeysUnavailable):
        await auth.verify(key.sign(provider_claims()))
    # Not a 500 either: KeysUnavailable is a TokenError.
    with pytest.raises(TokenError):
        await auth.verify(key.sign(provider_claims()))


async def test_a_configured_public_key(tmp_path: Path) -> None:
    key = SigningKey.new("ES256", "ignored")
    for public_key in (key.pem(), str(tmp_path / "idp.pem")):
        (tmp_path / "idp.pem").write_text(key.pem())
        auth = Authenticator(provider_settings(public_key=public_key))
        assert (await auth.verify(key.sign(provider_claims(), kid=None))).subject == "auth0|abc"
        assert (await auth.verify(key.sign(provider_claims()))).subject == "auth0|abc"
        with pytest.raises(TokenError, match="(?i)signature"):
            await auth.verify(SigningKey.new("ES256", "x").sign(provider_claims()))
        with pytest.raises(TokenError, match="alg"):
            await auth.verify(SigningKey.new("RS256", "x").sign(provider_claims()))
    missing = Authenticator(provider_settings(public_key=str(tmp_path / "nope.pem")))
    with pytest.raises(KeysUnavailable):
        await missing.verify(key.sign(provider_claims()))


def test_inconsistent_provider_settings_are_refused() -> None:
    pem = SigningKey.new("EdDSA", "k").pem()
    for changes, variable in [
        ({"jwt_provider_issuer": PROVIDER}, "GEO_JWT_JWKS_URL"),
        ({"jwt_jwks_url": "https://idp.example/jwks"}, "GEO_JWT_PROVIDER_ISSUER"),
        ({"jwt_provider_issuer": PROVIDER, "jwt_jwks_url": "https://a/j", "jwt_public_key": pem}, "exactly one"),
        ({"jwt_provider_issuer": "geo-local", "jwt_public_key": pem}, "differ"),
        ({"jwt_provider_issuer": PROVIDER, "jwt_jwks_url": "http://idp.example/jwks"}, "https"),
        ({"jwt_provider_issuer": PROVIDER, "jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope"}, "PUBLIC_KEY"),
    ]:
        with pytest.raises(SettingsError, match=variable):
            Authenticator(base_settings(**changes))
    Authenticator(base_settings(jwt_provider_issuer=PROVIDER, jwt_jwks_url="http://[::1]:9/jwks"))


# --- subjects mapped to user ids ------------------------------------------------------------------


async def test_a_provider_subject_maps_to_one_stable_user_id(jwks: JwksServer, primary: asyncpg.Pool) -> None:
    key = SigningKey.new("RS256", "k1")
    jwks.keys = [key]
    auth = Authenticator(provider_settings(jwks.url))
    subject = f"auth0|{time.time_ns()}"
    claims = await auth.verify(key.sign(provider_claims(subject)))
    assert auth.cached_identity(claims) is None  # never seen by this process
    first = await auth.identity_of(claims, primary)
    assert first.user_id >= 2**52 and first.role is Role.USER
    assert auth.cached_identity(claims) == first
    # Another process (a new authenticator), and many at once: the same id.
    others = await asyncio.gather(
        *(Authenticator(provider_settings(jwks.url)).identity_of(claims, primary) for _ in range(8))
    )
    assert {o.user_id for o in others} == {first.user_id}
    # The user exists, so friendships and settings can refer to it.
    assert await primary.fetchval("SELECT count(*) FROM users WHERE id = $1", first.user_id) == 1
    # Another subject, and the same subject of another issuer, are other users.
    other_subject = await auth.identity_of(replace(claims, subject=subject + "x"), primary)
    elsewhere = Authenticator(replace(provider_settings(jwks.url), jwt_provider_issuer="https://other.example/"))
    other_issuer = await elsewhere.identity_of(replace(claims, issuer="https://other.example/"), primary)
    assert len({first.user_id, other_subject.user_id, other_issuer.user_id}) == 3


async def test_claims_of_an_untrusted_issuer_name_nobody(jwks: JwksServer, primary: asyncpg.Pool) -> None:
    auth = Authenticator(provider_settings(jwks.url))
    with pytest.raises(TokenError, match="iss"):
        await auth.identity_of(Claims("https://evil.example/", "auth0|abc", Role.USER, time.time() + 60), primary)
    with pytest.raises(TokenError, match="iss"):
        await Authenticator(base_settings()).identity_of(Claims(PROVIDER, "auth0|abc", Role.USER, 0.0), primary)
