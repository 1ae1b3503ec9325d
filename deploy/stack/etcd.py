"""etcd for the stack: one member on loopback, its data in the stack folder.

The ring pub/sub backend's nodes are kept in etcd (docs/pubsub.md#the-ring-in-etcd); the stack
starts it when a region uses the ring. It listens on 127.0.0.1 only, for clients on one port
and for its (absent) peers on another, and runs in a session of its own with a pid file, so
``geo-stack down`` stops exactly it. Tests start their own members the same way, to stop and
restart them.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.procs import StackError, cmdline, pid_alive, port_accepts, port_is_free, read_pid, terminate

# Popen objects of the members started here: reaped when stopped, never collected while running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class EtcdMember:
    """One etcd process.

    Attributes:
        directory: its folder (data, pid file, log).
        client_port: where clients connect (``GEO_ETCD_URL``).
        peer_port: where peers would connect (a single member has none, but etcd listens).
    """

    directory: Path
    client_port: int
    peer_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def pidfile(self) -> Path:
        return self.directory / "etcd.pid"

    @property
    def log(self) -> Path:
        return self.directory / "etcd.log"

    def pid(self) -> int | None:
        pid = read_pid(self.pidfile)
        # Only a process that is our etcd on our port counts: pids get reused.
        if pid is None or not pid_alive(pid) or f"127.0.0.1:{self.client_port}" not in cmdline(pid):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def argv(self, program: Path) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            str(program),
            "--name",
            "geo",
            "--data-dir",
            str((self.directory / "data").resolve()),
            "--listen-client-urls",
            self.url,
            "--advertise-client-urls",
            self.url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"geo={peer}",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ]


def start(program: Path, member: EtcdMember, *, timeout_s: float = 30.0) -> None:
    """Start a member unless it runs; return once it accepts clients.

    Raises:
        StackError: a port is taken by another process, or etcd did not start (see its log).
    """
    if member.running():
        return
    for port in (member.client_port, member.peer_port):
        if not port_is_free(port):
            raise StackError(
                f"port {port} for etcd is taken by another process; "
                "stop it, or remove .stack (geo-stack down, then rm -rf .stack) to pick new ports"
            )
    member.directory.mkdir(parents=True, exist_ok=True)
    with member.log.open("ab") as log:
        proc = subprocess.Popen(
            member.argv(program),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=member.directory,
        )
    _CHILDREN[proc.pid] = proc
    member.pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    while not healthy(member):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(member)
            raise StackError(f"etcd did not start on 127.0.0.1:{member.client_port}; see {member.log}")
        time.sleep(0.05)


def healthy(member: EtcdMember) -> bool:
    """True when the member serves clients (its ``/health`` says so: it has a leader, itself)."""
    if not port_accepts(member.client_port):
        return False
    try:
        with urllib.request.urlopen(f"{member.url}/health", timeout=2) as resp:  # noqa: S310 - our loopback URL
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def stop(member: EtcdMember) -> bool:
    """Stop a member through its pid file. Returns True when it was running."""
    pid = member.pid()
    if pid is None:
        return False
    terminate(pid)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=5)
    member.pidfile.unlink(missing_ok=True)
    return True
