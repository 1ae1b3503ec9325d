"""Redis for the stack: one standalone server and a three-node Redis Cluster (no persistence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.stack.binaries import Binaries
from deploy.stack.procs import StackError, cmdline, pid_alive, port_is_free, read_pid, run, terminate, wait_for


@dataclass(frozen=True)
class RedisNode:
    """One redis-server process of the stack."""

    name: str
    directory: Path
    port: int
    cluster: bool = False

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def pid(self) -> int | None:
        pid = read_pid(self.pidfile)
        # Only a process that is our redis-server on our port counts: pids get reused.
        if pid is None or not pid_alive(pid) or f":{self.port}" not in cmdline(pid):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None


def cli(bins: Binaries, port: int, *args: str, check: bool = True) -> str:
    return run([bins.redis_cli, "-h", "127.0.0.1", "-p", str(port), *args], check=check, timeout=30).stdout.strip()


def start(bins: Binaries, node: RedisNode) -> None:
    """Start a node unless it already runs."""
    if node.running():
        return
    if not port_is_free(node.port):
        raise StackError(
            f"port {node.port} for Redis {node.name} is taken by another process; "
            "stop it, or remove .stack (geo-stack down, then rm -rf .stack) to pick new ports"
        )
    node.directory.mkdir(parents=True, exist_ok=True)
    args: list[str | Path] = [
        bins.redis_server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(node.port),
        "--daemonize",
        "yes",
        "--pidfile",
        str(node.pidfile.resolve()),
        "--dir",
        str(node.directory.resolve()),
        "--logfile",
        str((node.directory / "redis.log").resolve()),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    if node.cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000"]
    run(args, timeout=30)
    wait_for(
        lambda: cli(bins, node.port, "ping", check=False) == "PONG",
        f"Redis {node.name} on port {node.port}",
        timeout=15,
    )


def stop(node: RedisNode) -> bool:
    """Stop a node through its pid file. Returns True when it was running."""
    pid = node.pid()
    if pid is None:
        return False
    terminate(pid)
    node.pidfile.unlink(missing_ok=True)
    return True


def cluster_info(bins: Binaries, port: int) -> dict[str, str]:
    out = cli(bins, port, "cluster", "info", check=False)
    info = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cluster_ok(bins: Binaries, nodes: list[RedisNode]) -> bool:
    for node in nodes:
        info = cluster_info(bins, node.port)
        if info.get("cluster_state") != "ok" or info.get("cluster_slots_assigned") != "16384":
            return False
        if info.get("cluster_known_nodes") != str(len(nodes)):
            return False
    return True


def up_cluster(bins: Binaries, nodes: list[RedisNode]) -> None:
    """Start the cluster nodes and, the first time, join them into one cluster covering all slots."""
    for node in nodes:
        start(bins, node)
    if cluster_ok(bins, nodes):
        return
    assigned = cluster_info(bins, nodes[0].port).get("cluster_slots_assigned", "0")
    if assigned == "0":
        run(
            [
                bins.redis_cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{n.port}" for n in nodes],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            timeout=60,
        )
    wait_for(lambda: cluster_ok(bins, nodes), "the Redis Cluster to cover all 16384 slots", timeout=30, interval=0.2)
