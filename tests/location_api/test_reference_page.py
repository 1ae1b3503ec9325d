"""The API reference page (``GET /docs``): served by every instance, loading only its own files,
which render ``/openapi.json`` (tests/map_page/test_reference_page.py renders it in Chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from geo_common.settings import Settings

from .conftest import Api, stop_api, throwaway_database


@pytest.fixture(scope="module")
async def writer(settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Api]:
    """A write instance (no indexes, no map page): the reference is served there too."""
    async with throwaway_database(settings, "docs", places=10) as small:
        api = await serve(replace(small, api_role="write"))
        yield api
        await stop_api(api)


async def test_the_page_loads_its_own_script_which_reads_the_openapi_document(writer: Api) -> None:
    async with writer.http.get("/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert '<script src="/docs/reference.js" defer></script>' in page and 'href="/openapi.json"' in page
    assert "http://" not in page and "https://" not in page
    async with writer.http.get("/docs/reference.js") as resp:
        assert resp.status == 200 and resp.content_type == "text/javascript"
        script = await resp.text()
    assert 'fetch("/openapi.json"' in script and "innerHTML" not in script
    async with writer.http.get("/docs/reference.css") as resp:
        assert resp.status == 200 and resp.content_type == "text/css"


@pytest.mark.parametrize("name", ["index.html", "nothing.js", "..%2Freference_page.py", "reference.js.map"])
async def test_any_other_file_is_a_404_problem(writer: Api, name: str) -> None:
    async with writer.http.get(f"/docs/{name}") as resp:
        assert resp.status == 404 and resp.content_type == "application/problem+json"


async def test_the_openapi_document_describes_the_page(writer: Api) -> None:
    async with writer.http.get("/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert "/docs" in paths and "/docs/{name}" in paths
