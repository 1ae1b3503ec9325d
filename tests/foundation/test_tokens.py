"""Tokens: what geo-token mints, the services verify; everything else is refused with a reason."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest

from geo_common.tokens import Identity, Role, TokenError, bearer_token, mint_token, verify_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def test_round_trip() -> None:
    token = mint_token(SECRET, 42, Role.OWNER)
    identity = verify_token(SECRET, token)
    assert (identity.user_id, identity.role) == (42, Role.OWNER)
    assert identity == Identity(42, Role.OWNER, identity.expires_at)


def test_default_role_is_user() -> None:
    assert verify_token(SECRET, mint_token(SECRET, 7)).role is Role.USER


@pytest.mark.parametrize("user_id", [0, -3, True, "12"])
def test_mint_refuses_bad_user_ids(user_id: object) -> None:
    with pytest.raises(TokenError, match="user_id"):
        mint_token(SECRET, user_id)  # type: ignore[arg-type]


def test_expired_token() -> None:
    token = mint_token(SECRET, 1, ttl_s=60, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token)


def test_wrong_key() -> None:
    with pytest.raises(TokenError, match="invalid token"):
        verify_token("another-secret-that-is-long-enough-for-hs256", mint_token(SECRET, 1))


def test_unsigned_token_is_refused() -> None:
    forged = jwt.encode({"sub": "1", "role": "admin", "exp": time.time() + 60}, key="", algorithm="none")
    with pytest.raises(TokenError):
        verify_token(SECRET, forged)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"sub": "abc"}, "sub"),
        ({"sub": "0"}, "sub"),
        ({"sub": "5", "role": "root"}, "role"),
        ({"role": "user"}, "sub"),
        ({"sub": "0012"}, "sub"),
        ({"sub": "\u0661\u0662"}, "sub"),
        ({"sub": "1" * 30}, "sub"),
    ],
)
def test_bad_claims(claims: dict[str, object], message: str) -> None:
    base = {"iss": "geo-local", "aud": "geo", "exp": int(time.time()) + 60}
    token = jwt.encode({**base, **claims}, SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match=message):
        verify_token(SECRET, token)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token("bearer   xyz ") == "xyz"
    for bad in (None, "", "Basic dXNlcg==", "Bearer", "Bearer   "):
        with pytest.raises(TokenError):
            bearer_token(bad)


def test_geo_token_cli_prints_a_verifiable_token() -> None:
    env = {"GEO_JWT_SECRET": SECRET, "PATH": "", "GEO_ENV_FILE": "/nonexistent"}
    out = subprocess.run(
        [sys.executable, "-m", "geo_common.token_cli", "31", "--role", "admin"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    identity = verify_token(SECRET, out.stdout.strip())
    assert (identity.user_id, identity.role) == (31, Role.ADMIN)


@pytest.mark.parametrize("argv", [["0"], ["x"], ["3", "--role", "root"], ["3", "--ttl", "0"]])
def test_geo_token_cli_rejects_bad_arguments(argv: list[str]) -> None:
    env = {"GEO_JWT_SECRET": SECRET, "PATH": "", "GEO_ENV_FILE": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "-m", "geo_common.token_cli", *argv], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip()


def test_geo_token_cli_reports_a_bad_setting() -> None:
    env = {"GEO_JWT_TTL_S": "soon", "PATH": "", "GEO_ENV_FILE": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "geo_common.token_cli", "3"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "GEO_JWT_TTL_S" in proc.stderr
