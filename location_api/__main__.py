"""``geo-api``: serve the HTTP API."""

from __future__ import annotations

import sys

from geo_common.serve import serve, service_parser, settings_or_exit
from location_api.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = service_parser("geo-api", "Serve the business search HTTP API.", default_port=8080)
    args = parser.parse_args(argv)
    settings = settings_or_exit("geo-api")
    return serve("geo-api", settings, create_app, host_field="api_host", port_field="api_port", host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
