"""Where the stack keeps its files (``.stack/``) and which ports it took.

The first ``up`` picks free loopback ports and records them in ``.stack/state.json``; later
runs reuse them, so URLs stay stable between ``down`` and ``up``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack.procs import StackError, is_root, port_is_free, run

DEFAULT_PORT_BASE = 15_400


@dataclass
class StackState:
    """What ``up`` decided once: ports and the PostgreSQL data root.

    ``pg_dirs`` names the data folder (under ``pg_root``) of the current primary and of the
    current replica; ``ports["pg_primary"]`` and ``ports["pg_replica"]`` are theirs. A
    failover swaps both, so the names always mean the current roles.
    """

    port_base: int = DEFAULT_PORT_BASE
    ports: dict[str, int] = field(default_factory=dict)
    pg_root: str = ""
    pg_dirs: dict[str, str] = field(default_factory=lambda: {"primary": "primary", "replica": "replica"})

    def to_json(self) -> str:
        return json.dumps(
            {"port_base": self.port_base, "ports": self.ports, "pg_root": self.pg_root, "pg_dirs": self.pg_dirs},
            indent=2,
        )

    def swap_pg_roles(self) -> None:
        """The replica became the primary and the primary its replica."""
        dirs, ports = self.pg_dirs, self.ports
        dirs["primary"], dirs["replica"] = dirs["replica"], dirs["primary"]
        ports["pg_primary"], ports["pg_replica"] = ports["pg_replica"], ports["pg_primary"]


@dataclass(frozen=True)
class Layout:
    """Paths under the stack folder, every one absolute (a relative folder, the default
    ``.stack`` among them, is taken from the current directory once, here): nginx resolves a
    relative ``-c`` inside its ``-p``, and the servers may run from elsewhere."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", self.root.absolute())

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    def cluster_dir(self, port: int) -> Path:
        return self.root / "redis-cluster" / str(port)

    def load_state(self) -> StackState | None:
        if not self.state_file.is_file():
            return None
        raw = json.loads(self.state_file.read_text())
        state = StackState(port_base=raw["port_base"], ports=dict(raw["ports"]), pg_root=raw.get("pg_root", ""))
        if "pg_dirs" in raw:
            state.pg_dirs = dict(raw["pg_dirs"])
        return state

    def save_state(self, state: StackState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)


#: Services and how many ports each takes. Cluster nodes also need port + 10000 (cluster bus).
PORT_NEEDS = {"pg_primary": 1, "pg_replica": 1, "redis": 1, "cluster": 3}


def assign_ports(state: StackState, needs: Mapping[str, int] = PORT_NEEDS) -> None:
    """Fill in any missing ports in ``state`` with free loopback ports from its base.

    Args:
        state: the stack's state, updated in place.
        needs: service -> how many ports (the stack's own by default; ``--full`` adds its
            instances' with another mapping).
    """
    taken = set(state.ports.values())
    candidate = state.port_base
    for name, count in needs.items():
        for i in range(count):
            key = name if count == 1 else f"{name}_{i}"
            if key in state.ports:
                continue
            while True:
                if candidate > 55_000:
                    raise StackError(f"no free ports found from {state.port_base}; pass --port-base")
                bus_ok = name != "cluster" or port_is_free(candidate + 10_000)
                if candidate not in taken and port_is_free(candidate) and bus_ok:
                    break
                candidate += 1
            state.ports[key] = candidate
            taken.add(candidate)
            candidate += 1


def postgres_can_use(path: Path) -> bool:
    """True when the ``postgres`` user can create files in ``path`` (always true when not root)."""
    if not is_root():
        return True
    return run(["test", "-w", str(path), "-a", "-x", str(path)], as_postgres=True, check=False).returncode == 0


def choose_pg_root(layout: Layout) -> Path:
    """A folder for the PostgreSQL data that the ``postgres`` user can write.

    ``.stack/pg`` when every parent folder lets that user through; otherwise a throwaway folder
    under the system temp dir, recorded in the state so ``down`` and ``status`` find it.
    """
    preferred = (layout.root / "pg").resolve()
    preferred.mkdir(parents=True, exist_ok=True)
    if is_root():
        shutil.chown(preferred, "postgres", "postgres")
    if postgres_can_use(preferred):
        return preferred
    preferred.rmdir()
    fallback = Path(tempfile.mkdtemp(prefix="geo-stack-pg-"))
    os.chmod(fallback, 0o755)
    shutil.chown(fallback, "postgres", "postgres")
    return fallback
