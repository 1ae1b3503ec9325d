"""Who may write: a bearer token (HS256, ``geo-token``) with the role owner or admin."""

from __future__ import annotations

from aiohttp import web

from geo_common.tokens import Identity, Role, TokenError, bearer_token, verify_token
from location_api.errors import Forbidden, NotAuthenticated

WRITER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


def require_writer(request: web.Request, secret: str) -> Identity:
    """Check that a request carries a valid token allowed to write businesses.

    Args:
        request: the request; its ``Authorization`` header is read.
        secret: the HS256 key.

    Returns:
        The caller.

    Raises:
        NotAuthenticated: the header is missing, or the token is malformed, badly signed or expired.
        Forbidden: the token is valid but its role is not owner or admin.
    """
    try:
        identity = verify_token(secret, bearer_token(request.headers.get("Authorization")))
    except TokenError as exc:
        raise NotAuthenticated(str(exc)) from None
    if identity.role not in WRITER_ROLES:
        raise Forbidden(f"role {identity.role.value!r} may not write businesses; owner or admin is needed")
    return identity
