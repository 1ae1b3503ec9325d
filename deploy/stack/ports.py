"""Who holds a port, and whether the server answering on one is a process this run started.

``geo-stack run`` must not take a stranger's answer for its own child's: a second run would
otherwise see the first run's server answer ``/healthz`` and call its own child ready. The
kernel says who listens: ``/proc/net/tcp`` and ``tcp6`` map a port to socket inodes, and
``/proc/<pid>/fd`` maps each inode to the processes that hold it. Linux only, like the rest of
the stack; processes of other users are unreadable without root, and are then "another process".
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from deploy.stack.procs import StackError

_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_LISTEN = "0A"  # the TCP_LISTEN state in /proc/net/tcp
_COMMAND_CHARS = 120
_NOTHING = " (nothing was started)"
#: Seconds a service may take to answer after it is started: a read instance builds its
#: indexes before it listens. A child that exits is noticed at once, whatever this is.
START_TIMEOUT_S = 240.0


@dataclass(frozen=True, slots=True)
class Wanted:
    """A port a command is about to serve on.

    Args:
        what: what will listen there, for messages ("the HTTP API", "nginx").
        host: the address it binds.
        port: the port.
        hint: how to serve elsewhere ("pass another --entry-port"), for refusals.
    """

    what: str
    host: str
    port: int
    hint: str


def check_free(wanted: Sequence[Wanted]) -> None:
    """Refuse, before anything starts, when one of the ports cannot be served on.

    Each port is bound and released here as the server would bind it (``SO_REUSEADDR``, so
    connections of a previous server still closing do not count).

    Args:
        wanted: every port the command will serve on.

    Raises:
        StackError: two servers would share a port, a port is taken (the message names the
            process holding it), or it cannot be bound at all (address not local, privileged).
    """
    seen: dict[int, str] = {}
    for w in wanted:
        if w.port in seen:
            raise StackError(f"{seen[w.port]} and {w.what} would both listen on port {w.port}; {w.hint}{_NOTHING}")
        seen[w.port] = w.what
    taken = []
    for w in wanted:
        error = _bind_error(w.host, w.port)
        if error is None:
            continue
        if error.errno != errno.EADDRINUSE:
            reason = error.strerror or str(error)
            raise StackError(f"{w.what} cannot listen on {w.host}:{w.port}: {reason}{_NOTHING}")
        taken.append(w)
    if taken:
        first = taken[0]
        also = f" (also taken: {', '.join(str(w.port) for w in taken[1:])})" if len(taken) > 1 else ""
        raise StackError(
            f"port {first.port} for {first.what} is taken by {holder(first.host, first.port)}{also}; "
            f"stop it, or {first.hint}{_NOTHING}"
        )


def _bind_error(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:  # socket.gaierror (an unknown host) included
            return exc
    return None


def holder(host: str, port: int) -> str:
    """The process holding ``host:port``, as ``pid N (command)``, or ``another process`` when unknown."""
    pids = holders(host, port)
    return describe(pids[0]) if pids else "another process"


def holders(host: str, port: int) -> list[int]:
    """The pids holding a socket bound to ``port`` on ``host`` (or on every address), the one
    that started the others first.

    Listening sockets count before others (a port can also be taken by a bound or connected
    socket). Of processes sharing one socket (nginx's master and workers, forked workers),
    those whose parent also holds it come last.

    Returns:
        The pids; empty when the sockets are in no process this user can read.
    """
    table = _sockets(host, port)
    if not table:
        return []
    listening = {inode for inode, listens in table.items() if listens}
    inodes = listening or set(table)
    pids = [pid for pid in _all_pids() if _socket_inodes([pid]) & inodes]
    held = set(pids)
    return sorted(pids, key=lambda pid: (_parent(pid) in held, pid))


def describe(pid: int) -> str:
    """``pid N (command line)``: the program's name and arguments, shortened to one line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    # One line whatever the arguments hold; a program that rewrites its title (nginx: master
    # process ...) has no NUL separators, so only a first word that is a path is shortened.
    words = " ".join(a.decode(errors="replace") for a in argv).split()
    if words:
        words[0] = os.path.basename(words[0]) or words[0]
        command = " ".join(words)
    else:
        try:
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return f"pid {pid}"
    if len(command) > _COMMAND_CHARS:
        command = command[: _COMMAND_CHARS - 3] + "..."
    return f"pid {pid} ({command})"


def serving(port: int, pid: int, health_url: str) -> bool:
    """Whether the process ``pid`` started is the server answering ``health_url`` on ``port``.

    True only when the URL answers 200 and every socket listening on the port is held by
    ``pid`` or one of its descendants: the answer then came from ``pid``'s tree and nowhere
    else. Cheap while the server starts: ``/proc`` is read only once the URL answers.

    Args:
        port: the port the server was told to listen on.
        pid: the process this command started.
        health_url: its ``/healthz``.

    Returns:
        False while nothing answers yet, or answers while no socket listens (it just closed).

    Raises:
        StackError: something else listens on the port (the message names it): the process
            this command started will not get the port.
    """
    if not answers(health_url):
        return False
    host = urlsplit(health_url).hostname or "127.0.0.1"
    listening = {inode for inode, listens in (_sockets(host, port) or {}).items() if listens}
    if not listening:
        return False
    # The process itself holds the socket, unless it handed serving to processes it forked.
    if listening <= _socket_inodes([pid]) or listening <= _socket_inodes(_tree(pid)):
        return True
    raise StackError(f"port {port} is answered by {holder(host, port)}, not by the process this command started")


def answers(url: str) -> bool:
    """True when a GET of ``url`` answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback URL
            return bool(resp.status == 200)
    except OSError:
        return False


def _sockets(host: str, port: int) -> dict[int, bool] | None:
    """Inode -> listening, of every TCP socket bound to ``port`` on an address that receives
    connections to ``host`` (itself, or every address); None when no table is readable."""
    try:
        wanted: ipaddress.IPv4Address | ipaddress.IPv6Address | None = _plain(ipaddress.ip_address(host))
    except ValueError:  # a name: any address may be one of its
        wanted = None
    if wanted is not None and wanted.is_unspecified:
        wanted = None
    found: dict[int, bool] = {}
    readable = False
    for table in _TCP_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(fields) < 10:
                continue
            address, _, port_hex = fields[1].partition(":")
            if int(port_hex, 16) != port:
                continue
            bound = _address(address)
            if wanted is not None and not bound.is_unspecified and bound != wanted:
                continue
            inode = int(fields[9])
            if inode:  # 0: a socket no process holds any more (TIME_WAIT)
                found[inode] = found.get(inode, False) or fields[3] == _LISTEN
    return found if readable else None


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in the host's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return _plain(ipaddress.ip_address(words))


def _plain(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 address mapped into IPv6 (``::ffff:127.0.0.1``) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _socket_inodes(pids: Iterable[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _tree(pid: int) -> set[int]:
    """``pid`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for other in _all_pids():
        parent = _parent(other)
        if parent is not None:
            children.setdefault(parent, []).append(other)
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in tree:
            tree.add(current)
            todo += children.get(current, [])
    return tree
