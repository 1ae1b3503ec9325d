"""Helpers of the full-stack fault tests: the throwaway stack, load, metrics and results."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from deploy.stack.binaries import Binaries
from deploy.stack.full import FullTier
from deploy.stack.instances import instances
from deploy.stack.postgres import PgNode
from deploy.stack.redis_nodes import RedisNode
from deploy.stack.stack import Stack
from geo_common.settings import Settings

TIMEOUT_FACTOR = float(os.environ.get("GEO_TEST_TIMEOUT_FACTOR", "1"))
#: Search load of every fault: light, so the measurement is about the fault, not the CPU.
SEARCH_RATE = 50.0


@dataclass
class FullStack:
    """A ``--full`` stack of its own that the tests may break."""

    stack: Stack
    tier: FullTier
    bins: Binaries
    primary: PgNode
    replica: PgNode
    redis: RedisNode
    settings: Settings
    stack_env: dict[str, str]
    extra_env: dict[str, str]
    out: Path
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def entry(self) -> str:
        return self.tier.entry_url

    @property
    def ws_url(self) -> str:
        return self.entry.replace("http://", "ws://") + "/v1/friends/ws"

    def instance_url(self, name: str) -> str:
        instance = next(i for i in instances(self.tier.state) if i.name == name)
        return f"http://{instance.address}"


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0, interval: float = 0.05
) -> float:
    """Poll ``check`` until true; return how long it took, seconds."""
    started = time.monotonic()
    deadline = started + timeout * TIMEOUT_FACTOR
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * TIMEOUT_FACTOR:.1f} s waiting for {what}")
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def metric(http: aiohttp.ClientSession, base: str, name: str, **labels: str) -> float | None:
    """One sample of an instance's /metrics (None when absent or the instance is down)."""
    try:
        async with http.get(f"{base}/metrics", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@dataclass(frozen=True)
class LoadResult:
    """What a geo-loadgen run saw."""

    attempted: int
    failed: int
    statuses: dict[str, int]
    p99_ms: float
    max_ms: float


class SearchLoad:
    """``geo-loadgen search`` through nginx, as a subprocess, for a fixed duration."""

    def __init__(self, url: str, duration_s: float, out: Path) -> None:
        self.out = out
        self.duration_s = duration_s
        self.command = [
            "geo-loadgen",
            "search",
            "--url",
            url,
            "--rate",
            f"{SEARCH_RATE:g}",
            "--duration",
            f"{duration_s:g}s",
            "--radius",
            "2000",
            "--timeout",
            "5s",
            "--no-progress",
            "--out",
            str(out),
        ]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen", *self.command[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    async def result(self) -> LoadResult:
        """Wait for the run to end and read its report."""
        deadline = time.monotonic() + self.duration_s + 60
        while self._proc.poll() is None:
            assert time.monotonic() < deadline, "geo-loadgen did not finish"
            await asyncio.sleep(0.2)
        output = self._proc.stdout.read().decode(errors="replace") if self._proc.stdout else ""
        if self._proc.stdout:
            self._proc.stdout.close()
        assert self._proc.returncode == 0, output
        report = json.loads((self.out / "report.json").read_text())
        counters = report["counters"]
        latency = report["metrics"].get("latency", {})
        return LoadResult(
            attempted=int(report["operations"]),
            failed=int(counters.get("errors", 0)),
            statuses={
                k: int(v) for k, v in counters.items() if k.startswith("status_") or k in ("timeout", "connect_error")
            },
            p99_ms=float(latency.get("p99", float("nan"))),
            max_ms=float(latency.get("max", float("nan"))),
        )


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as one Markdown table per fault (what docs/reliability.md shows)."""
    parts = []
    for result in results:
        parts.append(f"### {result['fault']}\n\n| measure | value |\n|---|---|")
        for key, value in result.items():
            if key != "fault":
                shown = f"{value:.2f}" if isinstance(value, float) else str(value)
                parts.append(f"| {key} | {shown} |")
        parts.append("")
    return "\n".join(parts)
