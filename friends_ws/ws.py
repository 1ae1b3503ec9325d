"""The WebSocket endpoint ``GET /v1/friends/ws``: who may open a connection.

Before the upgrade, a handshake is refused as plain HTTP (then the connection closes) when
the instance drains (503, :mod:`friends_ws.drain`), without a valid token (401: the token
comes in ``Authorization`` or in the ``bearer.`` subprotocol, never in the URL, see
:mod:`friends_ws.auth`), beyond the user's socket cap (429), or when it is no WebSocket
handshake (400). The connection itself is :mod:`friends_ws.connection`: frames over 4 KiB
close it with 1009; one that stops answering pings is dropped by the hub's keepalive loop;
one whose token expires is closed with 4001 by :class:`~friends_ws.lifetimes.TokenLifetimes`.
"""

from __future__ import annotations

import logging
import math

from aiohttp import web

from friends_ws.auth import handshake_token
from friends_ws.drain import Drain
from friends_ws.handshake import Head
from friends_ws.services import Services
from friends_ws.verifier import Verified
from geo_common.database import DatabaseUnavailable
from geo_common.provider_keys import KeysUnavailable
from geo_common.settings import Settings
from geo_common.tokens import TokenError

log = logging.getLogger(__name__)

#: Largest client message, bytes.
MAX_FRAME = 4096


async def admit(head: Head, services: Services, settings: Settings, drain: Drain) -> Verified:
    """The verified token of a handshake the instance takes, its socket counted
    (:meth:`friends_ws.limits.Limits.release` it when the connection ends).

    Raises:
        web.HTTPException: the refusal to answer (503, 401, 429).
    """
    stats = services.stats
    if drain.draining:
        stats.refused["draining"] += 1
        raise web.HTTPServiceUnavailable(
            text="this instance is shutting down; reconnect (to another)\n", headers={"Retry-After": "1"}
        )
    try:
        verified = await services.verifier.verify(handshake_token(head.headers, head.query))
    except (KeysUnavailable, DatabaseUnavailable) as exc:
        # The token may be fine: what checks it is briefly away.
        stats.refused["unavailable"] += 1
        log.warning("cannot verify a token now: %s", exc)
        retry_s = math.ceil(max(1.0, settings.breaker_reset_s))
        raise web.HTTPServiceUnavailable(
            text=f"cannot verify tokens right now; retry after {retry_s} s\n", headers={"Retry-After": str(retry_s)}
        ) from None
    except TokenError as exc:
        stats.refused["unauthorized"] += 1
        raise web.HTTPUnauthorized(text=f"{exc}\n", headers={"WWW-Authenticate": 'Bearer realm="geo"'}) from None
    limits = services.limits
    if not limits.admit(verified.user_id):
        stats.refused["too_many_sockets"] += 1
        # A dead connection of the user's (a phone that changed networks) is dropped within
        # 1.5 ping intervals, so retrying after that finds its place free.
        retry_s = math.ceil(1.5 * settings.ws_ping_interval_s)
        raise web.HTTPTooManyRequests(
            text=f"at most {limits.max_sockets} connections per user; close one, or retry after {retry_s} s\n",
            headers={"Retry-After": str(retry_s)},
        )
    return verified


async def not_first(request: web.Request) -> web.StreamResponse:
    """``/v1/friends/ws`` reached through aiohttp: a handshake on a connection that carried
    another request first (geo-friends takes a WebSocket only as a connection's first request,
    :mod:`friends_ws.site`), or a method other than GET."""
    if request.method != "GET":
        raise web.HTTPMethodNotAllowed(request.method, ["GET"], text="open the WebSocket with GET\n")
    raise web.HTTPBadRequest(
        text="open the WebSocket as the first request of a new connection (not on a kept-alive one)\n"
    )
