"""``geo-stack up | down | status | env | run``: the local services geo needs, on loopback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deploy.stack.procs import StackError
from deploy.stack.stack import Stack


def default_root() -> Path:
    return Path(os.environ.get("GEO_STACK_DIR", ".stack"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="geo-stack",
        description="Local PostgreSQL primary + streaming replica (with PostGIS), Redis and a 3-node Redis Cluster.",
    )
    parser.add_argument("--dir", type=Path, default=None, help="stack folder (default: $GEO_STACK_DIR or .stack)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything (idempotent), apply migrations, write <dir>/env")
    up.add_argument("--port-base", type=int, default=None, help="first port to try on the first up (default 15400)")
    sub.add_parser("down", help="stop what this stack started, nothing else")
    sub.add_parser("status", help="say what runs where")
    sub.add_parser("env", help="print the endpoint variables (source it: eval \"$(geo-stack env)\")")
    sub.add_parser("run", help="up, then run the services in the foreground until Ctrl-C")
    args = parser.parse_args(argv)

    root = args.dir if args.dir is not None else default_root()
    stack = Stack(root, port_base=getattr(args, "port_base", None))
    try:
        if args.command == "up":
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
        elif args.command == "env":
            env_file = stack.layout.env_file
            if not env_file.is_file():
                print(f"geo-stack: {env_file} does not exist (run geo-stack up)", file=sys.stderr)
                return 1
            sys.stdout.write(env_file.read_text())
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
