"""geo-friends tunes its collector at start-up exactly when GEO_PROCESS_TUNING is on (a fresh
process each time: a freeze cannot be undone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geo_common.tuning import SERVER_THRESHOLDS

REPO = Path(__file__).resolve().parents[2]

#: The server's start-up hook, run as aiohttp runs it, with settings from the environment.
START = """
import asyncio, gc, os
from aiohttp import web
from friends_ws.__main__ import _tune_process
from friends_ws.keys import settings_key
from geo_common.settings import Settings
app = web.Application()
app[settings_key] = Settings.from_env(os.environ)
before = gc.get_threshold()
asyncio.run(_tune_process(app))
print(*before, *gc.get_threshold(), gc.get_freeze_count())
"""


def _started(value: str | None) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    if value is not None:
        env["GEO_PROCESS_TUNING"] = value
    done = subprocess.run(
        [sys.executable, "-c", START], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    numbers = [int(n) for n in done.stdout.split()]
    return tuple(numbers[:3]), tuple(numbers[3:6]), numbers[6]


@pytest.mark.parametrize("value", [None, "on", "true"])
def test_tuning_on_freezes_what_exists_and_raises_the_thresholds(value: str | None) -> None:
    before, after, frozen = _started(value)
    assert after == SERVER_THRESHOLDS != before
    assert frozen > 1000  # modules, the app: everything alive at start-up


@pytest.mark.parametrize("value", ["off", "0"])
def test_tuning_off_leaves_the_collector_as_python_has_it(value: str) -> None:
    before, after, frozen = _started(value)
    assert after == before and frozen == 0
