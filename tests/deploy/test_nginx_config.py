"""The full stack's nginx configuration: rendered text, and the real nginx routing with it.

The routing test runs the real nginx with the rendered configuration in front of small aiohttp
servers that count what reaches them, so retries can be counted exactly.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from deploy.stack.binaries import ensure_nginx
from deploy.stack.layout import Layout
from deploy.stack.nginx import NginxFiles, Pools, command, render_config
from deploy.stack.procs import is_root


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
    assert text.count("max_fails=2 fail_timeout=5s") == 5
    read = text[text.index("location / {") : text.index("location @write")]
    write = text[text.index("location @write") : text.index("location @unavailable")]
    ws = text[text.index("location = /v1/friends/ws") : text.index("location / {")]
    assert "proxy_pass http://geo_read;" in read and "proxy_next_upstream error timeout http_502 http_503;" in read
    assert "if ($request_method !~ ^(GET|HEAD)$)" in read
    assert "proxy_pass http://geo_write;" in write and "proxy_next_upstream off;" in write
    assert "non_idempotent" not in text
    assert "proxy_set_header Upgrade $http_upgrade;" in ws and "proxy_read_timeout 3600s;" in ws
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """A server that counts requests and answers 200, or 503 while ``failing``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits: Counter[str] = Counter()
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
        body = await request.read()
        if self.failing:
            return web.Response(status=503, text="down")
        return web.json_response({"who": self.name, "body": body.decode()})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
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


@pytest.fixture
async def routed(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, Upstream]]]:
    ups = {n: Upstream(n) for n in ("read-1", "read-2", "write-1", "write-2", "ws-1")}
    for up in ups.values():
        await up.start()
    where = files(tmp_path)
    where.temp.mkdir(parents=True)
    port = free_port()
    where.conf.write_text(
        render_config(
            listen=f"127.0.0.1:{port}",
            files=where,
            worker_user="root" if is_root() else None,
            pools=Pools(
                read=(ups["read-1"].address, ups["read-2"].address),
                write=(ups["write-1"].address, ups["write-2"].address),
                ws=(ups["ws-1"].address,),
            ),
        )
    )
    proc = subprocess.Popen(command(ensure_nginx(), where))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(url + "/healthz"):
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        for up in ups.values():
            up.hits.clear()
        yield url, ups
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for up in ups.values():
            await up.stop()


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
        assert (await resp.json())["type"] == "/problems/service-unavailable"
