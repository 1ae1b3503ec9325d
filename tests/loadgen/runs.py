"""Short ``geo-loadgen`` runs as their own process, as a user runs them, and what they write.

The real services they run against are the ``services`` fixture's (tests/loadgen/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo_common.settings import Settings
from loadgen.report import PLOTS
from tests.conftest import TIMEOUT_FACTOR
from tests.friends_ws.ws_helpers import Server


@dataclass
class Services:
    """The API and the WebSocket tier, their settings, a CSV of the places they serve, and a
    file holding the key they sign tokens with."""

    api: str
    ws: Server
    settings: Settings
    places_csv: Path
    key_file: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws.port}"


def write_key(path: Path, key: str) -> Path:
    """``key`` in a new file at ``path`` that only its owner may read, for ``--signing-key-file``."""
    path.touch(mode=0o600, exist_ok=False)
    path.write_text(key + "\n")
    return path


def client_environment() -> dict[str, str]:
    """This process's environment without any ``GEO_*`` variable: what geo-loadgen gets, so
    that nothing of the services' settings could reach it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}


async def run_loadgen(*args: str, env: dict[str, str] | None = None, timeout_s: float = 90.0) -> tuple[int, str]:
    """Run geo-loadgen to its end without blocking this loop; (exit code, stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadgen",
        *args,
        "--no-progress",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s * TIMEOUT_FACTOR)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def loadgen(services: Services, *args: str, timeout_s: float = 90.0) -> tuple[int, str]:
    """Run geo-loadgen as a client, no ``GEO_*`` variable in its environment; (exit code, stdout + stderr)."""
    return await run_loadgen(*args, env=client_environment(), timeout_s=timeout_s)


async def search(services: Services, *args: str) -> tuple[int, str]:
    """Run ``geo-loadgen search`` against ``services``' API; (exit code, stdout + stderr)."""
    return await loadgen(services, "search", "--url", services.api, *args)


async def friends(services: Services, *args: str, ws: str | None = None, tokens: bool = True) -> tuple[int, str]:
    """Run ``geo-loadgen friends`` against ``services``' API and WebSocket tier (or ``ws``, a
    proxy in front of it), its users' tokens signed with their key unless ``tokens`` is off
    (``args`` then name the source); (exit code, stdout + stderr)."""
    source = ["--signing-key-file", str(services.key_file)] if tokens else []
    return await loadgen(services, "friends", "--api", services.api, "--ws", ws or services.ws_url, *source, *args)


def read_report(out: Path) -> dict[str, Any]:
    """The report.json a run wrote in ``out``."""
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def assert_all_outputs(out: Path) -> dict[str, object]:
    """Every file a run with ``--out`` writes is there and not empty; its report.json."""
    for name in ("report.json", "timeseries.csv", "report.html", *PLOTS):
        assert (out / name).stat().st_size > 0, name
    report: dict[str, object] = read_report(out)
    return report
