#!/usr/bin/env python3
"""``geo-healthcheck [URL]``: exit 0 when a geo service's ``/healthz`` answers 200, else 1.

The container image's HEALTHCHECK. Without a URL it checks the HTTP API on this container
(``http://127.0.0.1:$GEO_API_PORT/healthz``, port 8080 by default); the WebSocket tier's
containers pass ``http://127.0.0.1:8081/healthz``. Standard library only: the image has no
curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.parse
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{os.environ.get('GEO_API_PORT', '8080')}/healthz"
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        print(f"geo-healthcheck: {url}: not an http(s) URL", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=2.5) as response:  # noqa: S310 - http(s) only, checked above
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"geo-healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
