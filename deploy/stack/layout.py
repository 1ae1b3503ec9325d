"""Where the stack keeps its files (``.stack/``), which ports it took, and its signing key.

The first ``up`` picks free loopback ports and records them in ``.stack/state.json``; later
runs reuse them, so URLs stay stable between ``down`` and ``up``. It also generates the
stack's ``GEO_JWT_SECRET`` once, a random key kept in the state and written to ``.stack/env``
with the endpoints: the services, ``geo-token`` and the tests all read it from there, and no
one needs the built-in development key. Both files are readable by their owner only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack.procs import StackError, is_root, port_is_free, run

DEFAULT_PORT_BASE = 15_400


@dataclass
class StackState:
    """What ``up`` decided once: ports, the PostgreSQL data root and the signing key.

    ``pg_dirs`` names the data folder (under ``pg_root``) of the current primary and of the
    current replica; ``ports["pg_primary"]`` and ``ports["pg_replica"]`` are theirs. A
    failover swaps both, so the names always mean the current roles. ``jwt_secret`` is the
    stack's ``GEO_JWT_SECRET`` (empty until :func:`new_jwt_secret` gave it one).
    """

    port_base: int = DEFAULT_PORT_BASE
    ports: dict[str, int] = field(default_factory=dict)
    pg_root: str = ""
    pg_dirs: dict[str, str] = field(default_factory=lambda: {"primary": "primary", "replica": "replica"})
    jwt_secret: str = field(default="", repr=False)

    def to_json(self) -> str:
        return json.dumps(
            {
                "port_base": self.port_base,
                "ports": self.ports,
                "pg_root": self.pg_root,
                "pg_dirs": self.pg_dirs,
                "jwt_secret": self.jwt_secret,
            },
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
        state = StackState(
            port_base=raw["port_base"],
            ports=dict(raw["ports"]),
            pg_root=raw.get("pg_root", ""),
            jwt_secret=raw.get("jwt_secret", ""),
        )
        if "pg_dirs" in raw:
            state.pg_dirs = dict(raw["pg_dirs"])
        return state

    def save_state(self, state: StackState) -> None:
        """Write the state; a key saved before wins over the one ``state`` holds (two ``up``
        runs at once each made one: both end up with the first saved), and ``state`` takes it.
        """
        with self._locked():
            saved = self.load_state()
            if saved is not None and saved.jwt_secret:
                state.jwt_secret = saved.jwt_secret
            _write_private(self.state_file, state.to_json())

    def write_env(self, env: Mapping[str, str]) -> None:
        """Write ``<root>/env``: ``export KEY=VALUE`` lines, readable by the owner only."""
        self.root.mkdir(parents=True, exist_ok=True)
        _write_private(self.env_file, "".join(f"export {k}={v}\n" for k, v in env.items()))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "state.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def new_jwt_secret() -> str:
    """A random ``GEO_JWT_SECRET``: 48 bytes, URL-safe base64 (64 characters)."""
    return secrets.token_urlsafe(48)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, as a file only its owner may read."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # a left-over temporary file may have been wider
        out.write(text)
    tmp.replace(path)


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
