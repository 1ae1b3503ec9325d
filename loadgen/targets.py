"""Checking a run's targets before anything is sent: base URLs, and the right service behind each.

A search URL given with its path, the API's port given as the WebSocket tier's, or a radius
the API refuses would each make a run of nothing but errors. So, before a run:

* a target is a base URL: scheme, host and port, no path (``/`` at most);
* the search API names itself in ``/openapi.json`` (``info.title`` is :data:`API_TITLE`),
  lists the routes its role serves, and states its limits there: the largest radius
  (``GEO_MAX_RADIUS_M`` on the server) and page. The generator reads them from the server it
  is about to load rather than assuming the defaults;
* a set-up that makes friendships needs an API that takes them: a ``POST`` of the route
  without a token is refused with 401 and a ``Bearer`` challenge there (a read instance
  answers 404 or 405), asked of the route itself, since behind deploy/'s nginx the document
  is a read instance's while the writes go elsewhere;
* the friends tier refuses a WebSocket handshake that carries no token with 401 and a
  ``Bearer`` challenge, before any upgrade: that tells it from anything else without
  connecting as anyone;
* the API takes the users' tokens: ``GET /v1/me`` with one names that user. A token signed
  with another key, issuer or audience would have every request of the run refused.

Each check raises :class:`TargetError`, whose message is the one line the user sees.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from geo_common.redact import redact_passwords
from loadgen.redact import plain

API_TITLE = "geo location API"
SEARCH_ROUTE = "/v1/search/nearby"
FRIENDSHIP_ROUTE = "/v1/users/{id}/friends/{friend_id}"
FRIENDS_WS_ROUTE = "/v1/friends/ws"
ME_ROUTE = "/v1/me"
TIMEOUT_S = 3.0
#: Read at most this much of an answer (the OpenAPI document is tens of KiB).
_MAX_BODY = 4 << 20


class TargetError(ValueError):
    """A target is malformed, unreachable, the wrong service, or refuses the run's queries."""


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """What the API accepts of a search, from its OpenAPI document (None: not stated)."""

    min_radius_m: float | None = None
    max_radius_m: float | None = None
    max_limit: int | None = None


def base_url(url: str, flag: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``url`` without its trailing ``/``, once it is a base URL of one of ``schemes``.

    Raises:
        TargetError: another scheme, no host, or a path, query or fragment.
    """
    if not url.startswith(tuple(f"{s}://" for s in schemes)):
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise TargetError(f"{flag} must start with {wanted}, got {redact_passwords(url)!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise TargetError(f"{flag} {redact_passwords(url)!r}: {exc}") from None
    if not parts.hostname:
        raise TargetError(f"{flag} {redact_passwords(url)!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        base = f"{parts.scheme}://{parts.netloc}"
        raise TargetError(
            f"{flag} takes the service's base URL, not a path: give {redact_passwords(base)}, not {redact_passwords(url)}"
        )
    return url.rstrip("/")


def check_search_api(url: str, flag: str) -> ApiLimits:
    """Check that ``url`` is the search API and serves searches; its limits.

    Raises:
        TargetError: not a base URL, unreachable, another service, or an instance without searches.
    """
    target = _Target(flag, url, base_url(url, flag))
    paths = target.api_document().get("paths") or {}
    if SEARCH_ROUTE not in paths:
        raise TargetError(f"{target}: this API instance does not serve {SEARCH_ROUTE} (a write role?)")
    return _limits(paths[SEARCH_ROUTE])


def check_friendship_api(url: str, flag: str, *, setup: bool) -> None:
    """Check that ``url`` is the search API and, when ``setup`` is to run, creates friendships.

    Raises:
        TargetError: not a base URL, unreachable, another service, or a read-only instance.
    """
    target = _Target(flag, url, base_url(url, flag))
    target.api_document()
    # Asked of the route, not read from the document: behind a proxy that sends reads and
    # writes to different instances (deploy/'s nginx), /openapi.json is a read instance's,
    # which lists no write route, while the POSTs go to one that takes them.
    if setup and not target.takes_posts(FRIENDSHIP_ROUTE.format(id=1, friend_id=2)):
        raise TargetError(
            f"{target}: this API instance does not create friendships (a read role?); "
            "give one that serves writes, or --skip-setup"
        )


def check_friends_ws(url: str, flag: str) -> None:
    """Check that ``url`` is the friends WebSocket tier (``ws://`` or ``wss://``).

    Raises:
        TargetError: not a base URL, unreachable, or another service.
    """
    target = _Target(flag, url, "http" + base_url(url, flag, ("ws", "wss"))[2:])
    if target.is_friends_ws():
        return
    if target.title() == API_TITLE:
        raise TargetError(f"{target} is the search API, not the friends WebSocket tier (geo-friends)")
    raise TargetError(
        f"{target} does not answer as the friends WebSocket tier (no 401 Bearer challenge at {FRIENDS_WS_ROUTE})"
    )


def check_user_token(url: str, flag: str, user_id: int, token: str, *, source: str, hint: str) -> None:
    """Check that the API takes ``token`` as user ``user_id``'s (``GET /v1/me``).

    Args:
        url: the API's base URL, as given.
        flag: the option that gave it.
        user_id: whose token it is meant to be.
        token: the token; never part of a message.
        source: where it came from, for the message (``--token-file tokens.txt``).
        hint: what to check when it is refused.

    Raises:
        TargetError: refused (the API's reason, then ``hint``), another user's, or another answer.
    """
    target = _Target(flag, url, base_url(url, flag))
    status, answer = target.me(token)
    if status == 401:
        detail = answer.get("detail")
        reason = f" ({plain(detail)[:200]})" if isinstance(detail, str) else ""
        raise TargetError(f"{target} refused the token {source} gave for user {user_id}{reason}: {hint}")
    if status != 200:
        raise TargetError(f"{target} answered GET {ME_ROUTE} with HTTP {status} for user {user_id}'s token")
    if answer.get("user_id") != user_id:
        raise TargetError(f"the token {source} gave for user {user_id} is user {answer.get('user_id')}'s, at {target}")


def check_query(limits: ApiLimits, *, radius_m: float, limit: int, radius_flag: str, limit_flag: str) -> None:
    """Check that the API accepts searches of this radius and page size.

    Raises:
        TargetError: it would answer every one with 400.
    """
    if limits.max_radius_m is not None and radius_m > limits.max_radius_m:
        raise TargetError(
            f"{radius_flag} {radius_m:g} is above the API's largest radius, {limits.max_radius_m:g} m "
            "(GEO_MAX_RADIUS_M on the server): every search would be refused"
        )
    if limits.min_radius_m is not None and radius_m < limits.min_radius_m:
        raise TargetError(f"{radius_flag} {radius_m:g} is below the API's smallest radius, {limits.min_radius_m:g} m")
    if limits.max_limit is not None and limit > limits.max_limit:
        raise TargetError(f"{limit_flag} {limit} is above the API's largest page, {limits.max_limit}")


@dataclass(frozen=True, slots=True)
class _Target:
    """One target as the user gave it (``url``, for messages) and the HTTP base it is asked at."""

    flag: str
    url: str
    http: str

    def __str__(self) -> str:
        return f"{self.flag} {redact_passwords(self.url)}"

    def api_document(self) -> dict[str, Any]:
        """The API's OpenAPI document, once it names the API."""
        status, document = self._document()
        if document is not None and _title_of(document) == API_TITLE:
            return document
        if self.is_friends_ws():
            raise TargetError(f"{self} is the friends WebSocket tier, not the search API")
        seen = f"HTTP {status}" if status != 200 else "not the geo location API's document"
        raise TargetError(f"{self} does not answer as the {API_TITLE} (GET /openapi.json: {seen}); give its base URL")

    def title(self) -> str | None:
        return _title_of(self._document()[1])

    def is_friends_ws(self) -> bool:
        status, headers, _ = self._get(FRIENDS_WS_ROUTE)
        return status == 401 and headers.get("WWW-Authenticate", "").lower().startswith("bearer")

    def takes_posts(self, path: str) -> bool:
        """Whether ``path`` takes POSTs here: a POST without a token is refused with a
        ``Bearer`` challenge (401), not as an unknown route or method. It creates nothing."""
        status, headers, _ = self._get(path, method="POST")
        return status == 401 and headers.get("WWW-Authenticate", "").lower().startswith("bearer")

    def me(self, token: str) -> tuple[int, dict[str, Any]]:
        """``GET /v1/me`` with ``token``: (status, the JSON object answered or {})."""
        status, _, body = self._get(ME_ROUTE, {"Authorization": f"Bearer {token}"})
        return status, _json(body) or {}

    def _document(self) -> tuple[int, dict[str, Any] | None]:
        status, _, body = self._get("/openapi.json")
        return status, _json(body) if status == 200 else None

    def _get(
        self, path: str, headers: dict[str, str] | None = None, *, method: str = "GET"
    ) -> tuple[int, Message, bytes]:
        """GET (or ``method``, without a body) ``path``: (status, headers, body), whatever the status.

        Raises:
            TargetError: no answer at all.
        """
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.http + path, data=data, headers=headers or {}, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:  # noqa: S310 - user's target
                return int(resp.status), resp.headers, resp.read(_MAX_BODY)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read(_MAX_BODY)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TargetError(f"cannot reach {redact_passwords(self.url)} ({self.flag}): {reason}") from None


def _title_of(document: dict[str, Any] | None) -> str | None:
    info = document.get("info") if document is not None else None
    title = info.get("title") if isinstance(info, dict) else None
    return title if isinstance(title, str) else None


def _limits(route: Any) -> ApiLimits:
    get = route.get("get") if isinstance(route, dict) else None
    params = get.get("parameters") if isinstance(get, dict) else None
    schemas = {p.get("name"): p.get("schema") for p in params or [] if isinstance(p, dict)}

    def number(schema: Any, key: str) -> float | None:
        value = schema.get(key) if isinstance(schema, dict) else None
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    max_limit = number(schemas.get("limit"), "maximum")
    return ApiLimits(
        min_radius_m=number(schemas.get("radius"), "minimum"),
        max_radius_m=number(schemas.get("radius"), "maximum"),
        max_limit=None if max_limit is None else int(max_limit),
    )


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
