"""``geo-stack run``: refuses taken ports naming who holds them, calls ready only its own
children, and stops what it started when a later step fails.

The stranger on a port is a real server (``python -m http.server`` serving a file named
``healthz``, so it answers ``/healthz`` with 200 like a geo service); the refusals need no
database. The runs that start services use a throwaway stack of this module's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.stack import ports
from deploy.stack.binaries import ensure_binaries
from deploy.stack.instances import instances
from deploy.stack.layout import Layout, StackState
from deploy.stack.postgres import pg_nodes, psql
from deploy.stack.procs import StackError, pid_alive, port_accepts, port_is_free, read_pid
from deploy.stack.stack import Stack
from tests.conftest import TIMEOUT_FACTOR, discard_stack
from tests.ports import free_block, free_port

#: Quicker instances: one in-memory index, searches through the database, quiet logs.
QUICK_ENV = {"GEO_API_INDEXES": "geohash", "GEO_API_INDEX": "sql", "GEO_LOG_LEVEL": "warning"}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Stranger:
    """A process of no stack's serving 200 on ``/healthz`` at 127.0.0.1:port."""

    def __init__(self, port: int, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "healthz").write_text("not geo\n")
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(folder), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_accepts(port) or self.proc.poll() is not None, f"the stranger on {port}")
        assert self.proc.poll() is None, f"the stranger could not listen on {port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def stranger(tmp_path: Path) -> Iterator[Callable[[int], Stranger]]:
    started: list[Stranger] = []

    def start(port: int) -> Stranger:
        started.append(Stranger(port, tmp_path / f"stranger-{port}"))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def geo_stack(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.stack.cli", "--dir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120 * TIMEOUT_FACTOR,
        env={**os.environ, **(env or {})},
    )


def assert_refused(proc: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith("geo-stack: ") and message.endswith("(nothing was started)"), message
    for part in parts:
        assert part in message, (part, message)
    assert "ready" not in proc.stdout


# --- refusals before anything starts (no database needed) ---------------------------------


@pytest.mark.parametrize("taken", ["GEO_API_PORT", "GEO_WS_PORT"])
def test_run_refuses_a_taken_port_naming_the_process_and_starts_nothing(
    tmp_path: Path, stranger: Callable[[int], Stranger], taken: str
) -> None:
    api, ws = free_port(), free_port()
    held = stranger(api if taken == "GEO_API_PORT" else ws)
    other = ws if taken == "GEO_API_PORT" else api
    root = tmp_path / "stack"
    refused = geo_stack(root, "run", env={"GEO_API_PORT": str(api), "GEO_WS_PORT": str(ws)})
    what = "the HTTP API" if taken == "GEO_API_PORT" else "the WebSocket tier"
    assert_refused(
        refused, f"port {held.port} for {what} is taken by pid {held.pid} (", "-m http.server", f"set {taken}"
    )
    assert not root.exists()  # not even the stack's state: no database was started
    assert port_is_free(other)
    assert held.proc.poll() is None  # the stranger is left alone


def test_run_refuses_bad_ports_in_the_settings(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    bad = geo_stack(root, "run", env={"GEO_API_PORT": "eighty"})
    assert bad.returncode == 1 and "GEO_API_PORT='eighty'" in bad.stderr and "Traceback" not in bad.stderr
    port = str(free_port())
    same = geo_stack(root, "run", env={"GEO_API_PORT": port, "GEO_WS_PORT": port})
    assert_refused(same, f"the HTTP API and the WebSocket tier would both listen on port {port}")
    anywhere = geo_stack(root, "run", env={"GEO_WS_PORT": "0"})
    assert anywhere.returncode == 1 and "GEO_WS_PORT=0" in anywhere.stderr
    out_of_range = geo_stack(root, "run", "--full", "--entry-port", "70000")
    assert out_of_range.returncode == 2 and "--entry-port" in out_of_range.stderr
    assert not root.exists()


def test_run_full_refuses_a_taken_entry_port(tmp_path: Path, stranger: Callable[[int], Stranger]) -> None:
    held = stranger(free_port())
    root = tmp_path / "stack"
    refused = geo_stack(root, "run", "--full", "--entry-port", str(held.port))
    assert_refused(refused, f"port {held.port} for nginx is taken by pid {held.pid} (", "pass another --entry-port")
    assert not (root / "state.json").exists()  # the ports it would have taken are not even recorded


def test_run_full_refuses_a_taken_instance_port(tmp_path: Path, stranger: Callable[[int], Stranger]) -> None:
    # A stack whose ports were chosen before (as by an earlier `up --full`); one instance's
    # port has since been taken by someone else.
    layout = Layout(tmp_path / "stack")
    names = ["pg_primary", "pg_replica", "redis", "cluster_0", "cluster_1", "cluster_2"]
    names += ["api_read_0", "api_read_1", "api_write", "ws_0", "ws_1"]
    base = free_block(len(names), cluster=True)
    state = StackState(port_base=base, ports={name: base + i for i, name in enumerate(names)})
    layout.save_state(state)
    saved = layout.state_file.read_text()
    held = stranger(state.ports["api_read_1"])
    entry = free_port()
    refused = geo_stack(layout.root, "run", "--full", "--entry-port", str(entry))
    assert_refused(refused, f"port {held.port} for api-read-2 is taken by pid {held.pid} (", "-m http.server")
    assert layout.state_file.read_text() == saved
    assert not (layout.root / "full").exists() and not (layout.root / "pg").exists()


def test_signing_key_prints_the_key_the_services_would_sign_with(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    missing = geo_stack(root, "signing-key", env={"GEO_JWT_SECRET": ""})
    assert missing.returncode == 1 and missing.stdout == ""
    assert (
        missing.stderr
        == f"geo-stack: no signing key: GEO_JWT_SECRET is not set and there is no stack in {root} (run geo-stack up)\n"
    )
    layout = Layout(root)
    layout.save_state(StackState(jwt_secret="the-stack-s-own-key-" + "s" * 32))
    own = geo_stack(root, "signing-key", env={"GEO_JWT_SECRET": ""})
    assert (own.returncode, own.stdout) == (0, "the-stack-s-own-key-" + "s" * 32 + "\n")
    # A key in the environment is the one `geo-stack run` gives the services: it wins here too.
    given = geo_stack(root, "signing-key", env={"GEO_JWT_SECRET": "from-the-environment-" + "e" * 32})
    assert (given.returncode, given.stdout) == (0, "from-the-environment-" + "e" * 32 + "\n")


# --- readiness: only the child this run started --------------------------------------------


def test_serving_is_never_claimed_for_a_stranger(tmp_path: Path, stranger: Callable[[int], Stranger]) -> None:
    held = stranger(free_port())
    url = f"http://127.0.0.1:{held.port}/healthz"
    # A child of ours that is alive but serves nothing: the stranger's 200 is not its readiness.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StackError, match=f"port {held.port} is answered by pid {held.pid} "):
            ports.serving(held.port, child.pid, url)
    finally:
        child.kill()
        child.wait()
    # The server itself, and a process that started it, are recognised as serving.
    assert ports.serving(held.port, held.pid, url)
    port = free_port()
    # The parent stops its child on SIGTERM by a handler of its own: SIGINT would be ignored
    # where the test runs from a background job, which starts with SIGINT ignored.
    parent_script = (
        "import signal, subprocess, sys\nchild = subprocess.Popen(sys.argv[1:])\n"
        "signal.signal(signal.SIGTERM, lambda *_: child.terminate())\nsys.exit(child.wait())\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_script]
        + [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_accepts(port), "the grandchild server")
        assert ports.serving(port, parent.pid, f"http://127.0.0.1:{port}/")
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
    wait_until(lambda: not port_accepts(port), "the grandchild server to stop")
    # Nothing listening: not serving, and no error.
    assert not ports.serving(port, parent.pid, f"http://127.0.0.1:{port}/healthz")


# --- runs that start services, on a stack of this module's own ------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("run-stack") / "stack"
    stack = Stack(root, port_base=free_block(20, cluster=True))
    try:
        stack.up()
        yield stack
    finally:
        discard_stack(stack, root)


class Run:
    """A ``geo-stack run`` in the foreground, its output collected line by line."""

    def __init__(self, root: Path, *args: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.stack.cli", "--dir", str(root), "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **QUICK_ENV, **env},
            start_new_session=True,  # its own group: what it leaves behind can be found and ended
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while True:
            found = next((line for line in self.lines if text in line), None)
            if found is not None:
                return found
            assert self.proc.poll() is None or self._reader.is_alive(), f"run exited:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            time.sleep(0.1)

    def interrupt(self) -> int:
        """Ctrl-C, as from the terminal, and the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        try:
            code = self.proc.wait(timeout=60 * TIMEOUT_FACTOR)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        self._reader.join(timeout=10)
        return code


@pytest.fixture
def runs() -> Iterator[Callable[..., Run]]:
    started: list[Run] = []

    def start(root: Path, *args: str, env: dict[str, str] | None = None) -> Run:
        started.append(Run(root, *args, env=env or {}))
        return started[-1]

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.interrupt()


def healthz_pid(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a loopback URL of the test
        return int(json.load(resp)["pid"])


@pytest.mark.timeout(int(900 * TIMEOUT_FACTOR))
def test_a_second_run_is_refused_while_the_first_serves(stack: Stack, runs: Callable[..., Run]) -> None:
    api, ws = free_port(), free_port()
    env = {"GEO_API_PORT": str(api), "GEO_WS_PORT": str(ws)}
    first = runs(stack.layout.root, env=env)
    first.wait_for("all services up")
    assert f"HTTP API ready at http://127.0.0.1:{api}" in first.output
    api_pid = healthz_pid(f"http://127.0.0.1:{api}/healthz")

    second = geo_stack(stack.layout.root, "run", env={**QUICK_ENV, **env})
    assert_refused(second, f"port {api} for the HTTP API is taken by pid {api_pid} (", "-m location_api", f"{ws}")
    assert healthz_pid(f"http://127.0.0.1:{api}/healthz") == api_pid  # the first still serves, unharmed
    assert first.proc.poll() is None

    assert first.interrupt() == 0
    assert "services stopped" in first.output
    assert port_is_free(api) and port_is_free(ws)


@pytest.mark.timeout(int(600 * TIMEOUT_FACTOR))
def test_run_does_not_call_a_stranger_ready_and_stops_what_it_started(
    stack: Stack, stranger: Callable[[int], Stranger]
) -> None:
    # The stranger takes the WebSocket tier's port after the check (as in a race): the HTTP
    # API starts and is ready, the WebSocket tier cannot listen, and the stranger's answer on
    # /healthz is not taken for it. The run then stops the HTTP API it had started.
    api, ws = free_port(), free_port()
    held = stranger(ws)
    script = (
        "import sys, os; from deploy.stack import services; "
        "environ = {**os.environ, 'GEO_API_PORT': sys.argv[1], 'GEO_WS_PORT': sys.argv[2]}; "
        "sys.exit(services.run_services(Stack(Path(sys.argv[3])).up(), services.plan(environ), environ))"
    )
    run = subprocess.run(
        [sys.executable, "-c", "from pathlib import Path; from deploy.stack.stack import Stack; " + script]
        + [str(api), str(ws), str(stack.layout.root)],
        capture_output=True,
        text=True,
        timeout=300 * TIMEOUT_FACTOR,
        env={**os.environ, **QUICK_ENV},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"HTTP API ready at http://127.0.0.1:{api}" in run.stdout
    assert "WebSocket tier ready" not in run.stdout and "all services up" not in run.stdout
    assert f"the WebSocket tier did not start: port {ws} is answered by pid {held.pid} (" in run.stderr
    assert "stopped what this run started (the HTTP API, the WebSocket tier)" in run.stdout
    assert port_is_free(api) and held.proc.poll() is None


@pytest.mark.timeout(int(1200 * TIMEOUT_FACTOR))
def test_run_full_stops_the_instances_it_started_when_nginx_fails(stack: Stack, runs: Callable[..., Run]) -> None:
    root = stack.layout.root
    # nginx -t fails after the five instances are up: its error log cannot be opened.
    error_log = root / "full" / "nginx" / "error.log"
    error_log.mkdir(parents=True)
    entry = free_port()
    failed = runs(root, "--full", "--entry-port", str(entry))
    assert failed.finish() == 1, failed.output
    state = stack.layout.load_state()
    assert state is not None
    tier = instances(state)
    for instance in tier:
        assert f"{instance.name} (" in failed.output  # each had started and answered
    assert "nginx failed" in failed.output and "Traceback" not in failed.output
    started = ", ".join(i.name for i in tier)
    assert f"start-up failed: stopped what it had started ({started})" in failed.output, failed.output
    for instance in tier:
        pid = read_pid(root / "full" / f"{instance.name}.pid")
        assert pid is not None and not pid_alive(pid), instance.name
        assert port_is_free(instance.port), instance.name
    primary = pg_nodes(state)[0]
    assert psql(ensure_binaries(), primary.port, "SHOW synchronous_standby_names") == ""

    # With nginx able to start, the same run comes up whole; a second one meanwhile is refused
    # (it would stop the first's tier on Ctrl-C); Ctrl-C stops everything the first started.
    error_log.rmdir()
    good = runs(root, "--full", "--entry-port", str(entry))
    good.wait_for("all up; Ctrl-C stops the full tier")
    served = [healthz_pid(f"http://127.0.0.1:{entry}/healthz") for _ in range(4)]
    pids = {i.name: read_pid(root / "full" / f"{i.name}.pid") for i in tier}
    assert set(served) <= set(pids.values())
    nginx_pid = read_pid(root / "full" / "nginx.pid")
    second = geo_stack(root, "run", "--full", "--entry-port", str(entry), env=QUICK_ENV)
    assert_refused(second, f"port {entry} for nginx is taken by pid {nginx_pid} (nginx", "this stack's full tier")
    # `up --full` keeps what runs: its own ports count as taken by nobody, and nothing is restarted.
    again = geo_stack(root, "up", "--full", env=QUICK_ENV)
    assert again.returncode == 0, again.stderr
    assert {i.name: read_pid(root / "full" / f"{i.name}.pid") for i in tier} == pids
    assert read_pid(root / "full" / "nginx.pid") == nginx_pid
    assert good.interrupt() == 0
    for pid in [nginx_pid, *pids.values()]:
        assert pid is not None and not pid_alive(pid)
    assert port_is_free(entry)
