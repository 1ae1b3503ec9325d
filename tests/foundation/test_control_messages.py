"""The control and erasure channels' messages (geo_common.control_messages): each one read back
as written, and anything else refused with PresenceFormatError."""

from __future__ import annotations

import pytest

from geo_common import control_messages as m
from geo_common.presence import PresenceFormatError

EVENTS: list[m.Control] = [
    m.FriendAdded(43, "emea", "Ada"),
    m.FriendAdded(43, None),
    m.FriendRemoved(43),
    m.FriendShares(43, "coarse"),
    m.RequestReceived(44, None),
    m.Erased(),
    m.HomeMoved("emea"),
    m.SharingChanged(False, "exact", "c1", private_history=True),
    m.DiscoveryChanged(True, "ana_surfs", "c2"),
    m.DiscoveryChanged(False, None, "c2"),
    m.SpeakerLeft("c3"),
]


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_every_control_message_reads_back_as_written(event: m.Control) -> None:
    assert m.decode_control(m.encode_control(event)) == event


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"t": "friend_shares", "u": 43, "l": "everything"}',
        b'{"t": "sharing", "enabled": true, "precision": "metre"}',
        b'{"t": "discover", "enabled": "yes"}',
        b'{"t": "friend_added"}',
        b'{"t": "somebody_else"}',
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(PresenceFormatError, match="not a control message"):
        m.decode_control(data)


def test_erasures_read_back_and_nothing_else_does() -> None:
    assert m.decode_erasure(m.encode_erasure(42)) == 42
    with pytest.raises(PresenceFormatError):
        m.decode_erasure(m.encode_control(m.Erased()))
