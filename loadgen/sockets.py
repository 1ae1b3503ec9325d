"""One simulated client's WebSocket to ``geo-friends``: opening it, waiting beside its reader,
and the backoff between failed attempts.

The scenarios that connect clients (:mod:`loadgen.friends`, :mod:`loadgen.strangers`) open
every socket here, so each counts a failed attempt the same way (``errors`` and
``connect_error_<exception>``) and times a successful one (``connect``).
"""

from __future__ import annotations

import asyncio

import websockets
from websockets.asyncio.client import ClientConnection, connect

from loadgen.clock import MIN_SLEEP_S, now
from loadgen.stats import Recorder
from loadgen.targets import FRIENDS_WS_ROUTE

#: Opening a connection gives up after this long (or at the window's end), seconds.
CONNECT_TIMEOUT_S = 10.0
#: Closing one at the end waits this long for the server's close frame, then drops it.
CLOSE_TIMEOUT_S = 2.0
#: Reconnection backoff after failed attempts: the first wait and the longest, seconds.
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0


def ws_url(base: str) -> str:
    """The socket's URL on the tier at ``base`` (``ws://host:port``)."""
    return f"{base.rstrip('/')}{FRIENDS_WS_ROUTE}"


async def open_socket(url: str, token: str, until: float, recorder: Recorder) -> ClientConnection | None:
    """A new connection as the user ``token`` names, or None when it failed (counted) or
    ``until`` (a :func:`~loadgen.clock.now` time) came meanwhile."""
    t0 = now()
    try:
        ws = await connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=min(CONNECT_TIMEOUT_S, max(until - t0, MIN_SLEEP_S)),
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=2**16,
            compression=None,
        )
    except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
        if now() < until:  # an attempt the window's end cut short is not the server's failure
            recorder.count("errors")
            recorder.count(f"connect_error_{type(exc).__name__}")
        return None
    recorder.record("connect", now() - t0)
    return ws


async def until_or_closed(deadline: float, reader: asyncio.Task[None]) -> bool:
    """Sleep until :func:`~loadgen.clock.now` reaches ``deadline``, unless ``reader`` (the
    task reading the socket) ends first: then False."""
    while not reader.done():
        left = deadline - now()
        if left <= 0:
            return True
        await asyncio.wait((reader,), timeout=max(left, MIN_SLEEP_S))
    return False


def backoff_s(failures: int) -> float:
    """How long a client waits after ``failures`` failed connection attempts in a row: 0.2 s,
    doubling, at most 5 s (so that a server coming back is not met by every client at once)."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** max(0, failures - 1))
