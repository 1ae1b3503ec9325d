"""The simulated users' tokens come from the command line, as a client's do: a token file, a
token command, or an explicit signing key; never from the services' settings.

The sources are read here as the command reads them; then geo-loadgen runs as its own process,
with no ``GEO_*`` variable in its environment, against the real API and WebSocket tier of the
``services`` fixture (conftest.py). A key or tokens the API does not take stop the run before
any friendship is made, in one line naming the source.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from geo_common.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER, mint_token, verify_token
from loadgen.user_tokens import NEEDED, SigningKey, TokenCommand, TokenFile, UserTokensError
from tests.loadgen.runs import Services, friends, loadgen, read_report, write_key

USERS = range(5_000_000, 5_000_006)
KEY = "k" * 40
#: Reads its arguments' user id, logs it, prints a token signed with the key in a file.
MINT = """\
import sys
from pathlib import Path
from geo_common.tokens import mint_token
key_file, log, user = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
with log.open("a") as f:
    f.write(f"{user}\\n")
print(mint_token(Path(key_file).read_text().strip(), user, ttl_s=3600))
"""


def token_file(path: Path, key: str, users: range, *, shift: int = 0) -> Path:
    """A token file for ``users``, each token signed with ``key`` for user id + ``shift``."""
    lines = ["# made by the test", ""] + [f"{u} {mint_token(key, u + shift, ttl_s=3600)}" for u in users]
    path.write_text("\n".join(lines) + "\n")
    return path


def mint_command(tmp_path: Path, key_file: Path) -> tuple[str, Path]:
    """A ``--token-command`` minting with ``key_file``'s key, and the file it logs users to."""
    script, log = tmp_path / "mint.py", tmp_path / "asked.log"
    script.write_text(MINT)
    words = [sys.executable, str(script), str(key_file), str(log), "{user}"]
    return " ".join(shlex.quote(w) for w in words), log


def assert_secret_free(text: str, *secrets: str) -> None:
    assert "eyJ" not in text, text  # no token (a JWT starts so)
    for secret in secrets:
        assert secret not in text, text


# --- each source, read as the command reads it ------------------------------------------------


def test_a_token_file_gives_each_user_its_line_and_names_what_is_wrong(tmp_path: Path) -> None:
    path = token_file(tmp_path / "tokens.txt", KEY, range(USERS.start - 2, USERS.stop + 2))
    loaded = TokenFile(path=str(path)).load(USERS)
    assert [verify_token(KEY, loaded.token(u, 60)).user_id for u in USERS] == list(USERS)
    assert set(loaded.tokens) == set(USERS)  # only the run's users travel to the workers

    secret = mint_token(KEY, 9, ttl_s=60)
    for text, needle in [
        (f"5000000 {secret} extra\n", "line 1: expected USER_ID TOKEN, got 3 field(s)"),
        (f"# users\nuser-9 {secret}\n", "line 2: a user id is a whole number from 1, got 'user-9'"),
        (f"5000000 {secret}\n\n5000000 {secret}\n", "line 3: user 5000000 has a token already (line 1)"),
        (
            f"5000000 {secret}\n",
            "has no token for 5 of the run's 6 users (5000000 to 5000005): 5000001, 5000002, 5000003 and 2 more",
        ),
    ]:
        path.write_text(text)
        with pytest.raises(UserTokensError) as caught:
            TokenFile(path=str(path)).load(USERS)
        assert needle in str(caught.value) and str(caught.value).startswith(f"--token-file {path}")
        assert_secret_free(str(caught.value))
    with pytest.raises(UserTokensError, match=r"--token-file /no/such: cannot read it \(No such file or directory\)"):
        TokenFile(path="/no/such").load(USERS)


def test_a_signing_key_file_mints_with_its_key_issuer_and_audience(tmp_path: Path) -> None:
    path = write_key(tmp_path / "signing.key", "  " + KEY)  # surrounding whitespace is not the key
    loaded = SigningKey(path=str(path), issuer="acme", audience="acme-geo").load(USERS)
    identity = verify_token(KEY, loaded.token(USERS[0], 60), issuer="acme", audience="acme-geo")
    assert identity.user_id == USERS[0]
    assert (SigningKey(path=str(path)).issuer, SigningKey(path=str(path)).audience) == (
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
    )
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    with pytest.raises(UserTokensError, match=f"--signing-key-file {empty} is empty"):
        SigningKey(path=str(empty)).load(USERS)
    with pytest.raises(UserTokensError, match=r"--signing-key-file /no/such: cannot read it \("):
        SigningKey(path="/no/such").load(USERS)
    with pytest.raises(UserTokensError, match="was not read"):
        SigningKey(path=str(path)).token(USERS[0], 60)  # a source is loaded before it gives tokens


def test_a_token_command_runs_once_per_user_and_its_failures_are_one_secret_free_line(tmp_path: Path) -> None:
    key_file = write_key(tmp_path / "signing.key", KEY)
    command, log = mint_command(tmp_path, key_file)
    loaded = TokenCommand(token_command=command).load(USERS)
    assert sorted(int(line) for line in log.read_text().split()) == list(USERS)  # each once
    assert [verify_token(KEY, loaded.token(u, 60)).user_id for u in USERS] == list(USERS)
    assert [verify_token(KEY, loaded.token(u, 60)).user_id for u in USERS] == list(USERS)
    assert log.read_text().count("\n") == len(USERS)  # asked again: nothing is run again

    with pytest.raises(UserTokensError, match=r"--token-command must say where the user id goes: \{user\}"):
        TokenCommand(token_command="print-a-token")
    token = mint_token(KEY, 3, ttl_s=60)
    python = shlex.quote(sys.executable)
    for script, needle in [
        (
            "import sys; print('no such user', file=sys.stderr); sys.exit(3)",
            "exited with 3 for user 5000000: no such user",
        ),
        (f"import sys; sys.exit('refused {token}')", "--token-command exited with 1 for user 5000000: <redacted>"),
        ("pass", "--token-command printed nothing for user 5000000: it must print the user's token alone"),
        ("print('two words')", "printed more than one word for user 5000000"),
    ]:
        with pytest.raises(UserTokensError) as caught:
            TokenCommand(token_command=f"{python} -c {shlex.quote(script)} {{user}}").load(range(5_000_000, 5_000_001))
        assert needle in str(caught.value)
        assert_secret_free(str(caught.value), KEY)
    with pytest.raises(UserTokensError, match="--token-command: /no/such/program not found"):
        TokenCommand(token_command="/no/such/program {user}").load(USERS)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], f"friends acts as its simulated users and needs their tokens: {NEEDED}"),
        (["--token-issuer", "acme"], "--token-issuer goes with --signing-key-file"),
        (
            ["--token-file", "t.txt", "--signing-key-file", "k"],
            "argument --signing-key-file: not allowed with argument --token-file",
        ),
        (["--token-command", "geo-token"], "--token-command must say where the user id goes"),
    ],
)
def test_a_friends_run_without_one_usable_source_is_refused_before_anything_is_reached(
    args: list[str], needle: str
) -> None:
    argv = ["friends", "--api", "http://127.0.0.1:9", "--ws", "ws://127.0.0.1:9", "--users", "10", *args]
    proc = subprocess.run([sys.executable, "-m", "loadgen", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"geo-loadgen: {needle}"), proc.stderr


# --- against the real services ----------------------------------------------------------------


async def friends_of(services: Services, user_id: int) -> list[object]:
    """The friends ``user_id`` has, asked with their own token."""
    headers = {"Authorization": f"Bearer {mint_token(services.settings.jwt_secret, user_id, ttl_s=60)}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{services.api}/v1/users/{user_id}/friends", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
    friends_list: list[object] = body["friends"]
    return friends_list


RUN = ("--friends-per-user", "2", "--interval", "1s", "--duration", "2s", "--ramp", "0.2s")


async def test_a_run_on_a_token_file_makes_friends_and_connects_everyone(services: Services, tmp_path: Path) -> None:
    users = range(5_100_000, 5_100_006)
    path = token_file(tmp_path / "tokens.txt", services.settings.jwt_secret, users)
    out = tmp_path / "out"
    code, text = await friends(
        services,
        "--users",
        "6",
        "--first-user-id",
        str(users.start),
        *RUN,
        "--token-file",
        str(path),
        "--out",
        str(out),
        tokens=False,
    )
    assert code == 0, text
    assert f"friends: tokens of 6 users from --token-file {path} (" in text
    report = read_report(out)
    assert report["counters"]["delivered"] > 0 and "disconnected_at_end" not in report["counters"]
    assert report["options"]["auth"] == {"path": str(path), "tokens": "<redacted>"}
    assert len(await friends_of(services, users[0])) == 2
    assert_secret_free(text + (out / "report.json").read_text() + (out / "report.html").read_text())


async def test_a_mixed_run_takes_its_friends_tokens_from_a_command(services: Services, tmp_path: Path) -> None:
    command, log = mint_command(tmp_path, services.key_file)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        f'duration = "2s"\n[friends]\napi = "{services.api}"\nws = "{services.ws_url}"\nusers = 6\n'
        'friends_per_user = 2\ninterval = "1s"\nramp = "0.2s"\nfirst_user_id = 5200000\n'
    )
    out = tmp_path / "out"
    code, text = await loadgen(
        services, "mixed", "--scenario", str(scenario), "--token-command", command, "--out", str(out)
    )
    assert code == 0, text
    assert sorted(int(u) for u in log.read_text().split()) == list(range(5_200_000, 5_200_006))
    assert read_report(out)["counters"]["delivered"] > 0
    assert len(await friends_of(services, 5_200_000)) == 2
    assert_secret_free(text + (out / "report.json").read_text(), str(services.key_file.read_text().strip()), command)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("wrong key", "(invalid token: Signature verification failed): is it the key the services sign with"),
        (
            "wrong issuer",
            "(invalid token: iss is not an issuer this service trusts): is it the key the services sign with",
        ),
    ],
)
async def test_a_key_the_services_do_not_sign_with_stops_the_run_before_any_friendship(
    services: Services, tmp_path: Path, source: str, reason: str
) -> None:
    first = 5_300_000 if source == "wrong key" else 5_400_000
    other = "another-key-" + "x" * 32
    if source == "wrong key":
        key_file, extra = write_key(tmp_path / "other.key", other), []
    else:
        key_file, extra = services.key_file, ["--token-issuer", "someone-else"]
    code, text = await friends(
        services,
        "--users",
        "6",
        "--first-user-id",
        str(first),
        *RUN,
        "--signing-key-file",
        str(key_file),
        *extra,
        tokens=False,
    )
    assert code == 2, text
    line = text.strip().splitlines()[-1]
    assert line.startswith(
        f"geo-loadgen: --api {services.api} refused the token --signing-key-file {key_file} gave for user {first} "
    ), line
    assert reason in line
    assert await friends_of(services, first) == []  # nothing was asked
    assert_secret_free(text, other, services.settings.jwt_secret)


async def test_tokens_of_other_users_are_named_before_anything_is_sent(services: Services, tmp_path: Path) -> None:
    users = range(5_500_000, 5_500_006)
    path = token_file(tmp_path / "tokens.txt", services.settings.jwt_secret, users, shift=1)
    code, text = await friends(
        services, "--users", "6", "--first-user-id", str(users.start), *RUN, "--token-file", str(path), tokens=False
    )
    assert code == 2, text
    assert f"geo-loadgen: the token --token-file {path} gave for user 5500000 is user 5500001's, at --api" in text
    assert await friends_of(services, users[0]) == []
