"""The one supervisor of foreground processes (geo_common.supervisor), as ``--workers``,
``geo-stack run`` and ``geo-stack run --full`` use it: signals stop every child, the last
started first; a child that exits on its own stops the rest with its status, unless the caller
goes on without it; a child that ignores SIGTERM is killed; nothing is left behind.

Each supervisor runs in a process of its own (a script below), so that its signals and
children are its own; the children are small Python programs that log what happens to them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from geo_common.supervisor import Forked, Supervisor, ended, exit_status
from tests.conftest import REPO, TIMEOUT_FACTOR

#: A child: logs its pid and that it is up; logs SIGTERM and leaves (or ignores it when
#: "stubborn"; takes a second, as a drain does, when "slow"); in mode "exit", exits with the
#: code it is given once all three are up.
CHILD = """\
import os, signal, sys, time
from pathlib import Path
name, log, code, mode = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def note(text):
    with log.open("a") as f:
        f.write(f"{name} {text}\\n")
def on_term(*_):
    note("got SIGTERM")
    if mode == "slow":
        time.sleep(1.0)
        note("leaves")
    if mode != "stubborn":
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
note(f"pid {os.getpid()}")
note("up")
while True:
    if mode == "exit" and log.read_text().count(" up") >= 3:
        note(f"exits with {code}")
        sys.exit(code)
    time.sleep(0.02)
"""

#: The supervisor: starts a, b and c (argv: log, the mode of b (of all three when "slow"), its
#: code, grace, keep going, the child's script, whether it stops them together).
SUPERVISOR = """\
import sys
from geo_common.supervisor import Supervisor
log, mode, code, grace, keep = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "keep"
together = sys.argv[7] == "together"
def lost(child, returncode):
    with open(log, "a") as f:
        f.write(f"lost {child.name}: {returncode}\\n")
    return True
with Supervisor("sup", grace_s=grace, together=together) as supervisor:
    for name in "abc":
        argv = [sys.executable, sys.argv[6], name, log, code, mode if name == "b" or mode == "slow" else "run"]
        supervisor.start(name, argv)
    print("started", flush=True)
    status = supervisor.watch(keep_going=lost if keep else None)
    print(f"stopped {supervisor.stop()}", flush=True)
sys.exit(status)
"""


class Run:
    """One supervisor process and the log its children write."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        mode: str = "run",
        code: int = 0,
        grace: float = 15.0,
        keep: bool = False,
        together: bool = False,
    ):
        (tmp_path / "child.py").write_text(CHILD)
        (tmp_path / "supervisor.py").write_text(SUPERVISOR)
        self.log = tmp_path / "children.log"
        self.log.touch()
        argv = [str(self.log), mode, str(code), str(grace), "keep" if keep else "stop", str(tmp_path / "child.py")]
        argv.append("together" if together else "in-turn")
        self.proc = subprocess.Popen(
            [sys.executable, str(tmp_path / "supervisor.py"), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.result: tuple[int, str, str] | None = None

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def wait_for(self, line: str) -> None:
        deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
        while line not in self.lines():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                code, out, err = self.finish()
                raise AssertionError(f"no {line!r} in {self.lines()}; exit {code}\n{out}{err}")
            time.sleep(0.02)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the supervisor to exit: its status, stdout and stderr (read once)."""
        if self.result is None:
            out, err = self.proc.communicate(timeout=60 * TIMEOUT_FACTOR)
            self.result = (self.proc.returncode, out, err)
        return self.result


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Start a supervisor run; one still running at the end is asked to stop (its children too)."""
    started: list[Run] = []

    def run(**options: Any) -> Run:
        started.append(Run(tmp_path, **options))
        return started[-1]

    yield run
    for leftover in started:
        if leftover.proc.poll() is None:
            leftover.proc.send_signal(signal.SIGTERM)
        leftover.finish()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_child_the_last_started_first(start: Callable[..., Run], signum: int) -> None:
    run = start()
    for name in "abc":
        run.wait_for(f"{name} up")
    run.proc.send_signal(signum)
    code, out, err = run.finish()
    assert code == 0, err
    assert [line for line in run.lines() if "SIGTERM" in line] == ["c got SIGTERM", "b got SIGTERM", "a got SIGTERM"]
    assert "stopped ['c', 'b', 'a']" in out and err == ""


def test_a_child_that_exits_stops_the_others_and_gives_its_status(start: Callable[..., Run]) -> None:
    run = start(mode="exit", code=3)
    code, out, err = run.finish()
    assert code == 3
    assert "b exits with 3" in run.lines()
    assert {"a got SIGTERM", "c got SIGTERM"} <= set(run.lines())
    assert err == "sup: b exited with code 3; stopping the others\n"
    assert "stopped ['c', 'a']" in out  # b had gone already


def test_a_child_that_exits_cleanly_on_its_own_is_a_failure_too(start: Callable[..., Run]) -> None:
    run = start(mode="exit", code=0)
    code, _, err = run.finish()
    assert code == 1 and err == "sup: b exited with code 0; stopping the others\n"


def test_a_caller_may_go_on_without_a_child(start: Callable[..., Run]) -> None:
    run = start(mode="exit", code=5, keep=True)
    run.wait_for("lost b: 5")
    assert run.proc.poll() is None and not any("SIGTERM" in line for line in run.lines())  # the others go on
    run.proc.send_signal(signal.SIGTERM)
    code, out, err = run.finish()
    assert code == 0, err
    assert "stopped ['c', 'a']" in out and err == ""


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(start: Callable[..., Run]) -> None:
    run = start(mode="stubborn", grace=0.5)
    for name in "abc":
        run.wait_for(f"{name} up")
    pids = {int(line.split()[2]) for line in run.lines() if " pid " in line}
    assert len(pids) == 3
    run.proc.send_signal(signal.SIGTERM)
    code, _, err = run.finish()
    assert code == 0
    assert "b got SIGTERM" in run.lines() and err == "sup: b did not stop within 0.5 s of SIGTERM; killing it\n"
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"child {pid} left behind"


@pytest.mark.parametrize("together", [False, True])
def test_peers_stopped_together_overlap_their_drains_others_take_turns(
    start: Callable[..., Run], together: bool
) -> None:
    """A service's workers each drain for a while after SIGTERM: stopped together, all of them
    are told at once (one drain window in all); otherwise each is told once the last left."""
    run = start(mode="slow", together=together)
    for name in "abc":
        run.wait_for(f"{name} up")
    run.proc.send_signal(signal.SIGTERM)
    code, out, err = run.finish()
    assert code == 0 and err == "", err
    assert "stopped ['c', 'b', 'a']" in out
    events = [line for line in run.lines() if "SIGTERM" in line or "leaves" in line]
    if together:
        assert sorted(events[:3]) == ["a got SIGTERM", "b got SIGTERM", "c got SIGTERM"], events
        assert sorted(events[3:]) == ["a leaves", "b leaves", "c leaves"], events
    else:
        assert events == ["c got SIGTERM", "c leaves", "b got SIGTERM", "b leaves", "a got SIGTERM", "a leaves"]


def test_forked_children_end_as_popen_says_and_statuses_read_as_a_shell_does() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with Supervisor("sup") as supervisor:
        pid = supervisor.fork(lambda: time.sleep(60))
        child = supervisor.children[0]
        assert child.name == f"worker {pid}" and child.process.poll() is None
        os.kill(pid, signal.SIGKILL)
        assert child.process.wait(timeout=10) == -signal.SIGKILL
        supervisor.fork(lambda: sys.exit(4))
        # The child raised SystemExit(4): any exception in a worker is a failure, status 1.
        assert supervisor.children[1].process.wait(timeout=10) == 1
        assert isinstance(supervisor.children[1].process, Forked)
        assert supervisor.stop() == []  # nothing left running
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back
    assert exit_status(-signal.SIGKILL) == 137 and exit_status(3) == 3
    assert ended(-signal.SIGKILL) == "was killed by SIGKILL" and ended(2) == "exited with code 2"
