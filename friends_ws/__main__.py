"""``geo-friends``: serve the WebSocket tier; ``geo-friends purge-history``: apply retention now
(the server also does it by itself, see :mod:`friends_ws.retention`)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys

import asyncpg
from aiohttp import web

from friends_ws.app import create_app
from friends_ws.keys import drain_key, hub_key, regions_key, settings_key
from friends_ws.retention import cutoff
from friends_ws.site import FriendsSite
from friends_ws.ring_discovery import uses_etcd
from geo_common.history_db import purge_history
from geo_common.redact import redact_passwords
from geo_common.regions import RegionMap
from geo_common.serve import serve, service_parser, settings_or_exit
from geo_common.settings import Settings, SettingsError, load_settings
from geo_common.tuning import ProcessTuning
from pubsub import RingPubSub

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["purge-history"]:
        return purge_main(args[1:])
    parser = service_parser(
        "geo-friends",
        "Serve the nearby-friends WebSocket tier (or: geo-friends purge-history --help).",
        default_port=8081,
    )
    parsed = parser.parse_args(args)
    settings = settings_or_exit("geo-friends")
    return serve(
        "geo-friends",
        settings,
        _process_app,
        host_field="ws_host",
        port_field="ws_port",
        host=parsed.host,
        port=parsed.port,
        workers=parsed.workers,
        site=FriendsSite,
    )


def _process_app(settings: Settings) -> web.Application:
    """The app, plus what concerns the whole process: SIGHUP, SIGTERM's drain, and its tuning
    (GEO_PROCESS_TUNING)."""
    app = create_app(settings)
    app.on_startup.append(_install_sighup)
    app.on_startup.append(_install_drain)
    app.on_startup.append(_tune_process)
    return app


async def _tune_process(app: web.Application) -> None:
    """Once the app has started: keep the collector from pausing the fan-out for seconds
    (:meth:`geo_common.tuning.ProcessTuning.at_server_start`)."""
    ProcessTuning(app[settings_key].process_tuning).at_server_start()


async def _install_sighup(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload_ring(app)))


async def _install_drain(app: web.Application) -> None:
    """SIGTERM drains the connections over GEO_WS_DRAIN_S (:mod:`friends_ws.drain`), then stops
    the server as aiohttp's own handler would; SIGINT still stops it at once. With
    GEO_WS_DRAIN_S=0, aiohttp's handler stays: every connection is closed with 1001 at once."""
    if app[settings_key].ws_drain_s == 0:
        return
    loop = asyncio.get_running_loop()

    def stop() -> None:
        loop.call_soon(_graceful_exit)  # raised from a callback, as aiohttp's handler does

    loop.add_signal_handler(signal.SIGTERM, lambda: app[drain_key].begin(app[hub_key].keepalive, done=stop))


def _graceful_exit() -> None:
    raise web.GracefulExit()


async def reload_ring(app: web.Application) -> None:
    """Re-read the settings (env file and environment) and apply ring membership changes.

    Every process of a deployment must get its SIGHUP within GEO_PUBSUB_RING_HANDOFF_S of the
    others (see docs/pubsub.md); nothing else in the settings changes at run time. With
    GEO_ETCD_URL, the rings come from etcd and SIGHUP leaves them alone.
    """
    if uses_etcd(app[settings_key], app[regions_key]):
        log.info("geo-friends: SIGHUP: the rings come from etcd (GEO_ETCD_URL); use geo-stack ring to change them")
        return
    try:
        fresh = RegionMap.from_settings(load_settings())
    except SettingsError as exc:
        log.error("geo-friends: SIGHUP ignored: %s", exc)
        return
    hub = app[hub_key]
    current = app[regions_key]
    for region in fresh.regions:
        if region.pubsub_backend != "ring" or region.name not in current.names:
            continue  # only ring membership changes at run time
        bus = hub.broker.bus(region.name)
        if isinstance(bus, RingPubSub) and set(bus.nodes) != set(region.pubsub_nodes):
            moved = await hub.broker.set_ring(region.name, region.pubsub_nodes)
            log.info(
                "geo-friends: region %s now rings %s (%d channel(s) re-homed)",
                region.name,
                ", ".join(map(redact_passwords, region.pubsub_nodes)),
                moved,
            )


def purge_main(argv: list[str]) -> int:
    """``geo-friends purge-history [--days N]``: delete location history past retention."""
    parser = argparse.ArgumentParser(
        prog="geo-friends purge-history",
        description="Delete location history older than the retention (GEO_HISTORY_RETENTION_DAYS).",
    )
    parser.add_argument(
        "--days", type=int, default=None, help="retention in days (default: GEO_HISTORY_RETENTION_DAYS)"
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit("geo-friends purge-history")
    days = args.days if args.days is not None else settings.history_retention_days
    if days < 0:
        parser.error("--days must not be negative")
    deleted = asyncio.run(purge(settings, days=days))
    print(f"geo-friends purge-history: deleted {deleted} row(s) recorded more than {days} day(s) ago")
    return 0


async def purge(settings: Settings, *, days: int, now: dt.datetime | None = None) -> int:
    """Delete history older than ``days`` days on the primary; returns the rows deleted."""
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        return await purge_history(conn, older_than=cutoff(days, now))
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
