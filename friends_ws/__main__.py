"""``geo-friends``: serve the WebSocket tier."""

from __future__ import annotations

import sys

from geo_common.serve import serve, service_parser, settings_or_exit
from friends_ws.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = service_parser("geo-friends", "Serve the nearby-friends WebSocket tier.", default_port=8081)
    args = parser.parse_args(argv)
    settings = settings_or_exit("geo-friends")
    return serve("geo-friends", settings, create_app, host_field="ws_host", port_field="ws_port", host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
