"""The sans-I/O subscriber core against fixed RESP bytes: no sockets."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from pubsub.errors import InvalidChannel
from pubsub.protocol import Acknowledged, Lost, Message, SubscriberProtocol, encode_command


def resp(*items: bytes | int) -> bytes:
    """A RESP array of bulk strings and integers, as Redis sends pub/sub replies."""
    out = [b"*%d\r\n" % len(items)]
    for item in items:
        out.append(b":%d\r\n" % item if isinstance(item, int) else b"$%d\r\n%s\r\n" % (len(item), item))
    return b"".join(out)


def test_encode_command_is_a_resp_array_of_bulk_strings() -> None:
    assert encode_command([b"SUBSCRIBE", b"a", b"bc"]) == b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$2\r\nbc\r\n"


def test_subscribe_batches_channels_into_few_commands() -> None:
    proto = SubscriberProtocol(batch=2)
    ids = proto.subscribe(["a", "b", "c", "a"])
    assert len(ids) == 2
    assert proto.data_to_send() == encode_command([b"SUBSCRIBE", b"a", b"b"]) + encode_command([b"SUBSCRIBE", b"c"])
    assert proto.subscribe(["a", "b"]) == []  # already subscribed: nothing to send
    assert proto.data_to_send() == b""


def test_sharded_commands_are_grouped_by_slot() -> None:
    proto = SubscriberProtocol(sharded=True, group=key_slot)
    channels = ["x:{1}", "y:{1}", "x:{2}"]
    ids = proto.subscribe(channels)
    assert len(ids) == 2  # {1} twice in one command, {2} in another
    data = proto.data_to_send()
    assert data.count(b"SSUBSCRIBE") == 2
    assert encode_command([b"SSUBSCRIBE", b"x:{1}", b"y:{1}"]) in data


def test_a_command_is_acknowledged_when_every_channel_is_confirmed() -> None:
    proto = SubscriberProtocol()
    (command,) = proto.subscribe(["a", "b"])
    proto.receive_data(resp(b"subscribe", b"a", 1))
    assert proto.events_received() == []
    proto.receive_data(resp(b"message", b"a", b"hello") + resp(b"subscribe", b"b", 2))
    assert proto.events_received() == [Message("a", b"hello"), Acknowledged(command, "subscribe", ("a", "b"))]
    assert proto.in_flight == 0


def test_replies_split_across_reads_are_reassembled() -> None:
    proto = SubscriberProtocol()
    data = resp(b"message", b"chan", b"x" * 100)
    for i in range(len(data) - 1):
        proto.receive_data(data[i : i + 1])
        assert proto.events_received() == []
    proto.receive_data(data[-1:])
    assert proto.events_received() == [Message("chan", b"x" * 100)]


def test_sharded_messages_are_messages() -> None:
    proto = SubscriberProtocol(sharded=True)
    proto.receive_data(resp(b"smessage", b"c{1}", b"d"))
    assert proto.events_received() == [Message("c{1}", b"d")]


def test_an_unsolicited_sunsubscribe_is_reported_lost() -> None:
    proto = SubscriberProtocol(sharded=True, group=key_slot)
    proto.subscribe(["c{1}"])
    proto.receive_data(resp(b"ssubscribe", b"c{1}", 1))
    proto.events_received()
    proto.receive_data(resp(b"sunsubscribe", b"c{1}", 0))
    assert proto.events_received() == [Lost("c{1}")]
    assert proto.channels == set()


def test_a_requested_unsubscribe_is_a_confirmation_not_a_loss() -> None:
    proto = SubscriberProtocol()
    proto.subscribe(["a"])
    proto.receive_data(resp(b"subscribe", b"a", 1))
    proto.events_received()
    (command,) = proto.unsubscribe(["a"])
    proto.receive_data(resp(b"unsubscribe", b"a", 0))
    assert proto.events_received() == [Acknowledged(command, "unsubscribe", ("a",))]


def test_a_refused_command_drops_its_channels() -> None:
    proto = SubscriberProtocol(sharded=True, group=key_slot)
    (command,) = proto.subscribe(["c{1}"])
    proto.receive_data(b"-MOVED 9842 127.0.0.1:7001\r\n")
    assert proto.events_received() == [Acknowledged(command, "subscribe", ("c{1}",), "MOVED 9842 127.0.0.1:7001")]
    assert proto.channels == set()


def test_ping_is_answered_in_both_forms() -> None:
    proto = SubscriberProtocol()
    first, second = proto.ping(), proto.ping()
    proto.receive_data(b"+PONG\r\n" + resp(b"pong", b""))
    assert proto.events_received() == [Acknowledged(first, "ping", ()), Acknowledged(second, "ping", ())]


def test_reset_requeues_every_channel_after_auth() -> None:
    proto = SubscriberProtocol()
    proto.subscribe(["b", "a"])
    proto.data_to_send()
    restore = proto.reset(password="pw", username="geo")
    assert len(restore) == 1
    assert proto.data_to_send() == encode_command([b"AUTH", b"geo", b"pw"]) + encode_command([b"SUBSCRIBE", b"a", b"b"])
    proto.receive_data(b"+OK\r\n" + resp(b"subscribe", b"a", 1) + resp(b"subscribe", b"b", 2))
    events = proto.events_received()
    assert events[-1] == Acknowledged(restore[0], "subscribe", ("a", "b"))


def test_empty_channel_names_are_refused() -> None:
    with pytest.raises(InvalidChannel):
        SubscriberProtocol().subscribe([""])
