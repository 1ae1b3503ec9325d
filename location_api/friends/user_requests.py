"""What every ``/v1/users/{id}/...`` request carries, validated: the user ids of its path and
the consistency token of a read; and the answer to a write.

Only the token's subject or an admin may act for a user (:func:`location_api.auth.acting_for`:
``403`` otherwise, ``401`` without a valid token). Views check the ids before the token, so a
malformed path is a ``400`` whoever asks, and the token before the body
(:mod:`location_api.bodies`), so nobody learns what a body would have done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from geo_common.tokens import MAX_USER_ID
from location_api.errors import InvalidRequest
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
