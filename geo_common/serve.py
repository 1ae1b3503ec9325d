"""Shared command-line plumbing for the services: flags, settings, logging, the event loop.

``--workers N`` runs N processes of the same service on one port: each binds it with
``SO_REUSEPORT`` and the kernel spreads new connections over them. The first process
supervises them as every foreground command does (:mod:`geo_common.supervisor`): SIGINT or
SIGTERM stops them all, and when one exits the others are stopped and the group exits with
that worker's status (a process manager restarts the whole group).

Before anything listens, the settings are checked for serving
(:func:`geo_common.secrets_check.check_serving`): a key anyone could know outside development
mode, or development mode off loopback, is refused like a malformed setting (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from typing import Any

from aiohttp import web

from geo_common.logs import configure_logging
from geo_common.open_files import raise_open_files
from geo_common.secrets_check import check_serving
from geo_common.settings import Settings, SettingsError, load_settings
from geo_common.supervisor import Supervisor
from geo_common.version import add_version_argument


#: Makes the listening site: ``site(runner, host, port, reuse_port=..., backlog=...)``
#: (``aiohttp.web.TCPSite``, or a service's own, as geo-friends' :mod:`friends_ws.site`).
SiteFactory = Callable[..., web.BaseSite]

#: The longest request line the HTTP layer reads, bytes (aiohttp's default is 8,190). A
#: longer URL is still parsed and answered by the service (a problem document naming the
#: parameter at fault), not refused by the parser in plain text; beyond this it is.
MAX_REQUEST_LINE = 32_768
#: What every service's ``aiohttp.web.AppRunner`` is given (tests start their servers with it).
RUNNER_OPTIONS: dict[str, Any] = {"max_line_size": MAX_REQUEST_LINE}

#: Connections the kernel queues before the server accepts them (aiohttp's default, 128, drops
#: handshakes when a reconnect storm lands on an instance; the kernel caps it at
#: ``net.core.somaxconn``).
LISTEN_BACKLOG = 4096


def service_parser(prog: str, description: str, *, default_port: int) -> argparse.ArgumentParser:
    """The flags every service takes: ``--host`` and ``--port`` override the settings; ``--version``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_version_argument(parser)
    parser.add_argument("--host", default=None, help="listen address (default: from settings, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help=f"listen port (default: from settings, {default_port})")
    parser.add_argument(
        "--workers", type=_workers, default=1, help="processes sharing the port through SO_REUSEPORT (default 1)"
    )
    return parser


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"--workers must be from 1 to 64, got {text!r}")
    return value


def settings_or_exit(prog: str) -> Settings:
    """Load settings for a command-line entry point; on a bad value print it and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(
    prog: str,
    settings: Settings,
    factory: Callable[[Settings], web.Application],
    *,
    host_field: str,
    port_field: str,
    host: str | None,
    port: int | None,
    workers: int = 1,
    site: SiteFactory = web.TCPSite,
) -> int:
    """Build the app from settings and serve it until SIGINT/SIGTERM, on uvloop when present.

    With ``workers`` > 1 the app is built and served in that many forked processes, each
    binding the port with ``SO_REUSEPORT``; this process supervises them.

    Returns:
        The exit status: 2, with a one-line message, when the settings are not fit to serve
        (:func:`~geo_common.secrets_check.check_serving`); otherwise once served.
    """
    if host is not None or port is not None:
        overrides: dict[str, Any] = {
            host_field: host or getattr(settings, host_field),
            port_field: port if port is not None else getattr(settings, port_field),
        }
        settings = replace(settings, **overrides)
    try:
        check_serving(settings, host_field=host_field, flag="--host" if host else None)
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # uvloop is optional on platforms without it
        pass
    open_files = raise_open_files()
    bind_host, bind_port = getattr(settings, host_field), getattr(settings, port_field)
    if workers > 1:
        return _supervise(
            prog,
            workers,
            lambda: _run(prog, settings, factory, bind_host, bind_port, open_files, reuse_port=True, site=site),
        )
    _run(prog, settings, factory, bind_host, bind_port, open_files, reuse_port=False, site=site)
    return 0


def _run(
    prog: str,
    settings: Settings,
    factory: Callable[[Settings], web.Application],
    host: str,
    port: int,
    open_files: int,
    *,
    reuse_port: bool,
    site: SiteFactory,
) -> None:
    """Serve until SIGINT or SIGTERM (``web.GracefulExit``), as ``aiohttp.web.run_app`` does,
    on a site of the service's choice."""

    async def run() -> None:
        runner = web.AppRunner(
            factory(settings), handle_signals=True, access_log=None, shutdown_timeout=10, **RUNNER_OPTIONS
        )
        await runner.setup()  # SIGINT and SIGTERM raise GracefulExit from here on
        try:
            await site(runner, host, port, reuse_port=reuse_port, backlog=LISTEN_BACKLOG).start()
            print(
                f"{prog}: listening on {host}:{port} (pid {os.getpid()}, up to {open_files:,} open files)", flush=True
            )
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(run())
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()  # the runner's cleanup first: shutdown hooks, connections closed
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(main)
        rest = asyncio.all_tasks(loop)
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _supervise(prog: str, workers: int, run_one: Callable[[], None]) -> int:
    """Fork ``workers`` processes running ``run_one`` and supervise them
    (:class:`geo_common.supervisor.Supervisor`): 0 once stopped by a signal, else the status
    of the worker whose exit stopped the others."""
    with Supervisor(prog, together=True) as supervisor:  # peers: their drains overlap
        pids = [supervisor.fork(run_one) for _ in range(workers)]
        print(f"{prog}: {workers} workers (pids {', '.join(map(str, pids))})", flush=True)
        return supervisor.watch()
