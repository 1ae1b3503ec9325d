"""The request a process is handling now: its id, and the sampled access log (both services).

Every HTTP request, and every WebSocket session from its handshake on, gets an id: the
caller's ``X-Request-Id`` when it is a safe one (the nginx in front sends its own
``$request_id``), else a new one. It is answered in ``X-Request-Id``, carried in every problem
document (``instance``) and, through a context variable, on every log line written while the
request is handled (:class:`geo_common.logs.RequestIdFilter`). A caller's value is refused
unless it is 1 to :data:`MAX_REQUEST_ID_CHARS` letters, digits, ``-``, ``_``, ``.`` or ``:``:
it is written into log lines and a header, where a newline or an unbounded length would let
a client forge lines or bloat them.

The access log (``GEO_ACCESS_LOG_SAMPLE``) names a request by its method and route template,
never by its path or query string: a search's query string holds a position, and a path may
hold a user id.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
import secrets
from contextvars import ContextVar

#: The header a request id comes in and is answered in.
REQUEST_ID_HEADER = "X-Request-Id"
#: The longest request id taken from a caller (a UUID is 36 characters, nginx's 32).
MAX_REQUEST_ID_CHARS = 64
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]+")

#: The id of the request being handled, or ``""`` outside one. aiohttp runs each request in a
#: task of its own, so a value set while handling one ends with it.
current_request_id: ContextVar[str] = ContextVar("geo_request_id", default="")

access_log = logging.getLogger("geo.access")


def _fresh_prefix() -> None:
    global _prefix, _serial
    _prefix = secrets.token_hex(6)
    _serial = itertools.count(1)


_prefix = ""
_serial = itertools.count(1)
_fresh_prefix()
# Forked workers (``--workers``) would otherwise hand out the same ids.
os.register_at_fork(after_in_child=_fresh_prefix)


def new_request_id() -> str:
    """A request id no other process or request has: a random prefix drawn once per process
    and a serial number (a counter is cheaper per request than random bytes)."""
    return f"{_prefix}-{next(_serial):x}"


def accept_request_id(raw: str | None) -> str:
    """The caller's request id when it is a safe one, else a new one.

    Args:
        raw: the ``X-Request-Id`` header's value, or None when there is none.

    Returns:
        ``raw`` when it is 1 to :data:`MAX_REQUEST_ID_CHARS` letters, digits, ``-``, ``_``,
        ``.`` or ``:``; otherwise :func:`new_request_id`.
    """
    if raw is not None and len(raw) <= MAX_REQUEST_ID_CHARS and _SAFE_ID.fullmatch(raw):
        return raw
    return new_request_id()


def begin_request(raw: str | None) -> str:
    """Take the request's id (:func:`accept_request_id`) and make it the current one."""
    request_id = accept_request_id(raw)
    current_request_id.set(request_id)
    return request_id


def problem_instance(request_id: str) -> str:
    """The ``instance`` of a problem document answering the request with this id."""
    return f"urn:request:{request_id}"


class AccessLog:
    """Writes one ``geo.access`` line (INFO) for a sample of the requests answered.

    Args:
        sample: the share of requests logged, 0 to 1 (``GEO_ACCESS_LOG_SAMPLE``).
    """

    def __init__(self, sample: float) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be from 0 to 1, got {sample!r}")
        self.sample = sample
        self._random = random.random

    def record(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Log one answered request, if it falls in the sample.

        Args:
            method: the HTTP method.
            route: the route's template (``/v1/businesses/{id}``), never the path itself.
            status: the status answered (101 for a WebSocket, logged when it closes).
            duration_s: how long it took, seconds (for a WebSocket, the session).
        """
        if self.sample < 1.0 and self._random() >= self.sample:
            return
        duration_ms = round(duration_s * 1000.0, 3)
        access_log.info(
            "%s %s %d %.3f ms",
            method,
            route,
            status,
            duration_ms,
            extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms},
        )


def access_log_for(sample: float) -> AccessLog | None:
    """The access log of a service, or None when nothing is sampled (no cost per request)."""
    return AccessLog(sample) if sample > 0.0 else None
