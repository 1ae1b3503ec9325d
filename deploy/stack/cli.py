"""``geo-stack up | down | status | env | run``: the local services geo needs, on loopback.

``--full`` (on ``up`` and ``run``) adds the multi-instance tier behind nginx (:mod:`deploy.stack.full`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deploy.stack.procs import StackError
from deploy.stack.stack import Stack
from geo_common.version import add_version_argument


def default_root() -> Path:
    return Path(os.environ.get("GEO_STACK_DIR", ".stack"))


def _full_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full",
        action="store_true",
        help="also run 2 read and 1 write API instances and 2 WebSocket instances behind nginx (docs/deploy.md)",
    )
    parser.add_argument(
        "--entry-port",
        type=int,
        default=None,
        help="with --full: nginx's port on 127.0.0.1 (default: as before, else 8000)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="geo-stack",
        description="Local PostgreSQL primary + streaming replica (with PostGIS), Redis and a 3-node Redis Cluster.",
    )
    add_version_argument(parser)
    parser.add_argument("--dir", type=Path, default=None, help="stack folder (default: $GEO_STACK_DIR or .stack)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything (idempotent), apply migrations, write <dir>/env")
    up.add_argument("--port-base", type=int, default=None, help="first port to try on the first up (default 15400)")
    _full_options(up)
    sub.add_parser("down", help="stop what this stack started, nothing else")
    sub.add_parser("status", help="say what runs where")
    sub.add_parser("env", help='print the endpoint variables (source it: eval "$(geo-stack env)")')
    sub.add_parser(
        "failover",
        help="make the replica the primary (stopping the old primary cleanly if it runs), then rebuild "
        "the old primary as its streaming replica; rewrites <dir>/env",
    )
    run = sub.add_parser("run", help="up, then run the services in the foreground until Ctrl-C")
    _full_options(run)
    args = parser.parse_args(argv)

    root = args.dir if args.dir is not None else default_root()
    stack = Stack(root, port_base=getattr(args, "port_base", None))
    try:
        if args.command == "up" and args.full:
            stack.up_full(entry_port=args.entry_port)
        elif args.command == "up":
            stack.up()
        elif args.command == "down":
            stopped = stack.down()
            print(f"geo-stack: stopped {', '.join(stopped)}" if stopped else "geo-stack: nothing was running")
        elif args.command == "status":
            rows = stack.status()
            if not rows:
                print(f"geo-stack: no stack in {root} (run geo-stack up)")
                return 1
            for row in rows:
                state = f"pid {row.pid}" if row.pid else "stopped"
                print(f"{row.name:<24} {row.address:<18} {state:<12} {row.detail}".rstrip())
            return 0 if all(r.pid for r in rows) else 1
        elif args.command == "failover":
            stack.failover()
        elif args.command == "env":
            env_file = stack.layout.env_file
            if not env_file.is_file():
                print(f"geo-stack: {env_file} does not exist (run geo-stack up)", file=sys.stderr)
                return 1
            sys.stdout.write(env_file.read_text())
        elif args.command == "run" and args.full:
            return stack.up_full(entry_port=args.entry_port).foreground()
        elif args.command == "run":
            from deploy.stack.services import run_services

            env = stack.up()
            return run_services(env)
    except StackError as exc:
        print(f"geo-stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
