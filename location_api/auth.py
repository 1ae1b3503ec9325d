"""Who is calling: the request's bearer token, verified once before its view runs.

The route table (:class:`location_api.handling.RouteTable`) awaits :func:`authenticate` for
every request that carries an ``Authorization`` header, and only for those: an anonymous
search pays one header lookup. :func:`authenticate` verifies the token with the app's
:class:`~geo_common.identity.Authenticator` (a local ``geo-token`` token or an identity
provider's, whose subject may be mapped to a user id on the primary the first time it is
seen) and files the outcome on the request, a caller or the error a view will answer with.
It never raises for a bad token, so a route that needs no caller (a search) serves a request
whatever its header holds. Views then ask synchronously who may do what, all here:
:func:`caller` (anyone with a valid token), :func:`require_writer` (owners and admins),
:func:`acting_for` (the user themself or an admin) and :func:`require_admin` (admins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from geo_common.database import DatabaseUnavailable
from geo_common.identity import Claims
from geo_common.provider_keys import KeysUnavailable
from geo_common.tokens import Identity, Role, TokenError, bearer_token
from location_api.errors import ApiError, Forbidden, NotAuthenticated
from location_api.keys import authenticator_key, db_key

WRITER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class ProviderUnavailable(ApiError, ConnectionError):
    """The identity provider's keys cannot be fetched: the token cannot be checked now (503)."""

    status = 503
    slug = "identity-provider-unavailable"
    title = "Identity provider unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified caller: who they are here (``identity``) and what their token said (``claims``)."""

    identity: Identity
    claims: Claims


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: Caller | ApiError | DatabaseUnavailable


# Where authenticate() files its outcome on the request: a typed key where aiohttp has them
# (3.13 warns about string keys), a string on the older releases pyproject allows.
_OUTCOME: Any = web.RequestKey("geo_authentication", _Outcome) if hasattr(web, "RequestKey") else "geo_authentication"


async def authenticate(request: web.Request) -> None:
    """Verify the request's ``Authorization`` header and file the outcome on the request.

    A bad token files a :class:`NotAuthenticated` (401), unreachable provider keys a
    :class:`ProviderUnavailable` (503), an unreachable primary (needed once per new provider
    subject) a :class:`~geo_common.database.DatabaseUnavailable` (503); none is raised here.
    """
    app = request.app
    authenticator = app[authenticator_key]
    outcome: Caller | ApiError | DatabaseUnavailable
    try:
        token = bearer_token(request.headers.get(hdrs.AUTHORIZATION))
        claims, identity = await authenticator.identify(token, app[db_key])
        outcome = Caller(identity, claims)
    except KeysUnavailable as exc:
        outcome = ProviderUnavailable(str(exc))
    except TokenError as exc:
        outcome = NotAuthenticated(str(exc))
    except (ApiError, DatabaseUnavailable) as exc:
        outcome = exc
    request[_OUTCOME] = _Outcome(outcome)


def authenticated(request: web.Request) -> Caller:
    """The caller :func:`authenticate` found for this request.

    Raises:
        NotAuthenticated: no ``Authorization`` header, or a bad token in it.
        ApiError, DatabaseUnavailable: the 503 that kept the token from being checked.
    """
    outcome = request.get(_OUTCOME)
    if isinstance(outcome, _Outcome):
        if isinstance(outcome.result, (ApiError, DatabaseUnavailable)):
            raise outcome.result
        return outcome.result
    if hdrs.AUTHORIZATION not in request.headers:
        raise NotAuthenticated("missing Authorization header")
    # A view registered without the route table's authenticate hook: a bug, not the client's.
    raise RuntimeError(f"{request.path}: the route was registered without RouteTable's authenticate hook")


def caller(request: web.Request) -> Identity:
    """The caller's identity: anyone with a valid token.

    Raises:
        NotAuthenticated: no token, or a malformed, badly signed, expired or untrusted one.
        ApiError, DatabaseUnavailable: the 503 that kept the token from being checked.
    """
    return authenticated(request).identity


def require_writer(request: web.Request) -> Identity:
    """Check that a request carries a valid token allowed to write businesses.

    Args:
        request: the request, authenticated by :func:`authenticate`.

    Returns:
        The caller.

    Raises:
        NotAuthenticated: the header is missing, or the token is malformed, badly signed or expired.
        Forbidden: the token is valid but its role is not owner or admin.
    """
    identity = caller(request)
    if identity.role not in WRITER_ROLES:
        raise Forbidden(f"role {identity.role.value!r} may not write businesses; owner or admin is needed")
    return identity


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


def require_admin(request: web.Request, doing: str) -> Identity:
    """The caller, who must hold an admin token.

    Args:
        request: the request, authenticated by :func:`authenticate`.
        doing: what the request does, for the 403's detail ("``doing`` needs an admin token").

    Raises:
        NotAuthenticated: no bearer token, or a malformed, badly signed or expired one.
        Forbidden: a valid token whose role is not admin.
    """
    identity = caller(request)
    if identity.role is not Role.ADMIN:
        raise Forbidden(f"{doing} needs an admin token")
    return identity
