"""``geo-stack up | down | status | env | signing-key | failover | run | ring``: the local services
geo needs, on loopback.

``--full`` (on ``up`` and ``run``) adds the multi-instance tier behind nginx (:mod:`deploy.stack.full`).
``run`` checks every port it will serve on before it starts anything, and refuses, naming the
process holding a taken one (:mod:`deploy.stack.ports`). ``ring`` edits the ring pub/sub
backend's nodes in etcd (:mod:`deploy.stack.ring_cli`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deploy.stack import ring_cli
from deploy.stack.procs import StackError
from deploy.stack.stack import Stack
from geo_common.version import add_version_argument


def default_root() -> Path:
    return Path(os.environ.get("GEO_STACK_DIR", ".stack"))


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a whole number, got {text!r}") from None
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"a port is from 1 to 65535, got {text!r}")
    return value


def _full_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full",
        action="store_true",
        help="also run 2 read and 1 write API instances and 2 WebSocket instances behind nginx (docs/deploy.md)",
    )
    parser.add_argument(
        "--entry-port",
        type=_port,
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
    up.add_argument("--port-base", type=_port, default=None, help="first port to try on the first up (default 15400)")
    _full_options(up)
    sub.add_parser("down", help="stop what this stack started, nothing else")
    sub.add_parser("status", help="say what runs where")
    sub.add_parser("env", help='print the endpoint variables (source it: eval "$(geo-stack env)")')
    sub.add_parser(
        "signing-key",
        help="print the key the services sign local tokens with (GEO_JWT_SECRET if set, else the stack's), "
        "for local load tests: geo-loadgen friends --signing-key-file <(geo-stack signing-key)",
    )
    sub.add_parser(
        "failover",
        help="make the replica the primary (stopping the old primary cleanly if it runs), then rebuild "
        "the old primary as its streaming replica; rewrites <dir>/env",
    )
    run = sub.add_parser(
        "run",
        help="up, then run the services in the foreground until Ctrl-C; refuses (exit 1, starting nothing) "
        "when a port it would serve on is taken",
    )
    _full_options(run)
    ring_cli.configure(sub.add_parser("ring", help=ring_cli.HELP))
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
        elif args.command == "ring":
            return ring_cli.run(args)
        elif args.command == "failover":
            stack.failover()
        elif args.command == "env":
            env_file = stack.layout.env_file
            if not env_file.is_file():
                print(f"geo-stack: {env_file} does not exist (run geo-stack up)", file=sys.stderr)
                return 1
            sys.stdout.write(env_file.read_text())
        elif args.command == "signing-key":
            print(stack.signing_key(os.environ))
        elif args.command == "run" and args.full:
            return stack.up_full(entry_port=args.entry_port, exclusive=True).foreground()
        elif args.command == "run":
            from deploy.stack import services

            environ = dict(os.environ)
            # A local run is a development run: the map page's dev sign-in works (GEO_DEV=0 turns it off).
            environ.setdefault("GEO_DEV", "1")
            planned = services.plan(environ)
            services.check_ports(planned)
            return services.run_services(stack.up(), planned, environ)
    except StackError as exc:
        print(f"geo-stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("geo-stack: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
