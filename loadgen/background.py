"""A phone in the background: no socket, its positions uploaded over HTTP in batches.

Sent to the background (a ``background`` scenario event), a client has closed its socket; it
records a point every ``--interval`` as the OS lets a background app, and uploads what it
recorded (:mod:`loadgen.uploads`) at once and then every ``interval_s``: the event's, or in a
``paced`` run the one each upload's answer gives. Until it comes back to the foreground
(:mod:`loadgen.friends` then opens a socket and resumes), or the measured window ends.

The newest point of an upload is what friends are shown, as a socket's location is: the
ledger expects it of the friends in range when the upload is sent. A refused upload (429,
503, with ``Retry-After``) is counted as an error and its points go again with the next one.
"""

from __future__ import annotations

from collections.abc import Callable

from loadgen.clock import now, sleep_until
from loadgen.ledger import Ledger
from loadgen.pacing import next_send_at
from loadgen.phone import Client
from loadgen.stats import Recorder
from loadgen.uploads import Point, Uploader, uploads_url

#: After an upload that got no answer at all, the next is tried this much later, seconds.
RETRY_S = 1.0

#: The friends that must be shown a client's update now, and those to whom it is owed after
#: their resume (:meth:`loadgen.friends.FriendsRun.receivers`).
Receivers = Callable[[Client], tuple[list[int], list[int]]]


class Background:
    """Runs the background spells of a run's clients, over one HTTP session."""

    def __init__(self, recorder: Recorder, ledger: Ledger, receivers: Receivers, *, ws: str, paced: bool) -> None:
        self.recorder = recorder
        self.ledger = ledger
        self.receivers = receivers
        self.paced = paced
        self.uploader = Uploader(uploads_url(ws), recorder)

    async def close(self) -> None:
        await self.uploader.close()

    async def run(self, client: Client, until: float) -> None:
        """Upload ``client``'s points until it comes back to the foreground or ``until``."""
        back = min(until if client.background_until is None else client.background_until, until)
        self.recorder.count("backgrounded")
        client.interval_s = client.background_interval_s
        due = now()
        while True:
            await sleep_until(min(due, back))
            if now() >= back:
                break
            interval = await self._upload(client, due)
            due = next_send_at(client.sent_at, interval, now())
        client.background_until = None
        client.interval_s = client.base_interval_s
        if now() < until:
            self.recorder.count("foregrounds")

    async def _upload(self, client: Client, intended: float) -> float:
        """Record the points due, upload every point not yet taken; the interval until the next."""
        self._record_due(client)
        batch = client.points.batch()
        newest = batch[-1]
        sent = now()
        expected, owed = self.receivers(client)
        self.ledger.on_send(client.user_id, newest.timestamp, newest.seq, intended, sent, expected, owed)
        self.recorder.record("send_lag", sent - intended)
        client.sent_at = sent
        answer = await self.uploader.upload(client.token, batch)
        if answer.last_seq is not None:
            client.points.acknowledge(answer.last_seq)
        if answer.status == 200 and answer.interval_s is not None:
            if self.paced:
                client.interval_s = answer.interval_s
            return client.interval_s
        if answer.retry_after_s is not None:
            return answer.retry_after_s
        return RETRY_S

    def _record_due(self, client: Client) -> None:
        """The points recorded since the last: one every ``base_interval_s``, and one now."""
        t = now()
        if client.moved_at is not None:
            while client.moved_at + client.base_interval_s < t:
                self._record(client, client.moved_at + client.base_interval_s)
        self._record(client, t)

    def _record(self, client: Client, at: float) -> None:
        client.advance(at)
        client.seq += 1
        client.points.record(Point(client.seq, client.position[0], client.position[1], client.timestamp(at)))
