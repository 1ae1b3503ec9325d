"""Who is connecting: the bearer token of the WebSocket handshake (pure helpers)."""

from __future__ import annotations

from collections.abc import Mapping

from geo_common.tokens import Identity, TokenError, bearer_token, verify_token


def identify(secret: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Identity:
    """The caller of a handshake: ``Authorization: Bearer <token>``, else ``?token=<token>``.

    Browsers cannot set headers on a WebSocket handshake, hence the query parameter. The user
    id is the token's subject; nothing the client sends can choose it.

    Args:
        secret: the HS256 key.
        headers: the request headers.
        query: the query parameters.

    Returns:
        The verified identity.

    Raises:
        TokenError: no token, or a bad one.
    """
    authorization = headers.get("Authorization")
    if authorization is not None:
        return verify_token(secret, bearer_token(authorization))
    token = query.get("token")
    if not token:
        raise TokenError("missing token: send Authorization: Bearer <token> or ?token=<token>")
    return verify_token(secret, token)
