"""``geo-stack ring add URL | remove URL | status``: the ring pub/sub backend's nodes in etcd.

The etcd is ``GEO_ETCD_URL`` (``.stack/env`` has it once ``geo-stack up`` started the stack's
etcd), the keys those of ``GEO_REDIS_NAMESPACE`` and the region (``--region``, default: the
default region). ``add`` and ``remove`` change the configured members and the live ring in
one transaction; every geo-friends instance watching it re-homes its channels at once
(docs/pubsub.md#the-ring-in-etcd). A malformed URL is refused before etcd is asked (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from deploy.stack.procs import StackError
from geo_common.redact import redact_passwords
from geo_common.regions import DEFAULT_REGION
from geo_common.settings import Settings, SettingsError, load_settings
from pubsub.etcd_ring import EtcdRing, etcd_client
from pubsub.ring_doc import RingDoc, RingDocError, RingKeys, check_node

#: Every etcd request's deadline, seconds.
TIMEOUT_S = 5.0


def _node(text: str) -> str:
    try:
        return check_node(text)
    except RingDocError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: ``geo-stack ring``'s line in ``geo-stack --help``.
HELP = "add, remove or show the ring pub/sub backend's nodes in etcd (GEO_ETCD_URL)"


def configure(ring: argparse.ArgumentParser) -> None:
    """Give ``geo-stack ring``'s parser its commands."""
    commands = ring.add_subparsers(dest="ring_command", required=True)
    for name, what in (("add", "add a node to the ring"), ("remove", "take a node out of the ring")):
        command = commands.add_parser(name, help=what)
        command.add_argument("url", type=_node, metavar="URL", help="the node, redis://[user:password@]host:port")
        command.add_argument("--region", default=None, help="the region (default: the default region)")
    status = commands.add_parser("status", help="print the members, the live ring, their versions and the leader")
    status.add_argument("--region", default=None, help="the region (default: the default region)")


def run(args: argparse.Namespace) -> int:
    """Carry out ``geo-stack ring ...``; prints what it did or found.

    Raises:
        StackError: no etcd configured, etcd did not answer, or the change was refused.
    """
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        raise StackError(str(exc)) from None
    if not settings.etcd_url:
        raise StackError(
            "GEO_ETCD_URL is not set: geo-stack up starts etcd when GEO_PUBSUB_BACKEND=ring (or a region uses the ring)"
        )
    names = [r.name for r in settings.regions] or [DEFAULT_REGION]
    region = args.region or names[0]
    if region not in names:
        raise StackError(f"no region {region!r}; the regions are {', '.join(names)}")
    keys = RingKeys(settings.redis_namespace, region)
    try:
        lines = asyncio.run(_run(settings, keys, args))
    except RingDocError as exc:
        raise StackError(f"ring {region}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - etcd's client raises many kinds; all mean the same here
        where = redact_passwords(settings.etcd_url)
        raise StackError(
            f"etcd at {where} did not answer ({type(exc).__name__}): {redact_passwords(str(exc))}"
        ) from None
    for line in lines:
        print(redact_passwords(line))
    return 0


async def _run(settings: Settings, keys: RingKeys, args: argparse.Namespace) -> list[str]:
    async with etcd_client(settings.etcd_url, timeout_s=TIMEOUT_S) as client:
        ring = EtcdRing(client, keys)
        if args.ring_command == "status":
            stored_members, stored_live = await ring.read(keys.members), await ring.read(keys.live)
            leader = await ring.leader()
            return [
                f"ring {keys.region} (namespace {keys.namespace}) in {settings.etcd_url}",
                _row("members", stored_members.doc),
                _row("live", stored_live.doc),
                f"{'leader':<8} {leader or 'none (no geo-friends runs the health check)'}",
            ]
        if args.ring_command == "add":
            if await ring.seed([args.url]):
                return [
                    f"ring {keys.region}: stored with its first node, {args.url}",
                    _row("live", RingDoc((args.url,))),
                ]
            members, live = await ring.edit(add=args.url)
            return [f"ring {keys.region}: added {args.url}", _row("members", members), _row("live", live)]
        members, live = await ring.edit(remove=args.url)
        return [f"ring {keys.region}: removed {args.url}", _row("members", members), _row("live", live)]


def _row(name: str, doc: RingDoc | None) -> str:
    if doc is None:
        return f"{name:<8} none"
    return f"{name:<8} version {doc.version}: {', '.join(doc.nodes)}"
