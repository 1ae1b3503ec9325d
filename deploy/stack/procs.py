"""Running commands for the stack: as the ``postgres`` user where needed, with clear failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class StackError(RuntimeError):
    """Something the stack needs failed; the message says what and how to fix it."""


def is_root() -> bool:
    return os.geteuid() == 0


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    as_postgres: bool = False,
    check: bool = True,
    timeout: float = 120.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output.

    Args:
        cmd: the argv.
        as_postgres: run as the ``postgres`` user when we are root (PostgreSQL refuses root).
        check: raise :class:`StackError` with the command's stderr on a non-zero exit.
        timeout: seconds before giving up.
        cwd: working directory (must be readable by the user the command runs as).
    """
    kwargs: dict[str, object] = {}
    if as_postgres and is_root():
        kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
    env = dict(os.environ)
    if as_postgres and is_root():
        env["HOME"] = "/var/lib/postgresql" if Path("/var/lib/postgresql").is_dir() else "/tmp"
    try:
        proc: subprocess.CompletedProcess[str] = subprocess.run(
            [str(c) for c in cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or "/",
            env=env,
            **kwargs,  # type: ignore[call-overload]
        )
    except subprocess.TimeoutExpired:
        raise StackError(f"{cmd[0]} did not finish within {timeout:.0f} s: {' '.join(map(str, cmd))}") from None
    except FileNotFoundError:
        raise StackError(f"{cmd[0]} is not installed") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise StackError(f"{Path(str(cmd[0])).name} failed (exit {proc.returncode}): {detail}")
    return proc


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_accepts(port: int) -> bool:
    """True when a connection to 127.0.0.1:port succeeds."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie left by a parent that never reaped it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def terminate(pid: int, *, timeout: float = 15.0) -> None:
    """SIGTERM a process and wait for it to go; SIGKILL it if it will not."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(predicate: object, what: str, *, timeout: float = 30.0, interval: float = 0.1) -> None:
    """Poll ``predicate()`` until true; raise :class:`StackError` naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
