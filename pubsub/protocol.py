"""Sans-I/O core of one subscriber connection: commands out, events in.

:class:`SubscriberProtocol` owns everything about a Redis pub/sub connection that is not
I/O: the set of channels it should be subscribed to, the RESP encoding of batched
``(S)SUBSCRIBE`` / ``(S)UNSUBSCRIBE`` / ``PING`` / ``AUTH`` commands, and the parsing
(with hiredis, in C) of what Redis sends back into :class:`Message`, :class:`Acknowledged`
and :class:`Lost` events. The asyncio adapter in :mod:`pubsub.node` feeds it bytes with
:meth:`~SubscriberProtocol.receive_data` and writes out :meth:`~SubscriberProtocol.data_to_send`,
like websockets' ``protocol.receive_data -> events_received -> data_to_send``.

Replies are matched to commands in order: Redis answers commands one by one, with one
confirmation per channel, while messages (and, in a cluster, a ``sunsubscribe`` push when a
slot moves away) may arrive in between. A confirmation that no pending command expects is
therefore a push: an unsolicited unsubscribe reported as :class:`Lost`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Literal

import hiredis

from pubsub.errors import InvalidChannel

#: Channels per ``SUBSCRIBE`` command: large enough to make hundreds of channels one write,
#: small enough that one command never holds the Redis event loop for long.
DEFAULT_BATCH = 512
#: Seconds between a subscriber connection's probes (``PING``), and how long one may take to
#: be answered before the connection counts as lost.
DEFAULT_PROBE_INTERVAL_S = 5.0
DEFAULT_PROBE_TIMEOUT_S = 5.0
#: Seconds a connection to a node may take to open (and log in).
DEFAULT_CONNECT_TIMEOUT_S = 5.0

CommandKind = Literal["subscribe", "unsubscribe", "ping", "auth"]


@dataclass(frozen=True, slots=True)
class Message:
    """A message published on a subscribed channel."""

    channel: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """Redis answered a whole command (every channel confirmed), or refused it.

    Attributes:
        command_id: what :meth:`SubscriberProtocol.subscribe` (and friends) returned.
        kind: the command's kind.
        channels: the channels it carried.
        error: Redis's error reply, or None when it succeeded.
    """

    command_id: int
    kind: CommandKind
    channels: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Lost:
    """Redis dropped a subscription on its own (a cluster slot moved to another node)."""

    channel: str


Event = Message | Acknowledged | Lost


def encode_command(args: Sequence[bytes]) -> bytes:
    """Encode one command as a RESP array of bulk strings.

    Args:
        args: the command name and its arguments, already bytes.

    Returns:
        The bytes to write to the socket.
    """
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n" % len(arg))
        parts.append(arg)
        parts.append(b"\r\n")
    return b"".join(parts)


def encode_channel(channel: str) -> bytes:
    """A channel name as the bytes Redis sees.

    Raises:
        InvalidChannel: the name is empty or not valid UTF-8 text.
    """
    if not channel:
        raise InvalidChannel("a channel name must not be empty")
    try:
        return channel.encode()
    except UnicodeEncodeError:
        raise InvalidChannel(f"channel {channel!r} is not encodable as UTF-8") from None


@dataclass(slots=True)
class _Pending:
    id: int
    kind: CommandKind
    channels: tuple[bytes, ...]
    names: tuple[str, ...]
    confirmed: int = 0


class SubscriberProtocol:
    """State of one subscriber connection, with no I/O.

    Args:
        sharded: use ``SSUBSCRIBE``/``SUNSUBSCRIBE`` (Redis Cluster sharded pub/sub) instead
            of ``SUBSCRIBE``/``UNSUBSCRIBE``.
        group: for sharded commands, maps a channel's bytes to its hash slot; channels in
            one command must share a slot, so a batch becomes one command per slot, all
            pipelined in one write. None puts up to ``batch`` channels in each command.
        batch: the most channels in one command.
    """

    def __init__(
        self, *, sharded: bool = False, group: Callable[[bytes], int] | None = None, batch: int = DEFAULT_BATCH
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.sharded = sharded
        self.group = group
        self.batch = batch
        #: The channels this connection should be subscribed to (confirmed or in flight).
        self.channels: set[str] = set()
        self._reader = hiredis.Reader()
        self._out: list[bytes] = []
        self._pending: deque[_Pending] = deque()
        self._ids = count(1)
        self._events: list[Event] = []

    # --- what the application asks for ------------------------------------------------

    def subscribe(self, channels: Iterable[str]) -> list[int]:
        """Add channels to the subscription set and queue the commands for the new ones.

        Args:
            channels: channel names; those already subscribed are skipped.

        Returns:
            The ids of the queued commands (empty when nothing was new).

        Raises:
            InvalidChannel: a name is empty or not UTF-8.
        """
        fresh = [c for c in dict.fromkeys(channels) if c not in self.channels]
        encoded = [encode_channel(c) for c in fresh]
        self.channels.update(fresh)
        return self._queue("subscribe", fresh, encoded)

    def unsubscribe(self, channels: Iterable[str]) -> list[int]:
        """Remove channels from the subscription set and queue the commands.

        Args:
            channels: channel names; those not subscribed are skipped.

        Returns:
            The ids of the queued commands.
        """
        gone = [c for c in dict.fromkeys(channels) if c in self.channels]
        self.channels.difference_update(gone)
        return self._queue("unsubscribe", gone, [c.encode() for c in gone])

    def ping(self) -> int:
        """Queue a ``PING`` (allowed in subscribed mode); returns its command id."""
        return self._push("ping", (b"PING",), (), ())

    def auth(self, password: str, username: str | None = None) -> int:
        """Queue an ``AUTH`` (must come first on a new connection); returns its command id."""
        args = (b"AUTH", username.encode(), password.encode()) if username else (b"AUTH", password.encode())
        return self._push("auth", args, (), ())

    def reset(self, *, password: str | None = None, username: str | None = None) -> list[int]:
        """Start over on a new connection: forget replies in flight, re-queue every channel.

        Args:
            password: queue ``AUTH`` first, with this password.
            username: the ACL user for ``AUTH``.

        Returns:
            The ids of the commands that restore the subscriptions.
        """
        self._reader = hiredis.Reader()
        self._out.clear()
        self._pending.clear()
        if password is not None:
            self.auth(password, username)
        names = sorted(self.channels)
        return self._queue("subscribe", names, [c.encode() for c in names])

    def data_to_send(self) -> bytes:
        """Every queued command, as one write; empty when nothing is queued."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    @property
    def in_flight(self) -> int:
        """Commands sent (or queued) whose replies have not all arrived."""
        return len(self._pending)

    # --- what Redis sends -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket; parse them with :meth:`events_received`."""
        self._reader.feed(data)

    def events_received(self) -> list[Event]:
        """Every complete reply fed so far, as events (messages in arrival order).

        Raises:
            hiredis.ProtocolError: the bytes are not RESP; the connection must be dropped.
        """
        events = self._events
        self._events = []
        gets = self._reader.gets
        while (reply := gets()) is not False:
            if type(reply) is list and len(reply) == 3 and (reply[0] == b"message" or reply[0] == b"smessage"):
                events.append(Message(reply[1].decode(errors="replace"), reply[2]))
            else:
                self._reply(reply, events)
        return events

    # --- internals ----------------------------------------------------------------------

    def _queue(self, kind: CommandKind, names: list[str], encoded: list[bytes]) -> list[int]:
        if not names:
            return []
        verb = (
            (b"SSUBSCRIBE" if kind == "subscribe" else b"SUNSUBSCRIBE")
            if self.sharded
            else (b"SUBSCRIBE" if kind == "subscribe" else b"UNSUBSCRIBE")
        )
        ids = []
        for group_names, group_encoded in self._batches(names, encoded):
            ids.append(self._push(kind, (verb, *group_encoded), tuple(group_encoded), tuple(group_names)))
        return ids

    def _batches(self, names: list[str], encoded: list[bytes]) -> Iterable[tuple[list[str], list[bytes]]]:
        if self.group is None:
            for start in range(0, len(names), self.batch):
                yield names[start : start + self.batch], encoded[start : start + self.batch]
            return
        by_group: dict[int, tuple[list[str], list[bytes]]] = {}
        for name, raw in zip(names, encoded):
            slot_names, slot_raw = by_group.setdefault(self.group(raw), ([], []))
            slot_names.append(name)
            slot_raw.append(raw)
        for slot_names, slot_raw in by_group.values():
            for start in range(0, len(slot_names), self.batch):
                yield slot_names[start : start + self.batch], slot_raw[start : start + self.batch]

    def _push(
        self, kind: CommandKind, args: Sequence[bytes], channels: tuple[bytes, ...], names: tuple[str, ...]
    ) -> int:
        command_id = next(self._ids)
        self._out.append(encode_command(args))
        self._pending.append(_Pending(command_id, kind, channels, names))
        return command_id

    def _reply(self, reply: object, events: list[Event]) -> None:
        head = self._pending[0] if self._pending else None
        if isinstance(reply, hiredis.ReplyError):
            if head is None:
                return
            self._pending.popleft()
            if head.kind == "subscribe" and not str(reply).startswith("NOAUTH"):
                # Refused: these channels are not subscribed here (the caller re-routes them).
                # Refused for want of a login, they stay wanted here: the node is right.
                self.channels.difference_update(head.names)
            events.append(Acknowledged(head.id, head.kind, head.names, str(reply)))
            return
        if type(reply) is list and len(reply) == 3:
            kind, channel = reply[0], reply[1]
            if kind == b"subscribe" or kind == b"ssubscribe":
                if head is not None and head.kind == "subscribe":
                    self._confirm(head, events)
                return
            if kind == b"unsubscribe" or kind == b"sunsubscribe":
                if head is not None and head.kind == "unsubscribe" and head.channels[head.confirmed] == channel:
                    self._confirm(head, events)
                    return
                # Nothing asked for this: Redis dropped the subscription (slot migration).
                name = channel.decode(errors="replace")
                if name in self.channels:
                    self.channels.discard(name)
                    events.append(Lost(name))
                return
        if head is not None and (
            (head.kind == "ping" and (reply == b"PONG" or (type(reply) is list and reply[:1] == [b"pong"])))
            or (head.kind == "auth" and reply == b"OK")
        ):
            self._pending.popleft()
            events.append(Acknowledged(head.id, head.kind, ()))

    def _confirm(self, head: _Pending, events: list[Event]) -> None:
        head.confirmed += 1
        if head.confirmed >= len(head.channels):
            self._pending.popleft()
            events.append(Acknowledged(head.id, head.kind, head.names))
