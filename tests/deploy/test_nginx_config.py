"""The nginx configurations in front of the API: the full stack's rendered text, and the real
nginx routing with it, the compose stack's and the Kubernetes edge's files.

The routing tests run the real nginx in front of small aiohttp servers that count what
reaches them, so retries, refusals and what was never routed can be counted exactly. The
compose and edge files are run as shipped, with only their service names, listen port and
log destination pointed at this machine.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp import web

from deploy.k8s_render import K8S_DIR
from deploy.stack.binaries import ensure_nginx
from deploy.stack.layout import Layout
from deploy.stack.nginx import NginxFiles, Pools, Tuning, command, render_config
from deploy.stack.procs import is_root
from geo_common.settings import Settings
from tests.ports import free_port

DOCKER = Path(__file__).resolve().parents[2] / "deploy" / "docker"
#: A search whose query string must never reach a log: its coordinates, and a cursor.
SECRET_QUERY = "latitude=59.91391234&longitude=10.75224321&cursor=Q1VSU09SLXNlY3JldA"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"
#: nginx's $request_id: 16 random bytes in hex.
NGINX_ID = r"[0-9a-f]{32}"


def files(tmp_path: Path) -> NginxFiles:
    return NginxFiles(tmp_path / "nginx")


def test_config_routes_by_method_and_never_retries_writes(tmp_path: Path) -> None:
    text = render_config(
        listen="127.0.0.1:8000",
        files=files(tmp_path),
        worker_user="root",
        pools=Pools(read=("127.0.0.1:1", "127.0.0.1:2"), write=("127.0.0.1:3",), ws=("127.0.0.1:4", "127.0.0.1:5")),
    )
    assert "listen 127.0.0.1:8000;" in text and "daemon off;" in text and "user root;" in text
    assert text.count("max_fails=2 fail_timeout=5s") == 3  # the WebSocket pool has no passive check
    assert text[text.index("upstream geo_ws") :].count("max_fails=0 ") == 2
    read = text[text.index("location / {") : text.index("location @write")]
    write = text[text.index("location @write") : text.index("location @unavailable")]
    ws = text[text.index("location = /v1/friends/ws") : text.index("location / {")]
    assert "proxy_pass http://geo_read;" in read and "proxy_next_upstream error timeout http_502 http_503;" in read
    assert "if ($request_method !~ ^(GET|HEAD)$)" in read
    assert "proxy_pass http://geo_write;" in write and "proxy_next_upstream off;" in write
    assert "non_idempotent" not in text
    assert "proxy_set_header Upgrade $http_upgrade;" in ws and "proxy_read_timeout 3600s;" in ws
    assert "proxy_next_upstream error timeout http_503;" in ws  # a draining instance's refusal
    asyncapi = text[text.index("location = /asyncapi.json") : text.index("location = /metrics")]
    assert "proxy_pass http://geo_ws;" in asyncapi and "proxy_set_header X-Request-Id $request_id;" in asyncapi
    assert "Upgrade" not in asyncapi and "error_page 502 504 = @unavailable;" in asyncapi
    assert "least_conn;" in text[text.index("upstream geo_ws") :]
    assert str(tmp_path / "nginx" / "nginx.pid") in text


def test_user_directive_is_left_out_unless_asked(tmp_path: Path) -> None:
    text = render_config(
        listen="127.0.0.1:1", files=files(tmp_path), pools=Pools(read=("a:1",), write=("b:1",), ws=("c:1",))
    )
    assert "\nuser " not in text


def test_a_relative_stack_folder_gives_nginx_a_configuration_it_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make run-full`` passes the default folder, ``.stack``, relative to the repository."""
    monkeypatch.chdir(tmp_path)
    layout = Layout(Path(".stack"))
    assert layout.root == tmp_path / ".stack"
    where = NginxFiles(layout.root / "full" / "nginx")
    where.temp.mkdir(parents=True)
    where.conf.write_text(
        render_config(
            listen="127.0.0.1:1",
            files=where,
            worker_user="root" if is_root() else None,
            pools=Pools(read=("127.0.0.1:2",), write=("127.0.0.1:3",), ws=("127.0.0.1:4",)),
        )
    )
    checked = subprocess.run([*command(ensure_nginx(), where), "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_every_pool_needs_an_instance() -> None:
    with pytest.raises(ValueError, match="write"):
        Pools(read=("a:1",), write=(), ws=("c:1",))


# --- the real nginx ------------------------------------------------------------------------


class Upstream:
    """A server that counts requests and answers 200, or 503 while ``failing``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        #: The X-Request-Id of every request that reached it.
        self.request_ids: list[str | None] = []
        self.failing = False
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/friends/ws", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._any)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def _any(self, request: web.Request) -> web.Response:
        self.hits[request.method] += 1
        self.request_ids.append(request.headers.get("X-Request-Id"))
        self.paths[request.path] += 1
        body = await request.read()
        if self.failing:
            return web.Response(status=503, text="down")
        return web.json_response({"who": self.name, "body": body.decode()})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self.request_ids.append(request.headers.get("X-Request-Id"))
        self.hits["ws"] += 1
        if self.failing:  # as geo-friends refuses handshakes while it drains
            return web.Response(status=503, text="draining", headers={"Retry-After": "1"})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(self.name)
        await ws.close()
        return ws

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_nginx(directory: Path, conf: Path) -> subprocess.Popen[bytes]:
    """The real nginx on a configuration (its prefix, error log and pid under ``directory``)."""
    return subprocess.Popen(
        [str(ensure_nginx()), "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    )


async def until_serving(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(url + "/healthz"):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"nginx did not answer on {url}")


async def upstreams(*names: str) -> dict[str, Upstream]:
    ups = {n: Upstream(n) for n in names}
    for up in ups.values():
        await up.start()
    return ups


Routed = tuple[str, dict[str, Upstream]]


@pytest.fixture
async def route_with(tmp_path: Path) -> AsyncIterator[Callable[[Tuning], Awaitable[Routed]]]:
    """``await route_with(tuning)``: the full stack's nginx, rendered with ``tuning``, in front of
    two read, two write and one WebSocket upstream: its URL and the upstreams (hits cleared)."""
    running: list[tuple[subprocess.Popen[bytes], dict[str, Upstream]]] = []

    async def start(tuning: Tuning) -> Routed:
        ups = await upstreams("read-1", "read-2", "write-1", "write-2", "ws-1")
        where = files(tmp_path / f"nginx-{len(running)}")
        where.temp.mkdir(parents=True)
        port = free_port()
        where.conf.write_text(
            render_config(
                listen=f"127.0.0.1:{port}",
                files=where,
                tuning=tuning,
                worker_user="root" if is_root() else None,
                pools=Pools(
                    read=(ups["read-1"].address, ups["read-2"].address),
                    write=(ups["write-1"].address, ups["write-2"].address),
                    ws=(ups["ws-1"].address,),
                ),
            )
        )
        proc = subprocess.Popen(command(ensure_nginx(), where))
        running.append((proc, ups))
        url = f"http://127.0.0.1:{port}"
        await until_serving(url)
        for up in ups.values():
            up.hits.clear()
            up.paths.clear()
        return url, ups

    yield start
    for proc, ups in running:
        proc.terminate()
        proc.wait(timeout=10)
        for up in ups.values():
            await up.stop()


@pytest.fixture
async def routed(route_with: Callable[[Tuning], Awaitable[Routed]]) -> Routed:
    return await route_with(Tuning())


async def test_reads_are_retried_writes_are_not(routed: tuple[str, dict[str, Upstream]]) -> None:
    url, ups = routed
    ups["read-1"].failing = True
    ups["write-1"].failing = ups["write-2"].failing = True
    async with aiohttp.ClientSession() as http:
        for _ in range(4):  # a 503 from one read instance: the other answers
            async with http.get(url + "/v1/search/nearby") as resp:
                assert resp.status == 200 and (await resp.json())["who"] == "read-2"
        for method in ("POST", "PUT", "DELETE"):  # a refused write comes back as it is, once
            async with http.request(method, url + "/v1/businesses/1", data=b"payload") as resp:
                assert resp.status == 503 and await resp.text() == "down"
        ups["write-1"].failing = ups["write-2"].failing = False
        async with http.post(url + "/v1/businesses", data=b"payload") as resp:
            assert resp.status == 200 and (await resp.json())["body"] == "payload"
        async with http.ws_connect(url + "/v1/friends/ws") as ws:
            assert await ws.receive_str() == "ws-1"
    writes = ups["write-1"].hits + ups["write-2"].hits
    assert writes == Counter({"POST": 2, "PUT": 1, "DELETE": 1})
    assert ups["read-1"].hits["POST"] == ups["read-2"].hits["POST"] == 0


async def test_no_instance_answers_with_a_problem_document(routed: tuple[str, dict[str, Upstream]]) -> None:
    url, ups = routed
    for name in ("write-1", "write-2"):
        await ups[name].stop()
    async with aiohttp.ClientSession() as http, http.post(url + "/v1/businesses", data=b"x") as resp:
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        assert resp.headers["Retry-After"] == "1"
        assert re.fullmatch(NGINX_ID, resp.headers["X-Request-Id"])
        body = await resp.json()
        assert body["type"] == "/problems/service-unavailable"
        assert body["instance"] == f"urn:request:{resp.headers['X-Request-Id']}"


async def documents(url: str) -> dict[str, str]:
    """Which upstream answered each protocol document (the API's and the WebSocket tier's),
    and a background upload (the WebSocket tier takes it)."""
    answered = {}
    async with aiohttp.ClientSession() as http:
        for path in ("/openapi.json", "/docs", "/asyncapi.json"):
            async with http.get(url + path) as resp:
                assert resp.status == 200, path
                answered[path] = (await resp.json())["who"]
        async with http.post(url + "/v1/me/locations", json={"locations": []}) as resp:
            assert resp.status == 200
            answered["POST /v1/me/locations"] = (await resp.json())["who"]
    return answered


async def test_each_protocol_document_is_served_by_its_tier(routed: Routed) -> None:
    url, ups = routed
    answered = await documents(url)
    assert answered.pop("/asyncapi.json") == "ws-1"
    assert answered.pop("POST /v1/me/locations") == "ws-1"
    assert set(answered.values()) <= {"read-1", "read-2"}
    assert ups["ws-1"].request_ids[-1] is not None and re.fullmatch(NGINX_ID, ups["ws-1"].request_ids[-1])
    await ups["ws-1"].stop()  # no instance of the tier: nginx's own problem document
    async with aiohttp.ClientSession() as http, http.get(url + "/asyncapi.json") as resp:
        assert resp.status == 503 and resp.content_type == "application/problem+json"


# --- in front of the API: search limits, private routes, what the logs hold ------------------

#: The only variables a log line may hold: no $request, $request_uri, $args or header.
#: $request_id is nginx's own id of the request, never a client's.
LOGGED = {
    "$request_id",
    "$remote_addr",
    "$time_iso8601",
    "$request_method",
    "$uri",
    "$server_protocol",
    "$status",
    "$body_bytes_sent",
    "$upstream_addr",
    "$upstream_status",
    "$request_time",
}


def log_formats(text: str) -> list[str]:
    """Every log_format directive of a configuration (its quoted pieces joined)."""
    return [m.group(0) for m in re.finditer(r"log_format\s[^;]*;", text)]


def test_every_config_limits_searches_and_logs_paths_only(tmp_path: Path) -> None:
    pools = Pools(read=("a:1",), write=("b:1",), ws=("c:1",))
    rendered = render_config(
        listen="127.0.0.1:1", files=files(tmp_path), pools=pools, tuning=Tuning(search_rate_per_s=7)
    )
    assert "rate=7r/s" in rendered and "limit_req zone=geo_search burst=14 nodelay;" in rendered
    # The default, and the rate the compose and edge files carry, is GEO_HTTP_RATE_PER_S's.
    rate = Settings.from_env({}).http_rate_per_s
    assert Tuning().search_rate_per_s == rate
    with pytest.raises(ValueError, match="search_rate_per_s"):
        Tuning(search_rate_per_s=0)
    shipped = [(DOCKER / "nginx.conf").read_text(), (K8S_DIR / "base" / "edge-nginx.conf").read_text()]
    for text in [rendered, *shipped]:
        (fmt,) = log_formats(text)
        assert set(re.findall(r"\$\w+", fmt)) <= LOGGED, fmt
        assert "limit_req_status 429;" in text
        for route in ("/metrics", "/readyz"):
            assert f"location = {route} {{" in text
    for text in shipped:
        assert f"rate={rate}r/s" in text and f"burst={2 * rate} nodelay;" in text
        assert re.search(r"access_log /dev/stdout geo_edge;", text)


class Answer(NamedTuple):
    status: int
    content_type: str
    body: Any
    retry_after: str | None
    request_id: str | None


async def searches(url: str, n: int, headers: dict[str, str] | None = None) -> list[Answer]:
    """``n`` searches (with coordinates and a cursor) one after the other."""
    answers = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            async with http.get(f"{url}/v1/search/nearby?{SECRET_QUERY}", headers=headers) as resp:
                body = await resp.json(content_type=None)
                got = resp.headers
                answers.append(
                    Answer(resp.status, resp.content_type, body, got.get("Retry-After"), got.get("X-Request-Id"))
                )
    return answers


def assert_refused(answers: list[Answer]) -> None:
    """Every 429 is the API's problem document, with ``Retry-After``, naming nginx's own id of
    the request in ``X-Request-Id`` and ``instance``, a new one each time."""
    refused = [answer for answer in answers if answer.status == 429]
    for answer in refused:
        assert answer.content_type == "application/problem+json"
        assert answer.body["type"] == "/problems/too-many-requests" and answer.body["status"] == 429
        assert answer.retry_after == "1"
        assert answer.request_id is not None and re.fullmatch(NGINX_ID, answer.request_id)
        assert answer.body["instance"] == f"urn:request:{answer.request_id}"
    assert len({answer.request_id for answer in refused}) == len(refused)


async def test_searches_beyond_the_rate_are_refused_with_a_problem_document(
    route_with: Callable[[Tuning], Awaitable[Routed]],
) -> None:
    url, ups = await route_with(Tuning(search_rate_per_s=2))  # bursts of 4
    started = time.monotonic()
    answers = await searches(url, 12)
    elapsed = time.monotonic() - started
    statuses = [a.status for a in answers]
    # The first request and a burst of four at once; then one more each half second.
    assert statuses[:5] == [200] * 5, statuses
    assert statuses.count(200) <= 5 + int(elapsed * 2) + 1, (statuses, elapsed)
    assert statuses.count(429) >= 12 - 5 - int(elapsed * 2) - 1
    assert_refused(answers)
    served = ups["read-1"].paths["/v1/search/nearby"] + ups["read-2"].paths["/v1/search/nearby"]
    assert served == statuses.count(200)  # a refused search never reaches an instance
    async with aiohttp.ClientSession() as http:
        # Only searches are limited: other reads and writes of the same address go through.
        for _ in range(8):
            async with http.get(f"{url}/v1/businesses/1") as resp:
                assert resp.status == 200
        async with http.post(f"{url}/v1/businesses", data=b"x") as resp:
            assert resp.status == 200 and (await resp.json())["who"].startswith("write")
    await asyncio.sleep(0.6)
    assert [a.status for a in await searches(url, 1)] == [200]  # the rate refills


async def assert_not_public(url: str, ups: dict[str, Upstream]) -> None:
    async with aiohttp.ClientSession() as http:
        for route in ("/metrics", "/readyz"):
            for method in ("GET", "HEAD"):
                async with http.request(method, url + route) as resp:
                    assert resp.status == 404, (route, method)
                    assert resp.content_type == "application/problem+json"
            async with http.get(url + route) as resp:
                problem = await resp.json()
                assert problem["type"] == "/problems/not-found"
                # named like every other answer: nginx's request id, in the header and the body
                assert problem["instance"] == f"urn:request:{resp.headers['X-Request-Id']}"
    assert not any(up.paths[r] for up in ups.values() for r in ("/metrics", "/readyz"))


def assert_log_holds_no_query(log: Path, *, searched: int) -> None:
    text = log.read_text()
    lines = [line for line in text.splitlines() if "/v1/search/nearby" in line]
    assert len(lines) >= searched, text[-2000:]
    for secret in ("latitude", "59.9139", "10.7522", "cursor", "Q1VSU09S", TOKEN, "Bearer", "?"):
        assert secret not in text, secret


async def test_private_routes_and_query_strings_stay_inside(routed: Routed, tmp_path: Path) -> None:
    url, ups = routed
    await assert_not_public(url, ups)
    answers = await searches(url, 3, headers={"Authorization": f"Bearer {TOKEN}"})
    assert [a.status for a in answers] == [200] * 3
    log = files(tmp_path / "nginx-0").access_log
    await asyncio.sleep(0.1)  # a line is written when its request ends, after the answer is sent
    assert_log_holds_no_query(log, searched=3)


def shipped_site(conf: Path, addresses: dict[str, str], port: int, log: Path) -> str:
    """A shipped configuration pointed at this machine: its services at ``addresses``, its
    listen port at ``port``, its access log in ``log``; nothing else changed."""
    text = conf.read_text()
    text = re.sub(r"server ([\w-]+):\d+", lambda m: f"server {addresses[m.group(1)]}", text)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace("/dev/stdout", str(log))
    assert str(port) in text and str(log) in text
    return text


@pytest.fixture(params=["compose", "edge"])
async def shipped(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, Upstream], Path]]:
    """The compose stack's or the Kubernetes edge's nginx file, run by the real nginx in front of
    upstreams named after its services: its URL, the upstreams, its access log."""
    conf = DOCKER / "nginx.conf" if request.param == "compose" else K8S_DIR / "base" / "edge-nginx.conf"
    ups = await upstreams("geo-api-read", "geo-api-write", "geo-friends")
    port, log = free_port(), tmp_path / "access.log"
    (tmp_path / "site.conf").write_text(shipped_site(conf, {n: u.address for n, u in ups.items()}, port, log))
    temp = " ".join(
        f"{kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "main.conf").write_text(
        f"{'user root; ' if is_root() else ''}pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; "
        f"daemon off; events {{}}\nhttp {{ access_log off; {temp} include {tmp_path}/site.conf; }}\n"
    )
    proc = start_nginx(tmp_path, tmp_path / "main.conf")
    url = f"http://127.0.0.1:{port}"
    try:
        await until_serving(url)
        for up in ups.values():
            up.paths.clear()
        yield url, ups, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for up in ups.values():
            await up.stop()


async def test_shipped_configs_limit_searches_hide_private_routes_and_queries(
    shipped: tuple[str, dict[str, Upstream], Path],
) -> None:
    url, ups, log = shipped
    await assert_not_public(url, ups)
    rate = Settings.from_env({}).http_rate_per_s
    started = time.monotonic()
    answers = await searches(url, 4 * rate, headers={"Authorization": f"Bearer {TOKEN}"})
    elapsed = time.monotonic() - started
    statuses = [a.status for a in answers]
    assert statuses[: 2 * rate + 1] == [200] * (2 * rate + 1), statuses
    assert 0 < statuses.count(429) and statuses.count(200) <= 2 * rate + 1 + int(elapsed * rate) + 1
    assert_refused(answers)
    assert ups["geo-api-read"].paths["/v1/search/nearby"] == statuses.count(200)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/v1/businesses/1") as resp:  # other reads are not limited
            assert resp.status == 200 and (await resp.json())["who"] == "geo-api-read"
        async with http.put(f"{url}/v1/businesses/1", data=b"x") as resp:
            assert resp.status == 200 and (await resp.json())["who"] == "geo-api-write"
    await asyncio.sleep(0.1)
    assert_log_holds_no_query(log, searched=statuses.count(200))


@pytest.mark.parametrize("shipped", ["compose"], indirect=True)
async def test_the_compose_stack_serves_each_protocol_document_from_its_tier(
    shipped: tuple[str, dict[str, Upstream], Path],
) -> None:
    # The Kubernetes edge sees neither: the Ingress sends /asyncapi.json to geo-friends itself.
    url, _, _ = shipped
    assert await documents(url) == {
        "/openapi.json": "geo-api-read",
        "/docs": "geo-api-read",
        "/asyncapi.json": "geo-friends",
        "POST /v1/me/locations": "geo-friends",
    }


async def test_shipped_configs_answer_no_instance_with_a_problem_document(
    shipped: tuple[str, dict[str, Upstream], Path],
) -> None:
    url, ups, _ = shipped
    await ups["geo-api-write"].stop()
    async with aiohttp.ClientSession() as http, http.put(f"{url}/v1/businesses/1", data=b"x") as resp:
        assert resp.status == 503 and resp.content_type == "application/problem+json"
        assert resp.headers["Retry-After"] == "1" and re.fullmatch(NGINX_ID, resp.headers["X-Request-Id"])
        body = await resp.json()
        assert body["type"] == "/problems/service-unavailable"
        assert body["instance"] == f"urn:request:{resp.headers['X-Request-Id']}"


async def assert_own_request_ids(url: str, ups: dict[str, Upstream], log: Path, *, ws: bool) -> None:
    """Every request reaches its instance with nginx's own X-Request-Id (a client's is
    replaced), a new one each time, which nginx's access line holds as rid=."""
    client = {"X-Request-Id": "client-chosen"}
    for up in ups.values():
        up.request_ids.clear()  # the probe of nginx's start
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/v1/businesses/1", headers=client) as resp:
            assert resp.status == 200
        async with http.put(f"{url}/v1/businesses/1", data=b"x", headers=client) as resp:
            assert resp.status == 200
        if ws:
            async with http.ws_connect(url + "/v1/friends/ws", headers=client) as socket:
                await socket.receive_str()
    ids = [i for up in ups.values() for i in up.request_ids]
    assert len(ids) == (3 if ws else 2), ids
    assert all(i is not None and re.fullmatch(NGINX_ID, i) for i in ids) and len(set(ids)) == len(ids), ids
    await asyncio.sleep(0.1)  # a line is written when its request ends
    text = log.read_text()
    for request_id in ids:
        assert f"rid={request_id}" in text, text[-2000:]


async def test_the_full_stack_sends_and_logs_its_own_request_ids(routed: Routed, tmp_path: Path) -> None:
    url, ups = routed
    await assert_own_request_ids(url, ups, files(tmp_path / "nginx-0").access_log, ws=True)


async def test_shipped_configs_send_and_log_their_own_request_ids(
    shipped: tuple[str, dict[str, Upstream], Path], request: pytest.FixtureRequest
) -> None:
    url, ups, log = shipped
    # The Kubernetes edge serves no WebSocket: the Ingress sends it to geo-friends directly.
    await assert_own_request_ids(url, ups, log, ws=request.node.callspec.params["shipped"] == "compose")


async def test_handshakes_refused_by_a_draining_instance_go_to_the_other(tmp_path: Path) -> None:
    """least_conn picks the instance that drains first (it has the fewest connections): its
    503 sends the handshake on, and no failure keeps the other instance out, whatever the
    number of handshakes in the storm."""
    ups = await upstreams("read-1", "write-1", "ws-1", "ws-2")
    ups["ws-1"].failing = True
    where = files(tmp_path / "nginx")
    where.temp.mkdir(parents=True)
    port = free_port()
    where.conf.write_text(
        render_config(
            listen=f"127.0.0.1:{port}",
            files=where,
            worker_user="root" if is_root() else None,
            pools=Pools(
                read=(ups["read-1"].address,),
                write=(ups["write-1"].address,),
                ws=(ups["ws-1"].address, ups["ws-2"].address),
            ),
        )
    )
    proc = subprocess.Popen(command(ensure_nginx(), where))
    try:
        url = f"http://127.0.0.1:{port}"
        await until_serving(url)
        async with aiohttp.ClientSession() as http:
            for _ in range(20):
                async with http.ws_connect(url.replace("http", "ws") + "/v1/friends/ws") as ws:
                    assert (await ws.receive_str()) == "ws-2"
        assert ups["ws-1"].hits["ws"] >= 1  # it was asked, and refused
        assert ups["ws-2"].hits["ws"] == 20
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for up in ups.values():
            await up.stop()
