"""Where the handshake carries its bearer token (pure helpers): never in the URL.

Two places, one per kind of client:

* ``Authorization: Bearer <token>``, for every client that can set headers;
* the subprotocol list, for browsers (whose WebSocket API sets no header but offers
  subprotocols): ``new WebSocket(url, ["geo.v1", "bearer." + token])`` sends
  ``Sec-WebSocket-Protocol: geo.v1, bearer.<token>``, and the server selects
  :data:`SUBPROTOCOL` in its answer, so the token is never echoed. A compact JWT is
  base64url and dots, all valid in a subprotocol name.

A ``?token=`` query is refused even beside a valid header: URLs are written to access logs
(nginx logs the request line), so a client sending one must be fixed, not served.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import MultiMapping

from geo_common.tokens import TokenError, bearer_token

#: The subprotocol the server selects: the version of the frames in docs/friends-protocol.md.
SUBPROTOCOL = "geo.v1"
#: The prefix of the subprotocol that carries the token.
BEARER_PREFIX = "bearer."

_PROTOCOL_HEADER = "Sec-WebSocket-Protocol"
_USE = f"send Authorization: Bearer <token>, or offer the subprotocols {SUBPROTOCOL} and {BEARER_PREFIX}<token>"


def handshake_token(headers: MultiMapping[str], query: Mapping[str, str]) -> str:
    """The bearer token of a WebSocket handshake, from its header or its subprotocols.

    Args:
        headers: the request headers.
        query: the query parameters.

    Returns:
        The token, not verified yet.

    Raises:
        TokenError: a token in the URL, none at all, two of them, or a bearer subprotocol
            offered without :data:`SUBPROTOCOL`; the message says what to send instead.
    """
    if "token" in query:
        raise TokenError(f"a token in the URL is refused (URLs are logged): {_USE}")
    offered = [p.strip() for line in headers.getall(_PROTOCOL_HEADER, ()) for p in line.split(",")]
    bearers = [p for p in offered if p.startswith(BEARER_PREFIX)]
    authorization = headers.get("Authorization")
    if authorization is not None:
        if bearers:
            raise TokenError(f"send the token once, not both in Authorization and in a subprotocol: {_USE}")
        return bearer_token(authorization)
    if not bearers:
        raise TokenError(f"missing token: {_USE}")
    if len(bearers) > 1:
        raise TokenError(f"offer one {BEARER_PREFIX}<token> subprotocol, not {len(bearers)}")
    # aiohttp selects from the first header line only, and logs that line when nothing in
    # it is known: geo.v1 must be there, or the token would be written to the log.
    first = [p.strip() for p in (headers.get(_PROTOCOL_HEADER) or "").split(",")]
    if SUBPROTOCOL not in first:
        raise TokenError(f"offer the subprotocol {SUBPROTOCOL} with {BEARER_PREFIX}<token>, in one header")
    token = bearers[0].removeprefix(BEARER_PREFIX)
    if not token:
        raise TokenError(f"missing token after {BEARER_PREFIX}: {_USE}")
    return token
