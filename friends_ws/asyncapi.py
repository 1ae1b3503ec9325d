"""``GET /asyncapi.json``: the AsyncAPI 3.0 description of the nearby-friends protocol.

Every frame of docs/friends-protocol.md, client's and server's, as a message with a JSON
Schema payload (the draft-07 subset AsyncAPI's schema format extends) and an example. The
client's are the operations the server *receives*, the server's those it *sends* (AsyncAPI
speaks from the application's side). Server frames are closed (``additionalProperties:
false``), so a field added without being described fails the conformance test
(``tests/friends_ws/test_asyncapi.py``), which sends every client frame to a real server and
validates every frame it answers against this document. Client frames are open: the server
ignores fields it does not know. Bounds that are settings (the radius) come from the
instance's settings, as ``/openapi.json`` on geo-api does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from aiohttp import web

from friends_ws.auth import BEARER_PREFIX, SUBPROTOCOL
from friends_ws.keys import settings_key
from friends_ws.asyncapi_messages import client_messages, ref, schemas, server_messages
from friends_ws.protocol import SIGNED_OUT, TOKEN_EXPIRED
from friends_ws.ws import MAX_FRAME
from geo_common.request_context import MAX_REQUEST_ID_CHARS, REQUEST_ID_HEADER

#: The channel every frame travels on: the one WebSocket endpoint.
CHANNEL = "friends"

_CLOSE_CODES = f"""\
| close code | when |
|---|---|
| 1009 | a message larger than {MAX_FRAME} bytes |
| 1002 | a frame that breaks RFC 6455 (unmasked, reserved bits, unknown opcode, a bad control frame or close code) |
| 1007 | a text message or close reason that is not UTF-8 |
| 1013 | the client reads too slowly (GEO_WS_QUEUE_SIZE frames wait), or the session could not be opened |
| 1011 | the server failed unexpectedly while opening the session |
| 1001 | the server is shutting down: at the time a `reconnect` frame announced (GEO_WS_DRAIN_S), or at once |
| {TOKEN_EXPIRED} | the token expired and no fresh one came in an `auth` frame |
| {SIGNED_OUT} | the user signed out (`sign_out`) |"""


def _operation(action: str, message: str, summary: str, reply: str | None = None) -> dict[str, Any]:
    channel = {"$ref": f"#/channels/{CHANNEL}"}
    operation: dict[str, Any] = {
        "action": action,
        "channel": channel,
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{message}"}],
    }
    if reply is not None:
        operation["reply"] = {"channel": channel, "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{reply}"}]}
    return operation


@lru_cache(maxsize=8)
def asyncapi_document(min_radius_m: float, max_radius_m: float) -> bytes:
    """The AsyncAPI 3.0 document of the protocol, as JSON bytes.

    Args:
        min_radius_m: the smallest radius a client may set, metres (``GEO_FRIEND_RADIUS_MIN_M``).
        max_radius_m: the largest, metres (``GEO_FRIEND_RADIUS_MAX_M``).

    Returns:
        The document.
    """
    client, server = client_messages(), server_messages()
    operations = {
        f"receive_{name}": _operation("receive", name, message["summary"], reply)
        for (name, message), reply in zip(
            client.items(),
            (None, None, "settingsApplied", "sharingApplied", "discoverApplied", "authAccepted"),
            strict=True,
        )
    }
    operations.update(
        {f"send_{name}": _operation("send", name, message["summary"]) for name, message in server.items()}
    )
    return orjson.dumps(
        {
            "asyncapi": "3.0.0",
            "info": {
                "title": "geo nearby friends (geo-friends)",
                "version": "1.0.0",
                "description": "Which of a user's friends are near, live, over one WebSocket: JSON text frames "
                "(UTF-8), degrees (WGS84), metres, Unix milliseconds. docs/friends-protocol.md explains each "
                "frame with examples.",
            },
            "defaultContentType": "application/json",
            "servers": {
                "local": {
                    "host": "127.0.0.1:8081",
                    "protocol": "ws",
                    "description": "make run (behind nginx in production: wss, the same path)",
                    "security": [ref("securitySchemes", "bearer"), ref("securitySchemes", "subprotocol")],
                }
            },
            "channels": {
                CHANNEL: {
                    "address": "/v1/friends/ws",
                    "title": "the nearby-friends connection",
                    "description": "A handshake without a valid token is refused as plain HTTP: 401 (no, a "
                    "malformed or an expired token, or one in the URL), 429 (too many connections of the user, "
                    "Retry-After), 503 (tokens cannot be checked now, Retry-After). The answer, 101 included, "
                    f"carries the request's id in {REQUEST_ID_HEADER}. Rate limits: location "
                    "GEO_WS_MAX_UPDATES_PER_S, settings/sharing/auth together GEO_WS_MAX_MESSAGES_PER_S; a frame "
                    "over its limit is answered with error rate_limited and not applied.\n\n" + _CLOSE_CODES,
                    "messages": {name: ref("messages", name) for name in (*client, *server)},
                    "bindings": {
                        "ws": {
                            "method": "GET",
                            "headers": {
                                "type": "object",
                                "properties": {
                                    "Authorization": {"type": "string", "pattern": "^Bearer "},
                                    "Sec-WebSocket-Protocol": {
                                        "type": "string",
                                        "description": f"browsers: {SUBPROTOCOL}, {BEARER_PREFIX}<token>",
                                    },
                                    REQUEST_ID_HEADER: {
                                        "type": "string",
                                        "pattern": f"^[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_CHARS}}}$",
                                    },
                                },
                            },
                            "bindingVersion": "0.1.0",
                        }
                    },
                }
            },
            "operations": operations,
            "components": {
                "schemas": schemas(min_radius_m, max_radius_m),
                "messages": {**client, **server},
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "Authorization: Bearer <token> on the handshake (never ?token= in the URL)",
                    },
                    "subprotocol": {
                        "type": "httpApiKey",
                        "in": "header",
                        "name": "Sec-WebSocket-Protocol",
                        "description": f"for browsers: the subprotocols {SUBPROTOCOL} and {BEARER_PREFIX}<token>; "
                        f"the server selects {SUBPROTOCOL}",
                    },
                },
            },
        }
    )


async def serve_asyncapi(request: web.Request) -> web.Response:
    """``GET /asyncapi.json``: the document of the protocol this instance speaks (its radius bounds)."""
    settings = request.app[settings_key]
    body = asyncapi_document(settings.friend_radius_min_m, settings.friend_radius_max_m)
    return web.Response(body=body, content_type="application/json")
