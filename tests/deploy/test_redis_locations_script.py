"""The start script of the Kubernetes location cache, run as its pods would run it.

deploy/k8s/base/redis-locations.sh decides at each start whether a pod is the primary or a
replica, and where the sentinels look. Here it starts three Redis and three sentinels as real
processes under ``sh``, each pod an address of its own on loopback (127.0.1.x for the Redis
pods, 127.0.2.x for the sentinels) standing in for its DNS name, on the same port as its
peers, as in the cluster. Then the primary is killed and started again by the script: it must
come back as a replica of the promoted one, and a restarted sentinel must find that primary.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.k8s_render import K8S_DIR
from deploy.stack.binaries import ensure_binaries
from tests.conftest import TIMEOUT_FACTOR

SCRIPT = K8S_DIR / "base" / "redis-locations.sh"
PASSWORD = "s3cret-of-the-test"
PRIMARY_NAME = "geo-locations"
REDIS_HOSTS = ("127.0.1.1", "127.0.1.2", "127.0.1.3")
SENTINEL_HOSTS = ("127.0.2.1", "127.0.2.2", "127.0.2.3")


def _port_free_everywhere(port: int) -> bool:
    for host in (*REDIS_HOSTS, *SENTINEL_HOSTS):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _two_ports() -> tuple[int, int]:
    found: list[int] = []
    port = 21_000 + os.getpid() % 1000 * 7
    while len(found) < 2:
        if _port_free_everywhere(port):
            found.append(port)
        port += 1
    return found[0], found[1]


class Pods:
    """The six "pods": one ``sh redis-locations.sh`` process each, restartable."""

    def __init__(self, root: Path, redis_port: int, sentinel_port: int) -> None:
        bins = ensure_binaries()
        self.cli = str(bins.redis_cli)
        self.root = root
        self.redis_port, self.sentinel_port = redis_port, sentinel_port
        self.path = f"{Path(bins.redis_server).parent}:{os.environ['PATH']}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str, host: str) -> None:
        data = self.root / host
        data.mkdir(exist_ok=True)
        env = {
            "PATH": self.path,
            "ANNOUNCE_HOST": host,
            "BIND": host,
            "REDIS_HOSTS": " ".join(REDIS_HOSTS),
            "SENTINEL_HOSTS": " ".join(SENTINEL_HOSTS),
            "PRIMARY_NAME": PRIMARY_NAME,
            "MAXMEMORY": "64mb",
            "REDIS_PASSWORD": PASSWORD,
            "REDIS_PORT": str(self.redis_port),
            "SENTINEL_PORT": str(self.sentinel_port),
            "DATA_DIR": str(data),
            "DOWN_AFTER_MS": "1000",
            # A tied vote is retried after twice this: within the test's waits.
            "FAILOVER_TIMEOUT_MS": "3000",
        }
        with (data / "out.log").open("ab") as log:
            self.procs[host] = subprocess.Popen(
                ["sh", str(SCRIPT), role], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, host: str) -> None:
        proc = self.procs.pop(host)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for host in list(self.procs):
            self.kill(host)

    def ask(self, host: str, *command: str) -> list[str]:
        sentinel = host in SENTINEL_HOSTS
        port = self.sentinel_port if sentinel else self.redis_port
        env = {**os.environ, **({} if sentinel else {"REDISCLI_AUTH": PASSWORD})}
        out = subprocess.run(
            [self.cli, "--raw", "-h", host, "-p", str(port), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.split()

    def primary_per_sentinels(self) -> set[str]:
        return {" ".join(self.ask(s, "sentinel", "get-master-addr-by-name", PRIMARY_NAME)) for s in SENTINEL_HOSTS}

    def state(self, host: str) -> str:
        """What one pod says of its role, and the end of its log: for a failure's message."""
        log = (self.root / host / "out.log").read_text(errors="replace").splitlines()[-15:]
        return "\n".join([f"{host} role: {' '.join(self.ask(host, 'role'))}", *log])

    def follows(self, replica: str, primary: str) -> bool:
        info = " ".join(self.ask(replica, "info", "replication"))
        return f"master_host:{primary}" in info and "master_link_status:up" in info


def _wait(check: Callable[[], bool], what: str, timeout: float = 20.0, state: Callable[[], str] = lambda: "") -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout * TIMEOUT_FACTOR:
            raise AssertionError(f"timed out waiting for {what}\n{state()}")
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[Pods]:
    pods = Pods(tmp_path, *_two_ports())
    try:
        yield pods
    finally:
        pods.stop_all()


def test_the_set_starts_fails_over_and_takes_the_old_primary_back_as_a_replica(pods: Pods) -> None:
    first, *replicas = REDIS_HOSTS
    for host in REDIS_HOSTS:
        pods.start("redis", host)
    for host in SENTINEL_HOSTS:
        pods.start("sentinel", host)
    # First start: nobody knows a primary, so the first pod is it and the others follow it.
    _wait(lambda: all(pods.follows(r, first) for r in replicas), f"the others to follow {first}")
    _wait(lambda: pods.primary_per_sentinels() == {f"{first} {pods.redis_port}"}, "the sentinels to watch it")
    # Every sentinel knows both peers and both replicas before the primary dies: a vote
    # among sentinels that have not met yet can tie, and the failover waits to be retried.
    _wait(
        lambda: all(
            pods.ask(s, "sentinel", "sentinels", PRIMARY_NAME).count("runid") == 2
            and pods.ask(s, "sentinel", "replicas", PRIMARY_NAME).count("runid") == 2
            for s in SENTINEL_HOSTS
        ),
        "every sentinel to know its peers and the replicas",
    )
    assert pods.ask(first, "config", "get", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
    assert pods.ask(first, "set", "k", "v", "ex", "600") == ["OK"]
    # Replication is asynchronous: the write is on every replica before the primary dies.
    _wait(lambda: all(pods.ask(r, "get", "k") == ["v"] for r in replicas), "the write to reach the replicas")

    pods.kill(first)

    def agreed_primary() -> str | None:
        """The replica every sentinel names as the primary, if they agree on one."""
        named = pods.primary_per_sentinels()
        host = next(iter(named)).split()[0] if len(named) == 1 else None
        return host if host in replicas else None

    _wait(lambda: agreed_primary() is not None, "a replica to be promoted", timeout=40.0)
    assert pods.ask(agreed_primary() or "", "get", "k") == ["v"]  # replicated before the kill

    # The old primary starts again: the sentinels name the new one, which it follows. The first
    # sync can wait for one in flight to the other replica, each after the primary's diskless
    # delay (5 s); a pod that found no primary starts as one until the sentinels turn it
    # into a replica (8 s after it says so): hence the longer wait. The primary is asked of the
    # sentinels at each look: a vote that tied while the first primary was down is retried at a
    # higher epoch, and when it wins it can promote the other replica after the first promotion.
    pods.start("redis", first)
    _wait(
        lambda: (primary := agreed_primary()) is not None and pods.follows(first, primary),
        "the old primary to follow the one the sentinels name",
        timeout=40.0,
        state=lambda: "\n".join([str(pods.primary_per_sentinels()), *(pods.state(h) for h in REDIS_HOSTS)]),
    )
    assert pods.ask(first, "role")[0] == "slave"
    assert pods.ask(first, "get", "k") == ["v"]
    # A sentinel started afresh asks its peers rather than assume the first pod.
    pods.kill(SENTINEL_HOSTS[0])
    pods.start("sentinel", SENTINEL_HOSTS[0])
    _wait(lambda: agreed_primary() is not None, "the new sentinel to watch the primary the others name")
