"""Running a guide's shell examples as a reader would, against the test's demo stack.

Each example runs in a fresh ``bash`` (``set -euo pipefail``), in a working directory of its
guide's own that holds a link to the repository's ``.venv`` (so ``.venv/bin/geo-token`` works
as written) and the guide's ``doc-file`` files. ``PATH`` is the test's without the virtual
environment, as in a shell that did not activate it; ``GEO_*`` point at the demo stack and
nothing else (no env file). The documented addresses (``127.0.0.1:8080`` for the API,
``127.0.0.1:8081`` for the WebSocket tier) become the test servers' ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from geo_common.settings import Settings
from tests.conftest import REPO, TIMEOUT_FACTOR
from tests.ports import free_port

#: The guides' addresses of the API and of the WebSocket tier (``make run``), and the ports of
#: the measured run in docs/loadgen.md, which ran beside them.
API_ADDRESSES = ("127.0.0.1:8080", "127.0.0.1:18080")
WS_ADDRESSES = ("127.0.0.1:8081", "127.0.0.1:18081")
_ANY_ADDRESS = re.compile(r"\b(?:127\.0\.0\.1|localhost):(\d+)\b")
#: The longest an example may run, seconds (the load runs are shortened by their markers).
RUN_TIMEOUT_S = 240.0 * TIMEOUT_FACTOR
#: The longest a server of a ``serve`` example may take to answer, seconds.
READY_TIMEOUT_S = 60.0 * TIMEOUT_FACTOR


@dataclass(frozen=True)
class Target:
    """The demo stack the examples run against."""

    api_port: int
    ws_port: int
    settings: Settings

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v1/friends/ws"


class ExampleError(AssertionError):
    """An example cannot be run as written (it names a port no test server listens on)."""


def substitute(text: str, target: Target) -> str:
    """A guide's text with the documented addresses replaced by the test servers'.

    Raises:
        ExampleError: the text names another loopback port, which would reach something else.
    """
    for address in API_ADDRESSES:
        text = text.replace(address, f"127.0.0.1:{target.api_port}")
    for address in WS_ADDRESSES:
        text = text.replace(address, f"127.0.0.1:{target.ws_port}")
    stray = {int(p) for p in _ANY_ADDRESS.findall(text)} - {target.api_port, target.ws_port}
    if stray:
        raise ExampleError(f"the example names loopback ports the tests do not serve: {sorted(stray)}")
    return text


def environment(target: Target, **extra: str) -> dict[str, str]:
    """The environment of an example: the test's, without the venv on PATH, GEO_* at the stack."""
    venv = REPO / ".venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_") and k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(venv)
    )
    s = target.settings
    env |= {
        "GEO_ENV_FILE": os.devnull,
        "GEO_PG_PRIMARY": s.pg_primary,
        "GEO_PG_REPLICAS": ",".join(s.pg_replicas),
        "GEO_REDIS_URL": s.redis_url,
        "GEO_REDIS_CLUSTER": ",".join(s.redis_cluster),
        "GEO_REDIS_NAMESPACE": s.redis_namespace,
        "GEO_JWT_SECRET": s.jwt_secret,
        "GEO_API_PORT": str(target.api_port),
        "GEO_WS_PORT": str(target.ws_port),
        **extra,
    }
    return env


def workdir(base: Path) -> Path:
    """A working directory for one guide's examples, holding a link to the repository's ``.venv``."""
    base.mkdir(parents=True, exist_ok=True)
    link = base / ".venv"
    if not link.exists():
        link.symlink_to(REPO / ".venv", target_is_directory=True)
    return base


async def start(script: str, cwd: Path, env: Mapping[str, str], *, stdin: int | None) -> asyncio.subprocess.Process:
    """``bash -c`` a script in its own process group, stdout and stderr in one pipe."""
    return await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        "set -euo pipefail\n" + script,
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kill a started script and whatever it started (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_script(script: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, str]:
    """Run a script to its end; (exit status, what it printed)."""
    proc = await start(script, cwd, env, stdin=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        kill_group(proc)
        await proc.wait()
        raise AssertionError(f"still running after {RUN_TIMEOUT_S:.0f} s:\n{script}") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def command_lines(script: str) -> list[str]:
    """The commands of a ``serve`` example: its lines that are not blank or only a comment."""
    return [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]


async def serve_each(script: str, cwd: Path, env: Mapping[str, str]) -> list[str]:
    """Start each command of a ``serve`` example, wait until it serves, and stop it.

    A command's ``--port N`` is given a free port (without one, GEO_API_PORT and GEO_WS_PORT
    name it). It serves once ``/readyz`` answers for the ``--role`` the command asked for
    (200, or 503 while a read role still builds its indexes: becoming ready is
    tests/location_api's business, and a build of the demo set takes a while). SIGTERM must
    then stop it with exit status 0.

    Returns:
        The problems found, one per command that failed.
    """
    problems: list[str] = []
    for line in command_lines(script):
        port = free_port()
        command, named = re.subn(r"(--port\s+)\d+", rf"\g<1>{port}", line)
        extra = {} if named else {"GEO_API_PORT": str(port), "GEO_WS_PORT": str(port)}
        role = m.group(1) if (m := re.search(r"--role\s+(\w+)", line)) else "all"
        proc = await start("exec " + command, cwd, {**env, **extra}, stdin=asyncio.subprocess.DEVNULL)
        assert proc.stdout is not None
        printed = asyncio.create_task(proc.stdout.read())
        try:
            problem = await _until_ready(proc, port, role)
            if problem is None:
                proc.send_signal(signal.SIGTERM)
                status = await asyncio.wait_for(proc.wait(), 30 * TIMEOUT_FACTOR)
                problem = None if status == 0 else f"exit status {status} after SIGTERM"
        except TimeoutError:
            problem = "did not stop within 30 s of SIGTERM"
        finally:
            kill_group(proc)
            await proc.wait()
        output = (await printed).decode(errors="replace")
        if problem is not None:
            problems.append(f"`{line.strip()}`: {problem}\n{output[-3000:]}")
    return problems


async def _until_ready(proc: asyncio.subprocess.Process, port: int, role: str) -> str | None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                return f"exited with status {proc.returncode} before it was ready"
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    body = await resp.json(content_type=None)
                    last = f"{resp.status} {body}"
                    if resp.status in (200, 503):
                        return None if body.get("role") == role else f"serves as role {body.get('role')!r}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    return f"not serving within {READY_TIMEOUT_S:.0f} s (last: {last})"
