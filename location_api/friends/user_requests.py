"""What every ``/v1/users/{id}/...`` request carries, validated: the user ids of its path,
the caller (the user themself or an admin), a JSON object body; and the answer to a write.

Only the token's subject or an admin may act for a user (``403`` otherwise, ``401`` without
a valid token). Ids are checked before the token, so a malformed path is a ``400`` whoever
asks; the token is checked before the body, so nobody learns what a body would have done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from geo_common.tokens import MAX_USER_ID, Identity, Role
from location_api.auth import caller
from location_api.errors import FieldError, Forbidden, InvalidBody, InvalidRequest
from location_api.consistency import CONSISTENCY_HEADER, issue_token, read_token
from location_api.keys import settings_key
from location_api.views import json_response


def path_user_id(request: web.Request, name: str) -> int:
    """The user id in the path parameter ``name``: a whole number from 1 to :data:`MAX_USER_ID`.

    Raises:
        InvalidRequest: naming ``name``.
    """
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_USER_ID:
        raise InvalidRequest.field(name, f"must be a user id (a whole number from 1 to {MAX_USER_ID})")
    return int(raw)


def acting_for(request: web.Request, user_id: int) -> Identity:
    """The caller, who must be the user ``user_id`` or an admin.

    Raises:
        NotAuthenticated: no bearer token, or a malformed, badly signed or expired one.
        Forbidden: a valid token of another user (and not an admin).
    """
    identity = caller(request)
    if identity.user_id != user_id and identity.role is not Role.ADMIN:
        raise Forbidden(f"only user {user_id} or an admin may do this")
    return identity


def json_fields(body: bytes, known: tuple[str, ...]) -> dict[str, Any]:
    """A body that must be a JSON object with exactly the fields ``known`` (all required).

    Returns:
        The object; its values are the caller's to check.

    Raises:
        InvalidBody: not JSON, not an object, or naming each field that is unknown or missing.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidBody("the body is not valid JSON", [FieldError("body", "is not valid JSON")]) from None
    if not isinstance(document, dict):
        raise InvalidBody("the body must be a JSON object", [FieldError("body", "must be a JSON object")])
    errors = [FieldError(n, f"unknown field; known: {', '.join(known)}") for n in document if n not in known]
    errors += [FieldError(n, "is required") for n in known if n not in document]
    if errors:
        raise InvalidBody("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return document


def written(
    request: web.Request,
    data: Mapping[str, Any],
    lsn: int,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The JSON answer to a write, with the signed ``X-Consistency-Token`` a later read sends back."""
    token = issue_token(request.app[settings_key].jwt_secret, lsn)
    return json_response(data, status=status, headers={CONSISTENCY_HEADER: token, **(headers or {})})


def consistency_of(request: web.Request) -> int | None:
    """The WAL position of the ``X-Consistency-Token`` a read sent back (None: none sent).

    Raises:
        InvalidRequest: naming the header, for any value this API did not issue.
    """
    return read_token(request.headers, request.app[settings_key].jwt_secret)
