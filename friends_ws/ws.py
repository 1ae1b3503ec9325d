"""The WebSocket endpoint ``GET /v1/friends/ws``: authenticate, then pump frames.

The handler is a thin adapter. Before the upgrade it refuses, as plain HTTP, a handshake
without a valid token (401: the token comes in ``Authorization`` or in the ``bearer.``
subprotocol, never in the URL, see :mod:`friends_ws.auth`), one beyond the user's socket
cap (429), and any while the instance drains (503, :mod:`friends_ws.drain`). Then it hands
every text frame to the session and lets it decide what to send.
Oversized frames (over 4 KiB) are closed by aiohttp with 1009; a connection that stops
answering pings is dropped by the hub's keepalive loop; one whose token expires is closed
with 4001 by :class:`~friends_ws.lifetimes.TokenLifetimes`.
"""

from __future__ import annotations

import asyncio
import logging
import math

from aiohttp import WSCloseCode, WSMsgType, web

from friends_ws.auth import SUBPROTOCOL, handshake_token
from friends_ws.hub import Hub
from friends_ws.keys import drain_key, edge_key, hub_key, services_key, settings_key
from friends_ws.link import Link
from friends_ws.services import Services
from friends_ws.session import Session
from friends_ws.verifier import Verified
from geo_common.database import DatabaseUnavailable
from geo_common.provider_keys import KeysUnavailable
from geo_common.tokens import TokenError
from pubsub import PubSubError

log = logging.getLogger(__name__)

#: Largest client frame, bytes.
MAX_FRAME = 4096


async def friends_ws(request: web.Request) -> web.StreamResponse:
    """Serve one client: a bearer token in ``Authorization`` or in the subprotocols required.

    The request's id and its sampled access line (when the session ends) come from the app's
    edge (:mod:`friends_ws.edge`), entered here rather than in a wrapper whose frame would
    live as long as the socket.
    """
    with request.app[edge_key].answering(request) as answering:
        services = request.app[services_key]
        stats = services.stats
        settings = request.app[settings_key]
        if request.app[drain_key].draining:
            stats.refused["draining"] += 1
            raise web.HTTPServiceUnavailable(
                text="this instance is shutting down; reconnect (to another)\n", headers={"Retry-After": "1"}
            )
        try:
            verified = await services.verifier.verify(handshake_token(request.headers, request.query))
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
        try:
            response = await _serve(request, services, request.app[hub_key], verified)
        finally:
            limits.release(verified.user_id)
        answering.status = response.status
        return response


async def _serve(request: web.Request, services: Services, hub: Hub, verified: Verified) -> web.StreamResponse:
    # Pings are sent by the hub's keepalive loop (one loop for every connection, not a timer
    # and a task each), so aiohttp's heartbeat is off and pongs reach the loop below. The
    # subprotocol selected is geo.v1 when offered: never the offered bearer.<token>.
    ws = web.WebSocketResponse(
        max_msg_size=MAX_FRAME, autoping=False, compress=False, timeout=5.0, protocols=(SUBPROTOCOL,)
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the client went away during the upgrade
        return ws
    hub.stats.connections_total += 1
    user_id = verified.user_id
    # The link writes; the session decides what to write. The hub's loops flush and ping the link.
    link = Link(
        ws,
        transport,
        schedule=hub.flush.schedule,
        stats=hub.stats,
        user_id=user_id,
        queue_size=services.config.queue_size,
    )
    session = Session(services, link, user_id)
    services.lifetimes.watch(session, verified.expires_at)
    hub.keepalive.add(link)
    try:
        try:
            await session.open()
        except (DatabaseUnavailable, PubSubError, OSError) as exc:
            log.warning("user %d: cannot open a session: %s", user_id, exc)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"service unavailable")
            return ws
        loop = asyncio.get_running_loop()
        async for message in ws:
            link.seen(loop.time())
            kind = message.type
            if kind is WSMsgType.TEXT:
                await session.receive(message.data)
            elif kind is WSMsgType.BINARY:
                session.reject_binary()
            elif kind is WSMsgType.PING:
                link.pong(message.data)
            del message  # an idle connection holds no old frame while it waits
    finally:
        hub.keepalive.discard(link)
        await session.close(handed_over=link.handed_over)
    return ws
