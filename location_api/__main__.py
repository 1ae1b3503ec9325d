"""``geo-api``: serve the HTTP API, load the demo data, or apply the migrations.

``geo-api [--host H] [--port P] [--role read|write|all]`` serves;
``geo-api load-demo [--synthetic N] [--if-empty]`` loads the GeoNames businesses;
``geo-api migrate`` applies the schema migrations to the primary.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace

import asyncpg

from geo_common.migrate import MigrationError, apply_migrations
from geo_common.serve import serve, service_parser, settings_or_exit
from location_api.app import create_app
from location_api.demo import load_demo
from location_api.site import ApiSite
from location_api.contract import Role


def main(argv: list[str] | None = None) -> int:
    parser = service_parser("geo-api", "Serve the business search HTTP API.", default_port=8080)
    parser.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=None,
        help="serve reads (search, GET), writes (POST/PUT/DELETE) or all (default: GEO_API_ROLE, all)",
    )
    commands = parser.add_subparsers(dest="command", metavar="{load-demo,migrate}")
    demo = commands.add_parser("load-demo", help="load the 144,563 GeoNames places as businesses (COPY)")
    demo.add_argument("--synthetic", type=int, default=0, metavar="N", help="also add N synthetic businesses")
    demo.add_argument("--if-empty", action="store_true", help="do nothing when businesses already exist")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic businesses (default 0)")
    commands.add_parser("migrate", help="apply the schema migrations to the primary")
    args = parser.parse_args(argv)
    settings = settings_or_exit("geo-api")

    if args.command == "load-demo":
        if args.synthetic < 0:
            parser.error("--synthetic must be 0 or more")
        try:
            asyncio.run(
                load_demo(settings.pg_primary, synthetic=args.synthetic, if_empty=args.if_empty, seed=args.seed)
            )
        except asyncpg.UndefinedTableError:
            print(
                "geo-api: the businesses table is missing; run geo-api migrate (or geo-stack up) first", file=sys.stderr
            )
            return 1
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"geo-api: load-demo failed: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "migrate":
        try:
            applied = asyncio.run(apply_migrations(settings.pg_primary))
        except (MigrationError, OSError, asyncpg.PostgresError) as exc:
            print(f"geo-api: {exc}", file=sys.stderr)
            return 1
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
        print(f"geo-api: {len(applied)} migrations applied" + (f" ({names})" if names else ""))
        return 0
    if args.role is not None:
        settings = replace(settings, api_role=args.role)
    return serve(
        "geo-api",
        settings,
        create_app,
        host_field="api_host",
        port_field="api_port",
        host=args.host,
        port=args.port,
        workers=args.workers,
        site=ApiSite,
    )


if __name__ == "__main__":
    sys.exit(main())
