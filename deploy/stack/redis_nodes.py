"""Redis for the stack: one standalone server and a three-node Redis Cluster (no persistence).

A node may also require a login (a password for the default user, more ACL users) and serve
TLS only: the tests start such nodes to check that every client logs in and verifies the
server. Passwords and users go into a configuration file of the node's own (readable by its
owner only), never on the command line, where any local user could read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack.binaries import Binaries
from deploy.stack.procs import StackError, cmdline, pid_alive, port_is_free, read_pid, run, terminate, wait_for


@dataclass(frozen=True)
class RedisTls:
    """The TLS files of a node (PEM): its certificate and key, and the CA that signed them,
    which clients check the certificate against."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class RedisNode:
    """One redis-server process of the stack.

    Attributes:
        name: for messages.
        directory: its working folder (pid file, log, configuration).
        port: where it listens (with ``tls``, for TLS connections only).
        cluster: a Redis Cluster node.
        password: the default user's password (``requirepass``; None: none), which the
            stack's own ``redis-cli`` calls log in with.
        users: more ACL users, one ``user`` directive each (``"geo on >pw ~* &* +@all"``).
        tls: serve TLS only, with these files (clients need no certificate of their own).
    """

    name: str
    directory: Path
    port: int
    cluster: bool = False
    password: str | None = field(default=None, repr=False)
    users: tuple[str, ...] = field(default=(), repr=False)
    tls: RedisTls | None = None

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


def cli(bins: Binaries, node: RedisNode, *args: str, check: bool = True) -> str:
    """Run ``redis-cli`` against a node (logged in, over TLS when it serves TLS); its output."""
    where = ["-h", "127.0.0.1", "-p", str(node.port)]
    return run([bins.redis_cli, *where, *_cli_login(node), *args], check=check, timeout=30).stdout.strip()


def _cli_login(node: RedisNode) -> list[str]:
    """``redis-cli``'s options to log in to a node and reach it over TLS when it serves TLS."""
    login = []
    if node.password is not None:
        # REDISCLI_AUTH would keep it out of the process list, but run() takes no environment;
        # these are throwaway nodes of the tests (the stack's own have no password).
        login += ["--no-auth-warning", "-a", node.password]
    if node.tls is not None:
        login += ["--tls", "--cacert", str(node.tls.ca)]
    return login


def _write_config(node: RedisNode) -> Path:
    """The node's secrets and TLS files as a configuration file only its owner may read."""
    lines = []
    if node.password is not None:
        lines.append(f"requirepass {node.password}")
    lines += [f"user {rule}" for rule in node.users]
    if node.tls is not None:
        lines += [
            "port 0",
            f"tls-port {node.port}",
            f"tls-cert-file {node.tls.cert.resolve()}",
            f"tls-key-file {node.tls.key.resolve()}",
            f"tls-ca-cert-file {node.tls.ca.resolve()}",
            "tls-auth-clients no",
        ]
        if node.cluster:
            lines += ["tls-cluster yes", "tls-replication yes"]
    else:
        lines.append(f"port {node.port}")
    path = node.directory / "redis.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(f"{line}\n" for line in lines))
    return path


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
        _write_config(node).resolve(),
        "--bind",
        "127.0.0.1",
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
        # A replica (the location set's) is sent its copy at once: no second one to wait for.
        "--repl-diskless-sync-delay",
        "0",
    ]
    if node.cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000"]
    run(args, timeout=30)
    wait_for(
        lambda: cli(bins, node, "ping", check=False) == "PONG",
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


def cluster_info(bins: Binaries, node: RedisNode) -> dict[str, str]:
    out = cli(bins, node, "cluster", "info", check=False)
    info = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cluster_ok(bins: Binaries, nodes: list[RedisNode]) -> bool:
    for node in nodes:
        info = cluster_info(bins, node)
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
    assigned = cluster_info(bins, nodes[0]).get("cluster_slots_assigned", "0")
    if assigned == "0":
        run(
            [
                bins.redis_cli,
                *_cli_login(nodes[0]),  # the nodes share their login and TLS
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
