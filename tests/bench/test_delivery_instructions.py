"""The callgrind harness of one delivery runs briefly, in both modes, with every frame arriving.

The harness fails (exit status 1) when a delivery or a frame is missing: its peer counts what
each socket read, and the server counts what it queued.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT_FACTOR

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "delivery_instructions.py"


@pytest.mark.parametrize(("mode", "what"), [([], "deliveries (geo-friends)"), (["--bare"], "frames (bare aiohttp")])
def test_a_short_run_delivers_every_frame_to_every_recipient(
    stack_env: dict[str, str], mode: list[str], what: str
) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *mode, "--messages", "7", "--warm-up", "2", "--friends", "3"],
        env={**os.environ, **stack_env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120 * TIMEOUT_FACTOR,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"21 measured {what}" in done.stdout
    assert "3 recipients per message" in done.stdout
