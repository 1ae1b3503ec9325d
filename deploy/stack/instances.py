"""The full tier's service instances (``geo-stack up --full``) and its ``status`` lines."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from deploy.stack.layout import StackState
from deploy.stack.procs import cmdline


@dataclass(frozen=True, slots=True)
class Instance:
    """One service process of the full tier."""

    name: str
    module: str
    port: int
    role: str | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        role = ["--role", self.role] if self.role else []
        return [sys.executable, "-m", self.module, "--host", "127.0.0.1", "--port", str(self.port), *role]

    def owns(self, pid: int) -> bool:
        """Whether a running pid is this instance (pids get reused)."""
        line = cmdline(pid)
        return self.module in line and f"--port {self.port}" in line


@dataclass(frozen=True, slots=True)
class Row:
    """One line of ``geo-stack status`` for the full tier."""

    name: str
    address: str
    pid: int | None
    detail: str


def instances(state: StackState) -> list[Instance]:
    """The full tier's service instances, from the ports recorded in the state."""
    ports = state.ports
    return [
        Instance("api-read-1", "location_api", ports["api_read_0"], "read"),
        Instance("api-read-2", "location_api", ports["api_read_1"], "read"),
        Instance("api-write-1", "location_api", ports["api_write"], "write"),
        Instance("ws-1", "friends_ws", ports["ws_0"]),
        Instance("ws-2", "friends_ws", ports["ws_1"]),
    ]
