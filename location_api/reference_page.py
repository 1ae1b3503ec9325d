"""``GET /docs``: the API reference, a page that renders this instance's ``/openapi.json``.

Three files of our own under ``location_api/reference/`` (an HTML page, a script, a style
sheet; no framework, nothing fetched from elsewhere): the script reads ``/openapi.json`` and
lists every route with its parameters, body and responses, and the schemas they name. Served by
every instance, as ``/openapi.json`` is, so each documents the routes it serves. The files are a
fixed table read once: a request names one of them or gets a 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from aiohttp import web

from location_api.errors import NotFound
from location_api.handling import RouteTable

#: The page loads only its own script and style sheet and talks only to this instance.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated, so an upgrade's page and document show at once.
    "Cache-Control": "no-cache",
}
_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}


@lru_cache(maxsize=1)
def reference_files() -> Mapping[str, tuple[bytes, str]]:
    """The page's files by name: their bytes and ``Content-Type``."""
    folder = resources.files("location_api") / "reference"
    return {
        name: ((folder / name).read_bytes(), f"{_TYPES[name.rpartition('.')[2]]}; charset=utf-8")
        for name in ("index.html", "reference.js", "reference.css")
    }


def reference_openapi_paths() -> dict[str, Any]:
    """The OpenAPI path items of the page and its files, for the API's document."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    return {
        "/docs": {
            "get": {
                "summary": "the API reference: a page that renders this document",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
            }
        },
        "/docs/{name}": {
            "get": {
                "summary": "the reference page's script (reference.js) or style sheet (reference.css)",
                "parameters": [name],
                "responses": {
                    "200": {"description": "the file", "content": {"*/*": {"schema": {"type": "string"}}}},
                    "404": {"description": "no such file", "content": problem},
                },
            }
        },
    }


def add_reference_routes(routes: RouteTable) -> None:
    """Serve the reference page and its two files (read while the app is built)."""
    reference_files()
    routes.get("/docs", reference)
    routes.get("/docs/{name}", reference_file)


def _file(name: str) -> web.Response:
    body, content_type = reference_files()[name]
    return web.Response(body=body, headers={"Content-Type": content_type, **SECURITY_HEADERS})


async def reference(_request: web.Request) -> web.Response:
    """``GET /docs``: the page."""
    return _file("index.html")


async def reference_file(request: web.Request) -> web.Response:
    """``GET /docs/{name}``: the page's script or style sheet, or 404."""
    name = request.match_info["name"]
    if name == "index.html" or name not in reference_files():
        raise NotFound(f"no file {name[:60]!r} in the API reference")
    return _file(name)
