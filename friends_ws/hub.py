"""The process's side of pub/sub: small parts, built by the app factory, started and closed here.

Each part does one job (as centrifuge's Hub, Node and Client are separate types):

* :class:`~friends_ws.broker.Broker`: one pub/sub backend per region, subscriptions
  confirmed by Redis, publishing under a circuit breaker;
* :class:`~friends_ws.subscriptions.Subscriptions`: the connections here, their users'
  control channels, and where each arriving message goes;
* :class:`~friends_ws.fanout.Fanout`: the friends followed here, their latest locations and
  expiry, and the offer of each location-channel message to its followers;
* :class:`~friends_ws.publisher.Publisher`: publishing on a user's location and control channels;
* :class:`~friends_ws.cell_channels.CellChannels`: the cells of nearby-stranger discovery;
* :class:`~friends_ws.resync.Resync`: catching up after a pub/sub reconnection;
* :class:`~friends_ws.flushing.FlushQueue`: one write per connection per loop iteration;
* :class:`~friends_ws.keepalive.Keepalive`: one loop that pings every silent connection.

The hub only holds them, starts them in order (the backends first, then what subscribes
through them, then the loops) and closes them in reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from friends_ws.broker import Broker
from friends_ws.cell_channels import CellChannels
from friends_ws.clock import now_ms
from friends_ws.fanout import Fanout
from friends_ws.flushing import FlushQueue
from friends_ws.keepalive import Keepalive
from friends_ws.metrics import Stats
from friends_ws.publisher import Publisher
from friends_ws.resync import Resync
from friends_ws.subscriptions import Subscriptions
from friends_ws.tasks import Tasks


@dataclass(frozen=True, slots=True)
class Hub:
    """The pub/sub side of one process.

    Attributes:
        stats: the process's counters.
        broker: the pub/sub backends.
        subscriptions: the connections here and the routing of messages to them.
        fanout: the friends followed here.
        publisher: publishing on users' channels.
        cells: the discovery cells listened to here.
        resync: the catch-up after a reconnection.
        flush: the flush queue of every connection.
        keepalive: the open connections' links and their keepalive loop.
        tasks: the background work of all of them, cancelled on :meth:`close`.
    """

    stats: Stats
    broker: Broker
    subscriptions: Subscriptions
    fanout: Fanout
    publisher: Publisher
    cells: CellChannels
    resync: Resync
    flush: FlushQueue
    keepalive: Keepalive
    tasks: Tasks

    async def start(self) -> None:
        """Start the pub/sub backends, the erasures subscription, and the expiry and keepalive loops."""
        await self.broker.start(on_message=self.subscriptions.on_message, on_restored=self.resync.soon)
        await self.subscriptions.start()
        self.tasks.spawn(self.fanout.run_expiry(now_ms), name="friends-expiry")
        self.tasks.spawn(self.cells.run_expiry(now_ms), name="strangers-expiry")
        if self.keepalive.interval_s is not None:
            self.tasks.spawn(self.keepalive.run(), name="friends-keepalive")

    async def close(self) -> None:
        """Stop the loops and whatever runs in the background, then the backends."""
        await self.tasks.close()
        await self.broker.close()
