"""Shared command-line plumbing for the services: flags, settings, logging, the event loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from geo_common.settings import Settings, SettingsError, load_settings


def service_parser(prog: str, description: str, *, default_port: int) -> argparse.ArgumentParser:
    """The flags every service takes: ``--host`` and ``--port`` override the settings."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default=None, help="listen address (default: from settings, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help=f"listen port (default: from settings, {default_port})")
    return parser


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
) -> int:
    """Build the app from settings and serve it until SIGINT/SIGTERM, on uvloop when present."""
    if host is not None or port is not None:
        overrides: dict[str, Any] = {
            host_field: host or getattr(settings, host_field),
            port_field: port if port is not None else getattr(settings, port_field),
        }
        settings = replace(settings, **overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # uvloop is optional on platforms without it
        pass
    bind_host, bind_port = getattr(settings, host_field), getattr(settings, port_field)
    web.run_app(
        factory(settings), host=bind_host, port=bind_port, print=lambda _msg: print(
            f"{prog}: listening on {bind_host}:{bind_port}", flush=True
        ), access_log=None, shutdown_timeout=10,
    )
    return 0
