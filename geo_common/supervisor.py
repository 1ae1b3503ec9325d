"""One supervisor for the processes a command runs in the foreground until Ctrl-C.

Three commands run children in the foreground: a service's ``--workers N`` (forked processes
sharing a port, :mod:`geo_common.serve`), ``geo-stack run`` (the API and the WebSocket tier)
and ``geo-stack run --full`` (instances behind nginx). They behave alike, here:

* **signals**: SIGINT (Ctrl-C) and SIGTERM ask the supervisor to stop; it stops its children,
  never leaving one behind. A handler only records the signal: the waiting loop acts on it.
* **stopping**: the children are stopped one at a time, the last started first (what routes
  to the others, nginx, goes before them): SIGTERM, then SIGKILL if it has not exited within
  :data:`STOP_GRACE_S`. Peers (a service's workers) are stopped ``together``: SIGTERM to all
  at once, each then given the same grace period, so that their drains overlap instead of
  following each other. Every child is waited for, so none is left a zombie.
* **a child that exits on its own**: by default the others are stopped and the command exits
  with that child's status (1 if it exited with 0: a server is not meant to end by itself;
  128 + N for signal N, as a shell says). A caller that can do without it (nginx routes
  around a lost instance) says so with ``keep_going``, and the others go on.
* **exit status**: 0 after a requested stop, otherwise the first child's failure as above.
* **logs**: one line per event, prefixed with the command's name, on stderr.

A child is anything with :class:`subprocess.Popen`'s ``pid``, ``poll``, ``wait``,
``send_signal`` and ``kill``: a started program, or a forked process (:class:`Forked`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol, Self

#: How long a child may take to exit after SIGTERM before it is killed, seconds.
STOP_GRACE_S = 15.0
#: How often the waiting loop looks at the children, seconds.
POLL_S = 0.2
#: The signals that ask a supervisor to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Process(Protocol):
    """What the supervisor needs of a child process (a subset of :class:`subprocess.Popen`)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Child:
    """A supervised process and the name the logs give it."""

    name: str
    process: Process


class Forked:
    """A child made by :func:`os.fork`, with :class:`subprocess.Popen`'s way of telling its end
    (``returncode`` 0, the exit status, or minus the signal that ended it)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = 0
            else:
                if pid != 0:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self._pid}", timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self._pid, sig)
            except ProcessLookupError:  # it has just exited; poll will tell
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def exit_status(returncode: int) -> int:
    """A child's ``returncode`` as a command's exit status: the status, or 128 + the signal."""
    return returncode if returncode >= 0 else 128 - returncode


def ended(returncode: int) -> str:
    """How a child ended, for a log line: ``exited with code 3``, ``was killed by SIGKILL``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


class Supervisor:
    """The children of one foreground command (see the module docstring for the rules).

    Use it as a context manager: the stop signals are caught inside, and on leaving, every
    child still running is stopped and the previous handlers are put back.

    Args:
        prog: the command's name, at the start of each log line.
        grace_s: how long a child may take to exit after SIGTERM.
        together: stop every child at once (peers) rather than one after another.
    """

    def __init__(self, prog: str, *, grace_s: float = STOP_GRACE_S, together: bool = False) -> None:
        self.prog = prog
        self.grace_s = grace_s
        self.together = together
        self._children: list[Child] = []
        self._gone: set[int] = set()  # pids seen exited
        self._signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Self:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.stop()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signal = signum

    @property
    def stopping(self) -> bool:
        """Whether a stop signal came."""
        return self._signal is not None

    @property
    def children(self) -> Sequence[Child]:
        """Every child, in the order they were started."""
        return tuple(self._children)

    def adopt(self, name: str, process: Process) -> Child:
        """Supervise a process this one started."""
        child = Child(name, process)
        self._children.append(child)
        return child

    def start(self, name: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` (:class:`subprocess.Popen` with ``popen``) and supervise it."""
        process: subprocess.Popen[bytes] = subprocess.Popen(list(argv), **popen)
        self.adopt(name, process)
        return process

    def fork(self, run: Callable[[], None], *, name: str = "worker") -> int:
        """Fork a child that calls ``run`` and exits (1 when it raised, logged); supervise it.

        The child gets the signal handlers this supervisor replaced, and leaves without the
        parent's exit handlers.

        Returns:
            The child's pid (the child itself never returns).
        """
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for sig, handler in self._previous.items():
                    signal.signal(sig, handler)
                run()
            except BaseException:  # reported, then the status says it failed
                logging.getLogger(self.prog).exception("%s failed", name)
                code = 1
            finally:
                os._exit(code)
        self.adopt(f"{name} {pid}", Forked(pid))
        return pid

    def watch(self, *, keep_going: Callable[[Child, int], bool] | None = None) -> int:
        """Wait until a stop signal comes, or a child exits on its own and ``keep_going`` does not
        say to go on (then say so on stderr).

        Args:
            keep_going: called with a child that exited and its ``returncode``: True to go on
                without it (the caller says what that means). None: stop at the first.

        Returns:
            The exit status: 0 after a stop signal; the first child's that ended the wait.
        """
        while not self.stopping:
            for child in self._children:
                code = child.process.poll()
                if code is None or child.process.pid in self._gone:
                    continue
                self._gone.add(child.process.pid)
                if keep_going is not None and keep_going(child, code):
                    continue
                self.say(f"{child.name} {ended(code)}; stopping the others")
                return exit_status(code) or 1
            time.sleep(POLL_S)
        return 0

    def stop(self) -> list[str]:
        """Stop every child still running, the last started first (SIGTERM, then SIGKILL after
        the grace period), and wait for each; all at once when ``together``.

        Returns:
            The names of those that were still running, in the order they were stopped.
        """
        stopped = []
        for child in reversed(self._children):
            if child.process.poll() is not None:
                continue
            stopped.append(child)
            child.process.send_signal(signal.SIGTERM)
            if not self.together:
                self._wait_or_kill(child, time.monotonic() + self.grace_s)
        deadline = time.monotonic() + self.grace_s
        for child in stopped if self.together else ():
            self._wait_or_kill(child, deadline)
        return [child.name for child in stopped]

    def _wait_or_kill(self, child: Child, deadline: float) -> None:
        """Wait for a child sent SIGTERM until ``deadline`` (monotonic), then kill it."""
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.say(f"{child.name} did not stop within {self.grace_s:g} s of SIGTERM; killing it")
            child.process.kill()
            child.process.wait()

    def say(self, message: str) -> None:
        """One log line on stderr, prefixed with the command's name."""
        print(f"{self.prog}: {message}", file=sys.stderr, flush=True)
