"""No key, token or password in anything a run writes or prints; ``setup`` in the report says
whether this run did the set-up; a friends run that connected nobody fails.

The real services are the ``services`` fixture's (conftest.py: a database of this module's own).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from geo_common.tokens import mint_token
from loadgen.friends_options import EventKind, FriendsOptions, ScenarioEvent
from loadgen.mixed import MixedOptions
from geo_common.redact import REDACTED, redact_passwords
from loadgen.redact import plain
from loadgen.runner import _plain
from loadgen.search import SearchOptions
from loadgen.user_tokens import SigningKey, TokenCommand, TokenFile
from tests.friends_ws.ws_helpers import start_server
from tests.loadgen.runs import Services, friends, loadgen, read_report

SECRET = "s3cr3t-that-signs-admin-tokens-0123456789"


def friends_options(**changes: object) -> FriendsOptions:
    options = FriendsOptions(
        api="http://127.0.0.1:1",
        ws="ws://127.0.0.1:2",
        auth=SigningKey(path="signing.key", key=SECRET),
        users=5,
        friends_per_user=2,
    )
    return replace(options, **changes)  # type: ignore[arg-type]


def test_options_reach_a_report_without_the_key_and_with_setup_as_given() -> None:
    shown = _plain(friends_options(setup=True))
    assert shown["auth"] == {"path": "signing.key", "issuer": "geo-local", "audience": "geo", "key": REDACTED}
    assert shown["setup"] is True and shown["graph"] == "communities"
    assert SECRET not in json.dumps(shown)
    given = _plain(friends_options(auth=TokenFile(path="t.txt", tokens={1: "opaque-1"})))["auth"]
    assert given == {"path": "t.txt", "tokens": REDACTED}
    printed = _plain(friends_options(auth=TokenCommand(token_command="get --password hunter2 {user}")))["auth"]
    assert printed == {"token_command": REDACTED, "tokens": REDACTED}
    mixed = MixedOptions(
        search=SearchOptions(url="http://user:pa55word@127.0.0.1:8080", rate=1, duration_s=1),
        friends=friends_options(events=(ScenarioEvent(1.0, EventKind.BACKGROUND, 0.5),)),
    )
    text = json.dumps(_plain(mixed))
    assert SECRET not in text and "pa55word" not in text
    assert '"url": "http://user:<redacted>@127.0.0.1:8080"' in text and '"kind": "background"' in text


def test_secret_like_names_tokens_and_url_passwords_are_redacted() -> None:
    token = mint_token(SECRET, 7, ttl_s=60)
    raw = {
        "api_key": "k",
        "password": "p",
        "admin_token": "t",
        "nested": [{"client_secret": "c"}, f"Bearer {token}"],
        "users": 5,
        "monkey": "not a secret",
        "ws": "ws://127.0.0.1:8081",
    }
    assert plain(raw) == {
        "api_key": REDACTED,
        "password": REDACTED,
        "admin_token": REDACTED,
        "nested": [{"client_secret": REDACTED}, REDACTED],
        "users": 5,
        "monkey": "not a secret",
        "ws": "ws://127.0.0.1:8081",
    }
    assert redact_passwords("https://me:hunter2@example.org:8443/x") == "https://me:<redacted>@example.org:8443/x"
    assert redact_passwords("http://me@example.org") == "http://me@example.org"
    assert redact_passwords("http://[::1") == "http://[::1"  # unparsable: left as it is


def secret_free(run_with: Services, out: Path, text: str) -> None:
    """Nothing written or printed holds the key or a token (a JWT starts ``eyJ``)."""
    secret = run_with.settings.jwt_secret.encode()
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"report.json", "report.html", "timeseries.csv"}
    for blob, where in [*((p.read_bytes(), p.name) for p in files), (text.encode(), "stdout and stderr")]:
        assert secret not in blob, where
        if not where.endswith(".png"):  # compressed pixels may hold any three bytes
            assert b"eyJ" not in blob, where


async def test_a_friends_run_writes_no_secret_and_reports_that_it_did_the_set_up(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "friends"
    code, text = await friends(
        services,
        "--users",
        "20",
        "--friends-per-user",
        "4",
        "--interval",
        "1s",
        "--duration",
        "3s",
        "--ramp",
        "0.5s",
        "--first-user-id",
        "4000000",
        "--out",
        str(out),
        "--fail-if",
        "p95<10s,delivery_since_sent.p95<10s",
    )
    assert code == 0, text
    secret_free(services, out, text)
    report = read_report(out)
    assert report["options"]["setup"] is True
    assert report["options"]["auth"]["key"] == REDACTED
    assert "threshold p95<10000ms: pass" in text and "threshold errors<=1%: pass" in text


async def test_a_friends_run_that_connects_nobody_fails_and_says_so(services: Services, tmp_path: Path) -> None:
    # The API takes the users' tokens; this WebSocket tier signs with another key and refuses
    # every handshake (401).
    elsewhere = await start_server(replace(services.settings, jwt_secret="another-key-" + "x" * 32))
    out = tmp_path / "nobody"
    try:
        code, text = await friends(
            services,
            *("--users", "10", "--friends-per-user", "3", "--duration", "2s", "--ramp", "0"),
            *("--first-user-id", "4100000", "--skip-setup", "--out", str(out)),
            ws=f"ws://127.0.0.1:{elsewhere.port}",
        )
    finally:
        await elsewhere.stop()
    assert code == 1, text
    assert "geo-loadgen: FAILED: friends: no client connected (connect_error_InvalidStatus=" in text
    report = read_report(out)
    assert report["options"]["setup"] is False  # --skip-setup: this run did none
    assert report["failures"][0].startswith("friends: no client connected")
    secret_free(services, out, text)


async def test_the_wrong_service_behind_each_flag_is_named_before_anything_is_sent(
    services: Services,
) -> None:
    ws_http = f"http://127.0.0.1:{services.ws.port}"
    code, text = await loadgen(services, "search", "--url", ws_http, "--rate", "10")
    assert code == 2 and f"--url {ws_http} is the friends WebSocket tier, not the search API" in text
    code, text = await loadgen(services, "search", "--url", services.api, "--rate", "10", "--radius", "50001")
    assert code == 2 and "--radius 50001 is above the API's largest radius, 50000 m" in text
    api_ws = "ws://" + services.api.removeprefix("http://")
    for api, ws, needle in [
        (ws_http, api_ws, f"--api {ws_http} is the friends WebSocket tier, not the search API"),
        (services.api, api_ws, f"--ws {api_ws} is the search API, not the friends WebSocket tier"),
    ]:
        key = ("--signing-key-file", str(services.key_file))
        code, text = await loadgen(services, "friends", "--api", api, "--ws", ws, *key, "--users", "5")
        assert code == 2 and needle in text, text
