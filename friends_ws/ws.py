"""The WebSocket endpoint ``GET /v1/friends/ws``: authenticate, then pump frames.

The handler is a thin adapter: it refuses a bad token with a plain HTTP 401 before the
upgrade, then hands every text frame to the session and lets it decide what to send.
Oversized frames (over 4 KiB) are closed by aiohttp with 1009; a connection that stops
answering pings is dropped by the hub's keepalive loop.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from friends_ws.auth import identify
from friends_ws.db import DatabaseUnavailable
from friends_ws.keys import services_key, settings_key
from friends_ws.session import Session
from geo_common.tokens import TokenError
from pubsub import PubSubError

log = logging.getLogger(__name__)

#: Largest client frame, bytes.
MAX_FRAME = 4096


async def friends_ws(request: web.Request) -> web.StreamResponse:
    """Serve one client: ``Authorization: Bearer <token>`` (or ``?token=``) required."""
    settings = request.app[settings_key]
    try:
        identity = identify(settings.jwt_secret, request.headers, request.query)
    except TokenError as exc:
        raise web.HTTPUnauthorized(text=f"{exc}\n", headers={"WWW-Authenticate": 'Bearer realm="geo"'}) from None
    # Pings are sent by the hub's keepalive loop (one loop for every connection, not a timer
    # and a task each), so aiohttp's heartbeat is off and pongs reach the loop below.
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, autoping=False, compress=False, timeout=5.0)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the client went away during the upgrade
        return ws
    services = request.app[services_key]
    services.hub.stats.connections_total += 1
    session = Session(services, ws, transport, identity.user_id)
    try:
        try:
            await session.open()
        except (DatabaseUnavailable, PubSubError, OSError) as exc:
            log.warning("user %d: cannot open a session: %s", identity.user_id, exc)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"service unavailable")
            return ws
        loop = asyncio.get_running_loop()
        async for message in ws:
            session.seen(loop.time())
            kind = message.type
            if kind is WSMsgType.TEXT:
                await session.receive(message.data)
            elif kind is WSMsgType.BINARY:
                session.reject_binary()
            elif kind is WSMsgType.PING:
                session.pong(message.data)
            del message  # an idle connection holds no old frame while it waits
    finally:
        await session.close()
    return ws
