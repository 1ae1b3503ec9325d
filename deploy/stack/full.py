"""``geo-stack up --full``: several instances of each service behind nginx, on this machine.

::

    client -> nginx 127.0.0.1:8000 -+-> geo-api --role read  x2 --+-> PostgreSQL primary + replica
                                    +-> geo-api --role write x1 --+-> Redis (the API's business cache)
                                    +-> geo-friends          x2 --+-> Redis primary + replica and
                                                                      3 sentinels (locations, pub/sub)

Instances and nginx run in sessions of their own, pid files and logs in ``<stack>/full/``
(``geo-stack down`` and ``status`` find them); nginx runs ``daemon off`` with a configuration
written there (:mod:`deploy.stack.nginx`), never as the system's service.

The location cache and pub/sub (``GEO_REDIS_URL``) are on a Redis primary, its replica and
three Redis Sentinels (:mod:`deploy.stack.sentinel`), the shape of deploy/k8s: the instances
are given ``redis+sentinel://`` and follow a failover; the HTTP API's business cache is the
stack's standalone Redis (``GEO_API_CACHE_URL``).

Failover: every instance is given the primary as both servers with
``target_session_attrs=read-write``, so after the replica is promoted new connections find
it without a restart. Synchronous replication is switched on while the full tier runs, so a
write acknowledged before the primary died is on the replica (see docs/reliability.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from deploy.stack import nginx, ports, postgres, sentinel
from deploy.stack.binaries import Binaries, ensure_nginx
from deploy.stack.instances import Instance, Row, instances
from deploy.stack.layout import Layout, StackState, assign_ports
from deploy.stack.procs import StackError, cmdline, is_root, pid_alive, port_accepts, read_pid, run, terminate
from deploy.stack.redis_nodes import RedisNode
from geo_common.settings import Settings
from geo_common.supervisor import Child, Supervisor, ended

DEFAULT_ENTRY_PORT = 8000
#: Instances of each kind, and the state key of their ports; "locations": the Sentinel set's
#: primary, replica and three sentinels.
FULL_PORT_NEEDS = {"api_read": 2, "api_write": 1, "ws": 2, "locations": 5}

# Popen objects of the processes started here: reaped when stopped, never collected while running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def has_full(state: StackState) -> bool:
    """True once ``up --full`` has chosen the tier's ports."""
    return "entry" in state.ports


def follow_primary_dsn(state: StackState) -> str:
    """The primary as both servers, writable one first: after a promotion, the replica."""
    hosts = f"127.0.0.1:{state.ports['pg_primary']},127.0.0.1:{state.ports['pg_replica']}"
    return f"postgresql://postgres@{hosts}/{postgres.DATABASE}?target_session_attrs=read-write"


class FullTier:
    """The instances and nginx of one stack folder.

    Args:
        layout: the stack's folder.
        state: its state (with the full tier's ports once :meth:`assign` ran).
    """

    def __init__(self, layout: Layout, state: StackState) -> None:
        self.layout = layout
        self.state = state
        self.directory = layout.root / "full"
        self.files = nginx.NginxFiles(self.directory / "nginx")
        #: What :meth:`up` started, in order: supervised by :meth:`foreground`.
        self._spawned: list[tuple[str, subprocess.Popen[bytes]]] = []

    # --- ports and environment -----------------------------------------------------------------

    @property
    def locations(self) -> sentinel.SentinelSet:
        """The location cache's Redis (its ports are 0 until :meth:`assign` chose them)."""
        p = [self.state.ports.get(f"locations_{i}", 0) for i in range(5)]
        return sentinel.SentinelSet(self.directory / "locations", (p[0], p[1], p[2], p[3], p[4]))

    def assign(self, entry_port: int | None) -> None:
        """Choose the instances' ports and the entry port, in the state (the caller saves it)."""
        if entry_port is not None:
            self.state.ports["entry"] = entry_port
        self.state.ports.setdefault("entry", DEFAULT_ENTRY_PORT)
        assign_ports(self.state, FULL_PORT_NEEDS)

    def check_ports(self, *, exclusive: bool) -> None:
        """Refuse before anything starts when a port the tier would serve on is not free.

        Args:
            exclusive: every part of the tier is to be started here (``run --full``, which
                stops it on Ctrl-C): a part already running refuses too. Otherwise (``up
                --full``) running parts are kept and only the others' ports are checked.

        Raises:
            StackError: naming the port and the process holding it.
        """
        entry = self.state.ports["entry"]
        parts = [("nginx", entry, self.nginx_pid(), "pass another --entry-port")]
        hint = f"move the instances' ports (in {self.layout.state_file})"
        parts += [(i.name, i.port, self.pid(i), hint) for i in instances(self.state)]
        wanted = [  # kept running like the databases: checked only when they are to be started
            ports.Wanted(f"redis-{n.name}", "127.0.0.1", n.port, hint)
            for n in self._location_nodes()
            if not n.running()
        ]
        for name, port, pid, way_out in parts:
            if pid is None:
                wanted.append(ports.Wanted(name, "127.0.0.1", port, way_out))
            elif exclusive:
                raise StackError(
                    f"port {port} for {name} is taken by {ports.describe(pid)}, this stack's full tier, already "
                    "running: stop the geo-stack run --full that started it, or geo-stack down (nothing was started)"
                )
        ports.check_free(wanted)

    @property
    def entry_url(self) -> str:
        return f"http://127.0.0.1:{self.state.ports['entry']}"

    def environment(self, stack_env: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The instances' environment: yours, under the stack's endpoints, under ``extra``."""
        return {
            # The map page's WebSocket goes through the entry port too (unless you say otherwise).
            "GEO_FRIENDS_PUBLIC_URL": f"ws://127.0.0.1:{self.state.ports['entry']}/v1/friends/ws",
            **os.environ,
            **stack_env,
            "GEO_PG_PRIMARY": follow_primary_dsn(self.state),
            # Locations and pub/sub on the Sentinel set; the API's cache, which may evict, not.
            "GEO_REDIS_URL": self.locations.url,
            "GEO_API_CACHE_URL": stack_env["GEO_REDIS_URL"],
            "GEO_ENV_FILE": str(self.layout.env_file.resolve()),
            **(extra or {}),
        }

    # --- starting ------------------------------------------------------------------------------

    def up(self, bins: Binaries, stack_env: Mapping[str, str], *, extra_env: Mapping[str, str] | None = None) -> None:
        """Start whatever of the tier is not running (idempotent), nginx last.

        When a step fails (or Ctrl-C comes) what this call started is stopped again, so a
        failed start leaves the tier as it found it.

        Raises:
            StackError: a program is missing, a port is taken, or an instance did not start.
        """
        program = ensure_nginx()
        env = self.environment(stack_env, extra_env)
        self.directory.mkdir(parents=True, exist_ok=True)
        primary = postgres.pg_nodes(self.state)[0]
        if primary.running():
            postgres.set_synchronous(bins, primary, on=True)
        started: list[str] = []
        # Like the databases, the location cache keeps running when a later step fails.
        sentinel.up(bins, self.locations)
        try:
            self._start(program, env, started)
        except BaseException:
            self._undo(bins, started)
            raise
        sentinels = ",".join(str(s.port) for s in self.locations.sentinels)
        _say(f"location cache: Redis primary and replica, sentinels on 127.0.0.1:{sentinels}")
        _say(f"full stack: {self.entry_url} (nginx) -> read x2, write x1, WebSocket x2")

    def _start(self, program: Path, env: Mapping[str, str], started: list[str]) -> None:
        """The steps of :meth:`up`, appending the name of each process it spawns to ``started``."""
        _say("loading the demo businesses (once)")
        demo = subprocess.run(
            [sys.executable, "-m", "location_api", "load-demo", "--if-empty"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if demo.returncode != 0:
            raise StackError(f"load-demo failed: {(demo.stderr or demo.stdout).strip()[-2000:]}")
        missing = [i for i in instances(self.state) if self.pid(i) is None]
        for instance in missing:
            self._spawn(instance.name, instance.argv(), env, instance.port)
            started.append(instance.name)
        for instance in missing:
            self._wait_healthy(instance)
            _say(
                f"{instance.name} ({instance.module}{' --role ' + instance.role if instance.role else ''}) "
                f"on {instance.address}"
            )
        if self.nginx_pid() is None:
            argv = self._nginx_config(program, env)
            self._spawn("nginx", argv, env, self.state.ports["entry"])
            started.append("nginx")
            self._wait_nginx()

    def _undo(self, bins: Binaries, started: list[str]) -> None:
        """Stop what a failed :meth:`up` started, nginx first, and say so."""
        stopped = []
        for name in sorted(started, key=lambda n: n != "nginx"):
            pid = read_pid(self.directory / f"{name}.pid")
            if pid is not None and pid in _CHILDREN:  # a child of this process (reaped when it had exited)
                stopped += [name] if pid_alive(pid) else []
                _stop(pid)
        if started:
            _say(f"start-up failed: stopped what it had started ({', '.join(stopped) or 'nothing still ran'})")
        if self.nginx_pid() is None and not any(self.pid(i) for i in instances(self.state)):
            self._synchronous_off(bins)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str], port: int) -> None:
        hint = "pass another --entry-port" if name == "nginx" else f"move its port (in {self.layout.state_file})"
        ports.check_free([ports.Wanted(name, "127.0.0.1", port, hint)])
        with (self.directory / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.directory,
            )
        _CHILDREN[proc.pid] = proc
        self._spawned.append((name, proc))
        (self.directory / f"{name}.pid").write_text(f"{proc.pid}\n")

    def _wait_healthy(self, instance: Instance) -> None:
        deadline = time.monotonic() + ports.START_TIMEOUT_S
        while True:
            pid = self.pid(instance)
            if pid is None:
                raise StackError(f"{instance.name} exited at start-up; see {self.directory / instance.name}.log")
            if ports.serving(instance.port, pid, f"http://{instance.address}/healthz"):
                return
            if time.monotonic() > deadline:
                raise StackError(f"{instance.name} did not answer within {ports.START_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def _nginx_config(self, program: Path, env: Mapping[str, str]) -> list[str]:
        """Write and check (``nginx -t``) nginx's configuration; return the argv that runs it."""
        files = self.files
        files.temp.mkdir(parents=True, exist_ok=True)
        pools = nginx.Pools(
            read=tuple(i.address for i in instances(self.state) if i.role == "read"),
            write=tuple(i.address for i in instances(self.state) if i.role == "write"),
            ws=tuple(i.address for i in instances(self.state) if i.module == "friends_ws"),
        )
        # As root, nginx's workers would run as "nobody", who may not reach the stack folder.
        files.conf.write_text(
            nginx.render_config(
                listen=f"127.0.0.1:{self.state.ports['entry']}",
                pools=pools,
                files=files,
                tuning=nginx.Tuning(search_rate_per_s=Settings.from_env(env).http_rate_per_s),  # per address
                worker_user="root" if is_root() else None,
            )
        )
        argv = nginx.command(program, files)
        run([*argv, "-t"], timeout=30)
        return argv

    def _wait_nginx(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            pid = self.nginx_pid()
            if pid is None or time.monotonic() > deadline:
                raise StackError(f"nginx did not start; see {self.files.error_log}")
            if ports.serving(self.state.ports["entry"], pid, f"{self.entry_url}/healthz"):
                return
            time.sleep(0.1)

    # --- looking -------------------------------------------------------------------------------

    def pid(self, instance: Instance) -> int | None:
        """The running pid of an instance, or None."""
        pid = read_pid(self.directory / f"{instance.name}.pid")
        return pid if pid is not None and pid_alive(pid) and instance.owns(pid) else None

    def nginx_pid(self) -> int | None:
        """The running nginx master's pid, or None."""
        pid = read_pid(self.directory / "nginx.pid")
        return pid if pid is not None and pid_alive(pid) and str(self.files.conf) in cmdline(pid) else None

    def status(self, bins: Binaries | None = None) -> list[Row]:
        """nginx, each instance and the Sentinel set: address, pid, role (the set's roles are
        asked with ``bins``' redis-cli; without, only whether each runs)."""
        pid = self.nginx_pid()
        rows = [
            Row(
                "nginx",
                f"127.0.0.1:{self.state.ports['entry']}",
                pid,
                "entry" if pid is None or port_accepts(self.state.ports["entry"]) else "not listening",
            )
        ]
        for instance in instances(self.state):
            rows.append(Row(instance.name, instance.address, self.pid(instance), instance.role or "websocket"))
        return rows + [
            Row(f"redis-{name}", f"127.0.0.1:{port}", pid, detail)
            for name, port, pid, detail in sentinel.describe(bins, self.locations, self._location_nodes())
        ]

    def _location_nodes(self) -> list[RedisNode]:
        """The Sentinel set's processes; none on a state from before the set (no ports yet)."""
        if "locations_0" not in self.state.ports:
            return []
        return [self.locations.primary, self.locations.replica, *self.locations.sentinels]

    # --- stopping ------------------------------------------------------------------------------

    def stop_instance(self, name: str, *, kill: bool = False) -> bool:
        """Stop one instance (SIGTERM, or SIGKILL with ``kill``); True when it was running."""
        instance = next(i for i in instances(self.state) if i.name == name)
        pid = self.pid(instance)
        if pid is None:
            return False
        if kill:
            os.kill(pid, signal.SIGKILL)
        _stop(pid)
        return True

    def down(self, bins: Binaries | None) -> list[str]:
        """Stop nginx, then every instance; switch synchronous replication off.

        Returns:
            The names of what was stopped.
        """
        stopped = []
        pid = self.nginx_pid()
        if pid is not None:
            _stop(pid)
            stopped.append("nginx")
        for instance in instances(self.state):
            if self.stop_instance(instance.name):
                stopped.append(instance.name)
        if self._location_nodes():
            stopped += sentinel.stop(self.locations)
        if bins is not None:
            self._synchronous_off(bins)
        return stopped

    def _synchronous_off(self, bins: Binaries) -> None:
        """Commits stop waiting for the replica: nothing of the tier runs any more."""
        primary = postgres.pg_nodes(self.state)[0]
        if primary.running():
            try:
                postgres.set_synchronous(bins, primary, on=False)
            except StackError as exc:  # stopping goes on: it matters more
                _say(f"could not switch synchronous replication off: {exc}")

    def foreground(self) -> int:
        """Supervise what :meth:`up` started until Ctrl-C or SIGTERM, then stop it, nginx first
        (:class:`geo_common.supervisor.Supervisor`); 0. A part that exits is not restarted and
        the rest goes on: nginx routes around a lost instance, which is the point."""
        with Supervisor("geo-stack") as supervisor:
            for name, proc in self._spawned:
                supervisor.adopt(name, proc)
            _say("all up; Ctrl-C stops the full tier (the databases keep running: geo-stack down stops them)")
            supervisor.watch(keep_going=_lost)
            stopped = supervisor.stop()
        for _, proc in self._spawned:
            _CHILDREN.pop(proc.pid, None)
        _say(f"stopped {', '.join(stopped)}")
        return 0


def _lost(child: Child, returncode: int) -> bool:
    """Say that a part of the tier exited; the rest goes on without it."""
    if child.name == "nginx":
        _say(f"nginx {ended(returncode)}: nothing answers on the entry port now (see its error log)")
    else:
        _say(f"{child.name} exited; nginx sends its traffic to the others")
    return True


def _stop(pid: int) -> None:
    terminate(pid)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _say(message: str) -> None:
    print(f"geo-stack: {message}", flush=True)
