"""Capture what the services log, as the JSON lines ``GEO_LOG_FORMAT=json`` writes.

The handler is the one a service installs (:func:`geo_common.logs.log_handler`), on the root
logger at INFO for the duration of the block, so the lines are those a log collector would
read, request ids included. aiohttp's own access log (``aiohttp.access``, the full request
line) is left out: the services run with it off (:func:`geo_common.serve.serve`), aiohttp's
test servers with it on.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from geo_common.logs import log_handler

Lines = Callable[[], list[dict[str, Any]]]


@contextlib.contextmanager
def json_logs() -> Iterator[Lines]:
    """Yields a function returning every line written so far, each parsed as JSON (a line that
    is not one JSON object fails the test)."""
    stream = io.StringIO()
    handler = log_handler(stream, "json")
    root, aiohttp_access = logging.getLogger(), logging.getLogger("aiohttp.access")
    levels = root.level, aiohttp_access.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    aiohttp_access.setLevel(logging.WARNING)

    def lines() -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert all(isinstance(line, dict) for line in parsed)
        return parsed

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        aiohttp_access.setLevel(levels[1])
