"""No usable default secrets: what the services refuse to serve with, and the stack's own key.

A token signed with the built-in key (or with a placeholder geo's files once shipped) must not
be accepted by a deployed service: outside development mode the services refuse to start with
such a key, in one line naming ``GEO_JWT_SECRET``, with the exit status of any other bad
setting (2). Development mode (``GEO_DEV=1``) is refused off loopback. The local stack
generates its own key once, so ``make run``, ``make test`` and ``geo-token`` never need the
built-in one. The services are started as real processes for the refusals (which come before
any connection) and for one start that succeeds.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from deploy.stack.layout import Layout, StackState, new_jwt_secret
from deploy.stack.stack import Stack
from geo_common.secrets_check import (
    KNOWN_KEYS,
    check_dev_host,
    check_jwt_secret,
    check_serving,
    is_loopback,
    secret_problem,
)
from geo_common.settings import DEV_JWT_SECRET, Settings, SettingsError, read_env_file
from geo_common.tokens import Role, TokenError, verify_token
from tests.conftest import REPO, TIMEOUT_FACTOR
from tests.ports import free_port

RANDOM_KEY = new_jwt_secret()


# --- which keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(KNOWN_KEYS))
def test_every_key_geo_ever_shipped_is_refused(key: str) -> None:
    assert secret_problem(key) is not None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (DEV_JWT_SECRET, "built-in development key"),
        ("s3cr3t-k3y", "shorter than 32 bytes"),
        ("our-production-key-CHANGE-ME-before-launch-2026", "placeholder (it says 'CHANGE-ME')"),
        ("replace_me_with_48_random_bytes_from_openssl_rand", "placeholder"),
        ("k" * 48, "only 1 different characters"),
        ("abcabcabcabcabcabcabcabcabcabcabcabc", "only 3 different characters"),
    ],
)
def test_what_a_key_must_not_be(key: str, reason: str) -> None:
    problem = secret_problem(key)
    assert problem is not None and reason in problem
    assert key not in problem


def test_random_keys_are_accepted() -> None:
    assert all(secret_problem(new_jwt_secret()) is None for _ in range(200))
    assert secret_problem(os.urandom(32).hex()) is None


def _shipped_keys() -> set[str]:
    """Every literal value given to GEO_JWT_SECRET in the deployment files and the docs."""
    found = set()
    files = [*(REPO / "deploy").rglob("*"), *(REPO / "docs").rglob("*.md"), REPO / "README.md"]
    for path in files:
        if not path.is_file() or path.suffix not in {".yaml", ".yml", ".env", ".md", ".json", ".conf", ".toml", ""}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found |= set(re.findall(r"\$\{GEO_JWT_SECRET:?-([^}]+)\}", text))  # a compose fallback
        for value in re.findall(r"GEO_JWT_SECRET[=:][ \t]*['\"]?([^\s'\"`|)]+)", text):
            if not value.startswith(("$", "<", "${")) and value not in ("", "..."):
                found.add(value)
    return found


def test_no_key_in_the_repository_would_be_served() -> None:
    shipped = _shipped_keys()
    assert all(secret_problem(key) is not None for key in shipped), shipped


def test_the_deployment_files_ship_no_key_at_all() -> None:
    compose = (REPO / "deploy" / "docker" / "compose.yaml").read_text()
    assert re.search(r"GEO_JWT_SECRET: \$\{GEO_JWT_SECRET:\?[^}]+\}", compose), "compose must require the key"
    for overlay in (REPO / "deploy" / "k8s").rglob("kustomization.yaml"):
        assert "GEO_JWT_SECRET=" not in overlay.read_text(), overlay


# --- where development mode may run -------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST.", "api.localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "geo.example.org", "localhost.evil"])
def test_addresses_others_reach(host: str) -> None:
    assert not is_loopback(host)


def test_development_mode_trusts_the_built_in_key_on_loopback_only() -> None:
    dev = Settings.from_env({"GEO_DEV": "1"})
    check_serving(dev, host_field="api_host")  # 127.0.0.1 and the built-in key: fine
    with pytest.raises(SettingsError, match="GEO_DEV=1 .* but GEO_WS_HOST is '0.0.0.0'"):
        check_serving(replace(dev, ws_host="0.0.0.0"), host_field="ws_host")
    with pytest.raises(SettingsError, match="but --host is '10.1.2.3'"):
        check_dev_host(replace(dev, api_host="10.1.2.3"), host_field="api_host", flag="--host")
    # Not in development mode: any address, but a key of one's own.
    check_serving(replace(dev, dev=False, api_host="0.0.0.0", jwt_secret=RANDOM_KEY), host_field="api_host")
    with pytest.raises(SettingsError, match="^GEO_JWT_SECRET is the built-in development key") as caught:
        check_jwt_secret(replace(dev, dev=False))
    assert DEV_JWT_SECRET not in str(caught.value) and "\n" not in str(caught.value)


def test_settings_errors_never_show_a_secret_or_a_password() -> None:
    with pytest.raises(SettingsError) as short:
        Settings.from_env({"GEO_JWT_SECRET": "too-short-to-sign"})
    assert str(short.value).startswith("GEO_JWT_SECRET=") and "too-short-to-sign" not in str(short.value)
    with pytest.raises(SettingsError) as url:
        Settings.from_env({"GEO_REDIS_URL": "redis://geo:hunter2-secret@redis:notaport/0"})
    assert str(url.value).startswith("GEO_REDIS_URL=") and "hunter2" not in str(url.value)
    with pytest.raises(SettingsError) as ring:
        Settings.from_env({"GEO_PUBSUB_RING": "redis://geo:hunter2-secret@a:1,http://geo:hunter2-secret@b:2"})
    assert "hunter2" not in str(ring.value)


# --- the services, as processes -----------------------------------------------------------


def service(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a service with only these settings (no env file) until it exits."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**environ, "GEO_ENV_FILE": os.devnull, **env},
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT_FACTOR,
    )


PROGRAMS = {"location_api": "geo-api", "friends_ws": "geo-friends"}


@pytest.mark.parametrize("module", sorted(PROGRAMS))
@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "GEO_JWT_SECRET is the built-in development key"),
        ({"GEO_JWT_SECRET": "geo-local-only-jwt-key-change-me-0123456789"}, "GEO_JWT_SECRET is a placeholder"),
        ({"GEO_JWT_SECRET": "x" * 40}, "GEO_JWT_SECRET has only 1 different characters"),
        ({"GEO_DEV": "1", "GEO_API_HOST": "0.0.0.0", "GEO_WS_HOST": "0.0.0.0"}, "GEO_DEV=1 is for local development"),
    ],
    ids=["built-in", "placeholder", "pattern", "dev-off-loopback"],
)
def test_a_service_refuses_to_start_in_one_line(module: str, env: dict[str, str], says: str) -> None:
    done = service(module, "--port", "1", **env)
    message = done.stderr.strip()
    assert done.returncode == 2, done.stdout + done.stderr
    assert message.startswith(f"{PROGRAMS[module]}: {says}"), message
    assert "\n" not in message and "Traceback" not in message
    assert "listening" not in done.stdout
    for value in env.values():
        if len(value) > 8:
            assert value not in message  # a key is never repeated back


def test_a_host_given_on_the_command_line_is_named() -> None:
    done = service("friends_ws", "--host", "0.0.0.0", "--port", "1", GEO_DEV="1")
    assert done.returncode == 2 and "but --host is '0.0.0.0'" in done.stderr


class Serving:
    """A service process answering /healthz, stopped on exit."""

    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(self.port)],
            env={**environ, "GEO_ENV_FILE": os.devnull, "GEO_LOG_LEVEL": "warning", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.output.append(line)

    async def healthy(self) -> None:
        deadline = time.monotonic() + 60 * TIMEOUT_FACTOR
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc.poll() is None, "".join(self.output)
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "".join(self.output)
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)


@pytest.fixture
def serving() -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for s in started:
        s.stop()


def _endpoints(settings: Settings) -> dict[str, str]:
    return {
        "GEO_PG_PRIMARY": settings.pg_primary,
        "GEO_PG_REPLICAS": ",".join(settings.pg_replicas),
        "GEO_REDIS_URL": settings.redis_url,
        "GEO_REDIS_CLUSTER": ",".join(settings.redis_cluster),
        "GEO_REDIS_NAMESPACE": settings.redis_namespace,
    }


async def test_the_services_start_with_a_key_of_their_own_or_in_development_mode(
    settings: Settings, serving: list[Serving]
) -> None:
    own = Serving("friends_ws", {**_endpoints(settings), "GEO_JWT_SECRET": RANDOM_KEY})
    dev = Serving("friends_ws", {**_endpoints(settings), "GEO_DEV": "1"})  # the built-in key, on 127.0.0.1
    serving += [own, dev]
    await asyncio.gather(own.healthy(), dev.healthy())


# --- the local stack's key ----------------------------------------------------------------


def test_the_stack_keeps_one_random_key_in_files_only_its_owner_reads(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "stack")
    first = StackState(ports={"a": 1}, jwt_secret=new_jwt_secret())
    layout.save_state(first)
    # A second run that made its own key meanwhile takes the one saved first.
    second = StackState(ports={"a": 1, "b": 2}, jwt_secret=new_jwt_secret())
    layout.save_state(second)
    assert second.jwt_secret == first.jwt_secret
    loaded = layout.load_state()
    assert loaded is not None and loaded.jwt_secret == first.jwt_secret and loaded.ports == {"a": 1, "b": 2}
    assert secret_problem(first.jwt_secret) is None
    assert first.jwt_secret not in repr(loaded)
    layout.write_env({"GEO_JWT_SECRET": first.jwt_secret})
    assert read_env_file(layout.env_file) == {"GEO_JWT_SECRET": first.jwt_secret}
    for path in (layout.state_file, layout.env_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_stack_env_carries_its_key(stack_env: dict[str, str]) -> None:
    key = stack_env["GEO_JWT_SECRET"]
    assert secret_problem(key) is None
    root = Path(os.environ.get("GEO_STACK_DIR", REPO / ".stack"))
    assert read_env_file(root / "env")["GEO_JWT_SECRET"] == key
    state = Layout(root).load_state()
    assert state is not None and Stack.env_vars(state)["GEO_JWT_SECRET"] == key


def test_geo_token_signs_with_the_stack_key(stack_env: dict[str, str], tmp_path: Path) -> None:
    root = Path(os.environ.get("GEO_STACK_DIR", REPO / ".stack"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "geo-token"), "42", "--role", "admin"],
        env={**environ, "GEO_ENV_FILE": str(root / "env")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert verify_token(stack_env["GEO_JWT_SECRET"], token).role is Role.ADMIN
    with pytest.raises(TokenError):
        verify_token(DEV_JWT_SECRET, token)


def test_geo_stack_run_refuses_development_mode_off_loopback_before_starting_anything(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    for env in ({"GEO_API_HOST": "0.0.0.0"}, {"GEO_DEV": "0", "GEO_JWT_SECRET": DEV_JWT_SECRET}):
        done = subprocess.run(
            [sys.executable, "-m", "deploy.stack.cli", "--dir", str(root), "run"],
            env={**os.environ, "GEO_ENV_FILE": os.devnull, **env},
            capture_output=True,
            text=True,
            timeout=60 * TIMEOUT_FACTOR,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.startswith("geo-stack: GEO_"), done.stderr
        assert DEV_JWT_SECRET not in done.stderr
    assert not root.exists()
