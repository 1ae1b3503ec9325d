"""The full local stack's nginx configuration, rendered from the instances' addresses (pure).

One entry port routes to three pools:

| request | pool | retried on another instance |
|---|---|---|
| ``GET``/``HEAD`` anything (search, businesses, ``/v1/users/{id}/friends``, operations) | read | yes: error, timeout, 502, 503 |
| any other method (``POST``, ``PUT``, ``DELETE``...) | write | never |
| ``/v1/friends/ws`` (WebSocket upgrade) | ws | the handshake only (error, timeout, a 503 of a draining instance) |
| ``/asyncapi.json`` (geo-friends' protocol document) | ws | yes: error, timeout, 502, 503 |
| ``/v1/me/locations`` (geo-friends' background uploads) | ws | only when the connection failed (error) |

Passive health checks: an instance that fails ``max_fails`` times is left out for
``fail_timeout`` (not the ws pool's: nginx forgets a failure only when a request through the
instance ends, and a WebSocket may stay open for an hour, so one failed handshake in a
reconnect storm would keep a healthy instance out; a refused or draining instance's
handshake goes to the next instance anyway). Requests are never retried once they may have had an effect: only reads go
to the next instance, and ``proxy_next_upstream`` never has ``non_idempotent``. When no
instance can answer, nginx's own 502/504 becomes the API's documented answer, a 503
``application/problem+json`` with ``Retry-After``.

In front of the API: searches (``/v1/search/...``, anonymous) are limited per client address
to ``GEO_HTTP_RATE_PER_S`` a second with bursts of twice that (``limit_req``; beyond it a 429
problem document with ``Retry-After``, the instances never see the request); ``/metrics`` and
``/readyz`` are not routed (404: each instance's own port serves them); and the access log
holds the path (``$uri``), never the query string (a search's coordinates, a cursor) nor any
header (``Authorization``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The ``instance`` of nginx's own problem documents: its id of the request, as the services
#: name theirs (``urn:request:<id>``, :func:`geo_common.request_context.problem_instance`).
_INSTANCE = '"instance":"urn:request:$request_id"'
#: The problem document nginx answers with when no instance of a pool can answer.
UNAVAILABLE_BODY = (
    '{"type":"/problems/service-unavailable","title":"Service unavailable","status":503,'
    f'"detail":"no instance could answer; retry shortly","errors":[],{_INSTANCE}}}'
)
#: The problem document of a search beyond its client address's rate.
TOO_MANY_BODY = (
    '{"type":"/problems/too-many-requests","title":"Too many requests","status":429,'
    f'"detail":"too many searches from this address; retry shortly","errors":[],{_INSTANCE}}}'
)
#: The problem document of a route that is not public (the API's own 404 for no such route).
NOT_FOUND_BODY = (
    '{"type":"/problems/not-found","title":"Not found","status":404,'
    f'"detail":"no such route","errors":[],{_INSTANCE}}}'
)
#: Routes each instance serves on its own port only: operators' and Prometheus', not clients'.
PRIVATE_ROUTES = ("/metrics", "/readyz")


@dataclass(frozen=True, slots=True)
class Pools:
    """The ``host:port`` of each instance, by pool."""

    read: tuple[str, ...]
    write: tuple[str, ...]
    ws: tuple[str, ...]

    def __post_init__(self) -> None:
        for name, servers in (("read", self.read), ("write", self.write), ("ws", self.ws)):
            if not servers:
                raise ValueError(f"the {name} pool needs at least one instance")


@dataclass(frozen=True, slots=True)
class NginxFiles:
    """Where this nginx keeps its files: everything under one folder of the stack."""

    directory: Path

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def pid(self) -> Path:
        return self.directory / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    @property
    def temp(self) -> Path:
        return self.directory / "temp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tuning:
    """Timeouts and health-check thresholds (seconds unless named otherwise)."""

    max_fails: int = 2
    fail_timeout_s: int = 5
    connect_timeout_s: float = 1.0
    read_timeout_s: int = 30
    ws_timeout_s: int = 3600
    tries: int = 2
    #: Searches a second per client address (``GEO_HTTP_RATE_PER_S``; its default), bursts of twice that.
    search_rate_per_s: int = 20

    def __post_init__(self) -> None:
        if self.search_rate_per_s < 1:
            raise ValueError(f"search_rate_per_s must be at least 1, got {self.search_rate_per_s}")


def _upstream(
    name: str, servers: Sequence[str], tuning: Tuning, *, balance: str = "", keepalive: int = 0, health: bool = True
) -> str:
    lines = [f"    upstream {name} {{"]
    if balance:
        lines.append(f"        {balance};")
    max_fails = tuning.max_fails if health else 0
    for server in servers:
        lines.append(f"        server {server} max_fails={max_fails} fail_timeout={tuning.fail_timeout_s}s;")
    if keepalive:
        lines.append(f"        keepalive {keepalive};")
    lines.append("    }")
    return "\n".join(lines)


# proxy_set_header and error_page are inherited only by levels that set none of their own,
# so every location that sets one repeats the whole list. X-Request-Id is nginx's own id of
# the request, never the client's: the instance's log lines and problem documents carry it,
# and nginx's access line too (rid=), so one id leads from one to the other.
_HEADERS = """\
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Id $request_id;"""


def command(program: Path, files: NginxFiles) -> list[str]:
    """The argv that runs ``program`` (nginx) on the configuration in ``files``: its prefix,
    configuration and error log, all under ``files.directory`` (absolute: nginx resolves a
    relative ``-c`` inside ``-p``)."""
    return [str(program), "-p", str(files.directory), "-c", str(files.conf), "-e", str(files.error_log)]


def render_config(
    *, listen: str, pools: Pools, files: NginxFiles, tuning: Tuning = Tuning(), worker_user: str | None = None
) -> str:
    """The whole ``nginx.conf`` of the full stack.

    Args:
        listen: the entry address, ``host:port``.
        pools: the instances of each pool.
        files: where the pid file, logs and temporary files go (absolute paths).
        tuning: timeouts and passive health-check thresholds.
        worker_user: the ``user`` directive (needed when nginx starts as root, so its
            workers may use the stack's folder); None leaves it out.

    Returns:
        The configuration text.
    """
    temp = files.temp
    user = f"user {worker_user};\n" if worker_user else ""
    connect = f"{tuning.connect_timeout_s:g}s"
    rate = tuning.search_rate_per_s
    private = "        # Not public: each instance serves these on its own port (Prometheus, operators).\n"
    private += "\n".join(
        f"""        location = {route} {{
            default_type application/problem+json;
            add_header X-Request-Id $request_id always;
            return 404 '{NOT_FOUND_BODY}';
        }}"""
        for route in PRIVATE_ROUTES
    )
    return f"""\
# geo-stack --full: the entry point of the local full stack. Generated; edits are overwritten.
daemon off;
master_process on;
worker_processes 1;
{user}pid {files.pid};
error_log {files.error_log} warn;

events {{
    worker_connections 4096;
}}

http {{
    # The path only ($uri): never $request or $request_uri (a search's query string holds a
    # position), nor a header (Authorization holds a token).
    log_format geo '$remote_addr [$time_iso8601] "$request_method $uri $server_protocol" $status '
                   '$body_bytes_sent upstream=$upstream_addr upstream_status=$upstream_status '
                   'rt=$request_time rid=$request_id';
    access_log {files.access_log} geo;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    default_type application/octet-stream;
    server_tokens off;
    # The API refuses large bodies itself, with a problem document: let them through to it.
    client_max_body_size 1m;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    # Searches are counted per client address; other requests have an empty key, which
    # limit_req does not count. A refusal is logged at info, below error_log's level: its
    # line would hold the query string.
    map $uri $geo_search_client {{
        ~^/v1/search(/|$) $binary_remote_addr;
        default           "";
    }}
    limit_req_zone $geo_search_client zone=geo_search:10m rate={rate}r/s;
    limit_req_status 429;
    limit_req_log_level info;

{_upstream("geo_read", pools.read, tuning, keepalive=32)}
{_upstream("geo_write", pools.write, tuning, keepalive=16)}
{_upstream("geo_ws", pools.ws, tuning, balance="least_conn", health=False)}

    server {{
        listen {listen};
        proxy_http_version 1.1;
        proxy_connect_timeout {connect};
        proxy_read_timeout {tuning.read_timeout_s}s;
        proxy_send_timeout {tuning.read_timeout_s}s;
        proxy_next_upstream_tries {tuning.tries};
        proxy_next_upstream_timeout {tuning.read_timeout_s}s;

        # The WebSocket tier: long-lived upgraded connections. Only the handshake may go to
        # the other instance (nothing has reached the client before it succeeds), also when
        # it is refused by an instance that drains (503: least_conn picks it first, it has
        # the fewest connections).
        location = /v1/friends/ws {{
            proxy_pass http://geo_ws;
{_HEADERS}
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout {tuning.ws_timeout_s}s;
            proxy_send_timeout {tuning.ws_timeout_s}s;
            proxy_buffering off;
            proxy_next_upstream error timeout http_503;
            error_page 502 504 = @unavailable;
        }}

        # Background uploads go to geo-friends; retried only when nothing reached an instance.
        location = /v1/me/locations {{
            proxy_pass http://geo_ws;
{_HEADERS}
            proxy_next_upstream error;
            error_page 502 504 = @unavailable;
        }}

        # geo-friends' AsyncAPI document, beside geo-api's /openapi.json and /docs (a read,
        # retried like the API's).
        location = /asyncapi.json {{
            proxy_pass http://geo_ws;
{_HEADERS}
            proxy_next_upstream error timeout http_502 http_503;
            error_page 502 504 = @unavailable;
        }}

{private}

        # Reads (GET, HEAD) go to the read pool and are retried on the other instance;
        # every other method is handed to @write, which never retries. Searches beyond their
        # address's rate are answered here (the 418 of a write comes first: writes are not
        # searches).
        location / {{
            # @write is reached through error_page: let its own error_page apply too.
            recursive_error_pages on;
            error_page 418 = @write;
            error_page 429 = @too_many;
            error_page 502 504 = @unavailable;
            if ($request_method !~ ^(GET|HEAD)$) {{
                return 418;
            }}
            limit_req zone=geo_search burst={2 * rate} nodelay;
            proxy_pass http://geo_read;
{_HEADERS}
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
        }}

        location @write {{
            proxy_pass http://geo_write;
{_HEADERS}
            proxy_set_header Connection "";
            proxy_next_upstream off;
            error_page 502 504 = @unavailable;
        }}

        # nginx's own problem documents name the request as the services' do: its id in
        # X-Request-Id and in instance (urn:request:<id>).
        location @too_many {{
            default_type application/problem+json;
            add_header Retry-After 1 always;
            add_header X-Request-Id $request_id always;
            return 429 '{TOO_MANY_BODY}';
        }}

        # nginx's own "no instance answered" as the API's problem document.
        location @unavailable {{
            default_type application/problem+json;
            add_header Retry-After 1 always;
            add_header X-Request-Id $request_id always;
            return 503 '{UNAVAILABLE_BODY}';
        }}
    }}
}}
"""
