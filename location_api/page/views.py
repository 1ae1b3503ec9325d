"""The live map page and the small JSON routes it uses (read instances only).

* ``GET /``: the page (``location_api/static/index.html``);
* ``GET /static/{path}``: its scripts, styles, vendored libraries (with their licences) and
  the world outline;
* ``GET /v1/page/config``: what the page needs to know (the WebSocket URL, the limits); the
  URL is ``GEO_FRIENDS_PUBLIC_URL``; without it, in development (``GEO_DEV=1``) the request's
  host on ``GEO_WS_PORT``, and otherwise the path ``/v1/friends/ws`` alone, which the browser
  resolves against the page's own origin (where the deployments' nginx and ingress route it):
  outside development nothing the page is told comes from the request's ``Host`` header;
* ``GET /v1/watch/positions``: a sample of the users' cached locations (admin token);
* ``POST /v1/dev/token``: mint a token for any user, registered only when ``GEO_DEV=1``.

The static files are a fixed table read from the package once: a request names an entry of
that table or gets a 404, so no part of a request's path ever reaches the file system.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from geo_common.tokens import MAX_USER_ID, Role, mint_token
from location_api.auth import require_admin
from location_api.bodies import json_object
from location_api.errors import InvalidBody, InvalidRequest, NotFound
from geo_common.problems import FieldError
from location_api.handling import RouteTable
from location_api.keys import role_key, settings_key, watch_caches_key
from location_api.contract import DEFAULT_LIMIT, DEFAULT_RADIUS_M, MAX_LIMIT, MIN_RADIUS_M
from location_api.views import json_response
from location_api.page.watch import DEFAULT_WATCH_LIMIT, MAX_WATCH_LIMIT, sample_positions

#: The path of the WebSocket endpoint on geo-friends.
FRIENDS_WS_PATH = "/v1/friends/ws"
#: Fields of the dev token request body.
DEV_TOKEN_FIELDS = ("user_id", "role")

# The page loads only its own files, talks to this API and to the WebSocket tier (whose
# origin may differ, hence ws:/wss:), and draws no remote images.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A file of the page: its bytes and how to label them."""

    body: bytes
    content_type: str
    cache_control: str


@lru_cache(maxsize=1)
def static_files() -> Mapping[str, StaticFile]:
    """Every file under ``location_api/static``, by its path relative to that folder."""
    root = resources.files("location_api") / "static"
    table: dict[str, StaticFile] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                walk(entry, name + "/")
            elif entry.is_file() and not entry.name.startswith("."):
                table[name] = StaticFile(entry.read_bytes(), _content_type(entry.name), _cache_control(name))

    walk(root, "")
    return table


def _content_type(name: str) -> str:
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    known = {
        "js": "text/javascript",
        "css": "text/css",
        "json": "application/json",
        "html": "text/html",
        "md": "text/markdown",
        "png": "image/png",
        "svg": "image/svg+xml",
        "": "text/plain",
    }
    guessed = known.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed == "application/json" else guessed


def _cache_control(name: str) -> str:
    # Vendored files change only with a new release of the package; the page's own files are
    # revalidated so an upgrade shows at once.
    return "public, max-age=3600" if name.startswith("vendor/") else "no-cache"


def add_page_routes(app: web.Application, routes: RouteTable) -> None:
    """Register the page and its routes on a read instance; the token route only in dev mode."""
    if not app[role_key].reads:
        return
    static_files()  # read once while the app is built, not on the event loop
    routes.get("/", index)
    routes.get("/static/{path:.+}", static)
    routes.get("/v1/page/config", page_config)
    routes.get("/v1/watch/positions", watch_positions)
    if app[settings_key].dev:
        routes.post("/v1/dev/token", dev_token)


# --- the page -----------------------------------------------------------------------------------


def _file_response(file: StaticFile, extra: Mapping[str, str] | None = None) -> web.Response:
    headers = {
        "Content-Type": file.content_type,
        "Cache-Control": file.cache_control,
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    return web.Response(body=file.body, headers=headers)


async def index(_request: web.Request) -> web.Response:
    """``GET /``: the map page."""
    return _file_response(static_files()["index.html"], PAGE_SECURITY_HEADERS)


async def static(request: web.Request) -> web.Response:
    """``GET /static/{path}``: one of the page's files, or 404."""
    path = request.match_info["path"]
    file = static_files().get(path)
    if file is None:
        raise NotFound(f"no static file {path[:80]!r}")
    return _file_response(file)


async def page_config(request: web.Request) -> web.Response:
    """``GET /v1/page/config``: the WebSocket URL and the limits the page works within."""
    settings = request.app[settings_key]
    url = settings.friends_public_url
    if not url:
        # The Host header is the client's to write: only a development page trusts it.
        dev = settings.dev
        url = (
            friends_ws_url(request.url.host or settings.ws_host, settings.ws_port, secure=request.secure)
            if dev
            else FRIENDS_WS_PATH
        )
    return json_response(
        {
            "friends_ws_url": url,
            "dev": settings.dev,
            "search": {
                "min_radius_m": MIN_RADIUS_M,
                "max_radius_m": settings.max_radius_m,
                "default_radius_m": min(DEFAULT_RADIUS_M, settings.max_radius_m),
                "default_limit": DEFAULT_LIMIT,
                "max_limit": MAX_LIMIT,
            },
            "friends": {
                "radius_m": settings.friend_radius_m,
                "min_radius_m": settings.friend_radius_min_m,
                "max_radius_m": settings.friend_radius_max_m,
            },
            "watch": {"default_limit": DEFAULT_WATCH_LIMIT, "max_limit": MAX_WATCH_LIMIT},
        }
    )


def friends_ws_url(host: str, port: int, *, secure: bool) -> str:
    """The WebSocket tier's URL on the page's host (an IPv6 address gets its brackets)."""
    return str(URL.build(scheme="wss" if secure else "ws", host=host, port=port, path=FRIENDS_WS_PATH))


# --- watch mode ---------------------------------------------------------------------------------


def parse_watch_limit(query: MultiMapping[str]) -> int:
    """The ``limit`` of ``GET /v1/watch/positions`` (default :data:`DEFAULT_WATCH_LIMIT`).

    Raises:
        InvalidRequest: an unknown or repeated parameter, or a limit that is not a whole
            number from 1 to :data:`MAX_WATCH_LIMIT`.
    """
    errors = [FieldError(name, "unknown query parameter; known: limit") for name in set(query) if name != "limit"]
    values = query.getall("limit", [])
    if len(values) > 1:
        errors.append(FieldError("limit", "given more than once"))
    limit = DEFAULT_WATCH_LIMIT
    if len(values) == 1:
        raw = values[0]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= MAX_WATCH_LIMIT:
            errors.append(FieldError("limit", f"must be a whole number from 1 to {MAX_WATCH_LIMIT}"))
        else:
            limit = int(raw)
    if errors:
        raise InvalidRequest(
            "; ".join(f"{e.field}: {e.message}" for e in sorted(errors, key=lambda e: e.field)),
            sorted(errors, key=lambda e: e.field),
        )
    return limit


async def watch_positions(request: web.Request) -> web.Response:
    """``GET /v1/watch/positions`` (admin): up to ``limit`` cached user locations, sampled."""
    require_admin(request, "watching every user's position")
    limit = parse_watch_limit(request.query)
    caches = request.app[watch_caches_key]
    sample = await sample_positions(caches, request.app[settings_key].redis_namespace, limit)
    return json_response(
        {
            "limit": limit,
            "complete": sample.complete,
            "positions": [p.to_json() for p in sample.positions],
        },
        headers={"Cache-Control": "no-store"},
    )


# --- development sign-in ------------------------------------------------------------------------


def parse_dev_token_request(body: bytes) -> tuple[int, Role]:
    """Validate the body of ``POST /v1/dev/token``: ``{"user_id": 42, "role": "user"}``.

    Raises:
        InvalidBody: not a JSON object, or naming each field that is unknown, missing or wrong.
    """
    document, errors = json_object(body, DEV_TOKEN_FIELDS, required=("user_id",))
    raw_user = document.get("user_id")
    # JSON has one number type: 42.0 is the integer 42 (JSON Schema agrees), 42.5 is not.
    if isinstance(raw_user, float) and raw_user.is_integer():
        raw_user = int(raw_user)
    user_id = 0
    if "user_id" in document:  # a missing one is already among the errors
        if isinstance(raw_user, bool) or not isinstance(raw_user, int) or not 1 <= raw_user <= MAX_USER_ID:
            errors.append(FieldError("user_id", f"must be a whole number from 1 to {MAX_USER_ID}"))
        else:
            user_id = raw_user
    role = document.get("role", Role.USER.value)
    roles = [r.value for r in Role]
    if role not in roles:
        errors.append(FieldError("role", f"must be one of {', '.join(roles)}"))
    if errors:
        raise InvalidBody("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return user_id, Role(role)


async def dev_token(request: web.Request) -> web.Response:
    """``POST /v1/dev/token`` (``GEO_DEV=1`` only): a bearer token for any user and role."""
    user_id, role = parse_dev_token_request(await request.read())
    settings = request.app[settings_key]
    ttl_s = min(settings.jwt_ttl_s, settings.jwt_max_lifetime_s)  # a longer token would be refused
    token = mint_token(
        settings.jwt_secret, user_id, role, ttl_s=ttl_s, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    return json_response(
        {"token": token, "user_id": user_id, "role": role.value, "expires_in": ttl_s},
        headers={"Cache-Control": "no-store"},
    )
