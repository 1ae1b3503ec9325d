"""The sans-I/O core of the friends tier: frames, views, rate limits, outboxes. No sockets."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from friends_ws.nearby import Change, View, coarsen, judge
from friends_ws.outbox import Outbox
from friends_ws.protocol import (
    FriendPosition,
    InvalidMessage,
    LocationUpdate,
    SettingsUpdate,
    Sharing,
    SharingUpdate,
    encode_error,
    encode_friend_left,
    encode_friend_location,
    encode_init,
    parse_client_message,
)
from friends_ws.ratelimit import TokenBucket
from geo_index import haversine_m


def parse(data: str | bytes) -> object:
    return parse_client_message(data, min_radius_m=100, max_radius_m=80_467)


# --- client frames ---------------------------------------------------------------------------


def test_a_location_with_and_without_a_timestamp() -> None:
    assert parse('{"type":"location","latitude":37.77,"longitude":-122.42}') == LocationUpdate(37.77, -122.42, None)
    assert parse(b'{"type":"location","latitude":0,"longitude":180,"timestamp":1763890000123}') == LocationUpdate(
        0.0, 180.0, 1763890000123
    )


def test_settings_and_sharing() -> None:
    assert parse('{"type":"settings","radius_m":1609.3}') == SettingsUpdate(1609.3)
    assert parse('{"type":"sharing","enabled":false}') == SharingUpdate(False, None)
    assert parse('{"type":"sharing","enabled":true,"precision":"coarse"}') == SharingUpdate(True, "coarse")
    assert parse('{"type":"sharing","enabled":false,"private_history":true}') == SharingUpdate(False, None, True)
    # Absent fields keep what is in force.
    kept = Sharing(True, "coarse", True)
    assert kept.updated(SharingUpdate(False)) == Sharing(False, "coarse", True)
    assert kept.updated(SharingUpdate(True, "exact", False)) == Sharing(True, "exact", False)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('"location"', "invalid_message"),
        ("{}", "invalid_message"),
        ('{"type":"teleport"}', "invalid_message"),
        ('{"type":"location","latitude":91,"longitude":0}', "invalid_value"),
        ('{"type":"location","latitude":0,"longitude":-180.5}', "invalid_value"),
        ('{"type":"location","latitude":"1","longitude":0}', "invalid_value"),
        ('{"type":"location","latitude":true,"longitude":0}', "invalid_value"),
        ('{"type":"location","longitude":0}', "invalid_value"),
        ('{"type":"location","latitude":1e999,"longitude":0}', "invalid_json"),  # JSON has no infinity
        ('{"type":"location","latitude":0,"longitude":0,"timestamp":-1}', "invalid_value"),
        ('{"type":"location","latitude":0,"longitude":0,"timestamp":1.5}', "invalid_value"),
        ('{"type":"settings","radius_m":99}', "invalid_value"),
        ('{"type":"settings","radius_m":80468}', "invalid_value"),
        ('{"type":"settings"}', "invalid_value"),
        ('{"type":"sharing","enabled":"yes"}', "invalid_value"),
        ('{"type":"sharing","enabled":true,"precision":"fuzzy"}', "invalid_value"),
        ('{"type":"sharing","enabled":true,"private_history":"yes"}', "invalid_value"),
        ('{"type":"sharing","enabled":true,"private_history":1}', "invalid_value"),
    ],
)
def test_bad_frames_name_what_is_wrong(frame: str, code: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(frame)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_server_frames() -> None:
    friend = FriendPosition(7, 51.5, -0.12, 1234.5678, 1763890000000, 1763889999000)
    assert orjson.loads(encode_init(8047.0, [friend], Sharing(False, "coarse", True), 1763890000600)) == {
        "type": "init",
        "at": 1763890000600,
        "radius_m": 8047.0,
        "friends": [
            {"user_id": 7, "latitude": 51.5, "longitude": -0.12, "distance_m": 1234.6, "updated_at": 1763890000000}
        ],
        "sharing": {"enabled": False, "precision": "coarse", "private_history": True},
    }
    assert orjson.loads(encode_friend_location(friend)) == {
        "type": "friend_location",
        "user_id": 7,
        "latitude": 51.5,
        "longitude": -0.12,
        "distance_m": 1234.6,
        "updated_at": 1763890000000,
        "sent_at": 1763889999000,
    }
    assert orjson.loads(encode_friend_left(7, "expired")) == {"type": "friend_left", "user_id": 7, "reason": "expired"}
    assert orjson.loads(encode_error("rate_limited", "slow down")) == {
        "type": "error",
        "code": "rate_limited",
        "detail": "slow down",
    }


# --- the view and its hysteresis -------------------------------------------------------------


def test_judge_at_the_edges() -> None:
    assert judge(False, 1000.0, 1000.0, 50.0) is Change.ENTER
    assert judge(False, 1000.1, 1000.0, 50.0) is Change.NONE
    assert judge(True, 1050.0, 1000.0, 50.0) is Change.MOVE
    assert judge(True, 1050.1, 1000.0, 50.0) is Change.LEAVE


def test_a_friend_pacing_along_the_edge_does_not_flap() -> None:
    view = View(1000.0, 50.0)
    view.add(1)
    changes = [view.update(1, d) for d in (990, 1010, 995, 1040, 1001, 1049, 1000)]
    assert changes[0] is Change.ENTER
    assert set(changes[1:]) == {Change.MOVE}
    assert view.update(1, 1051) is Change.LEAVE
    assert view.update(1, 1040) is Change.NONE  # back inside the margin but outside the radius
    assert view.update(1, 999) is Change.ENTER


@given(st.lists(st.floats(min_value=0, max_value=3000), max_size=40), st.floats(min_value=0, max_value=500))
def test_visibility_follows_the_hysteresis_rule(distances: list[float], margin: float) -> None:
    """Brute-force oracle: in view iff last entered (<= r) and not since beyond r + margin."""
    view, visible = View(1000.0, margin), False
    view.add(9)
    for d in distances:
        change = view.update(9, d)
        expected = (d <= 1000.0 + margin) if visible else (d <= 1000.0)
        assert (9 in view.visible) is expected
        assert (change in (Change.ENTER, Change.MOVE)) is expected
        visible = expected


def test_drop_reports_whether_the_friend_was_visible() -> None:
    view = View(1000.0, 0.0)
    assert view.update(1, 10) is Change.NONE  # not a friend: nothing to show
    view.add(1)
    view.update(1, 10)
    assert view.drop(1) is True
    assert view.drop(1) is False
    assert 1 in view and view.remove(1) is False and 1 not in view


def test_coarse_is_the_centre_of_the_geohash6_cell() -> None:
    lat, lon = coarsen(37.7749, -122.4194)
    assert (lat, lon) == (37.77374267578125, -122.4151611328125)  # cell 9q8yyk
    assert coarsen(37.7752, -122.4180) == (lat, lon)  # same cell, same point
    assert haversine_m(37.7749, -122.4194, lat, lon) < 800  # within the cell's half-diagonal


# --- rate limit and outbox -------------------------------------------------------------------


def test_token_bucket() -> None:
    bucket = TokenBucket(2.0, 2.0, now=0.0)
    assert [bucket.allow(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.allow(0.4) is False
    assert bucket.allow(0.5) is True  # one token back after half a second
    assert bucket.allow(100.0) and bucket.allow(100.0) and not bucket.allow(100.0)  # never above the burst


def test_the_outbox_keeps_the_newest_frame_per_friend_and_is_bounded() -> None:
    box = Outbox(limit=3)
    assert box.put(b"init")
    assert box.put(b"f1-a", friend_id=1)
    assert box.put(b"f2-a", friend_id=2)
    assert box.put(b"f1-b", friend_id=1)  # replaces f1-a, moves to the back
    assert not box.put(b"error")  # full
    assert [box.pop() for _ in range(len(box))] == [b"init", b"f2-a", b"f1-b"]
    assert box.replaced == 1 and not box


@pytest.mark.parametrize("lat", [-90.0, -45.0, 0.0, 45.0, 89.9])
def test_coarse_points_stay_valid(lat: float) -> None:
    clat, clon = coarsen(lat, 179.999)
    assert -90 <= clat <= 90 and -180 <= clon <= 180 and math.isfinite(clat)


# --- frames written straight to the socket ---------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 70_000])
def test_text_frames_parse_as_websocket_frames(size: int) -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    from friends_ws.frames import text_frames

    payloads = [b"x" * size, b'{"type":"init"}']
    reader = StreamReader()
    reader.feed_data(text_frames(payloads))
    reader.feed_eof()
    for payload in payloads:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            while True:
                next(parser)
        except StopIteration as done:
            frame = done.value
        assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


def test_the_frame_pattern_completes_to_the_encoded_frame() -> None:
    from friends_ws.protocol import complete_friend_location, friend_location_pattern

    for sent_at in (None, 1_763_889_999_000):
        pattern = friend_location_pattern(7, 51.5, -0.12, 1_763_890_000_000, sent_at)
        for distance in (0.0, 0.04, 1234.5678, 80_467.0):
            assert complete_friend_location(pattern, distance) == encode_friend_location(
                FriendPosition(7, 51.5, -0.12, distance, 1_763_890_000_000, sent_at)
            )


# Distances on Earth, tenths with an exact tie (x.25, x.75 are exact in binary), and values a
# hair either side of a half tenth.
_DISTANCES = st.one_of(
    st.floats(0.0, 2.1e7),
    st.integers(0, 2 * 10**6).map(lambda k: k / 4),
    st.integers(0, 2 * 10**7).map(lambda k: math.nextafter(k / 10 + 0.05, math.inf)),
    st.integers(0, 2 * 10**7).map(lambda k: math.nextafter(k / 10 + 0.05, 0.0)),
)


@given(_DISTANCES)
def test_a_frame_gives_the_distance_to_the_nearest_tenth_as_round_does(distance: float) -> None:
    from friends_ws.protocol import complete_friend_location, friend_location_pattern

    pattern = friend_location_pattern(7, 51.5, -0.12, 1_763_890_000_000, None)
    shown = orjson.loads(complete_friend_location(pattern, distance))["distance_m"]
    assert repr(shown) == repr(round(distance, 1))


_VIEW_OPS = ["add", "remove", "near", "far", "drop", "watch", "unwatch", "near_watching"]


@given(st.lists(st.tuples(st.sampled_from(_VIEW_OPS), st.integers(0, 30)), max_size=80))
def test_the_compact_view_matches_a_dict_of_visibility(ops: list[tuple[str, int]]) -> None:
    """Oracle: plain dicts friend -> visible and friend -> watching, driven by the same operations."""
    view, oracle, watching = View(1000.0, 0.0), {}, {}
    for op, friend in ops:
        if op == "add":
            assert view.add(friend) is (friend not in oracle)
            oracle.setdefault(friend, False)
            watching.setdefault(friend, False)
        elif op == "remove":
            assert view.remove(friend) is oracle.pop(friend, False)
            watching.pop(friend, None)
        elif op == "drop":
            assert view.drop(friend) is oracle.get(friend, False)
            if friend in oracle:
                oracle[friend] = False
        elif op in ("watch", "unwatch"):
            view.set_watching(friend, op == "watch")
            if friend in watching:
                watching[friend] = op == "watch"
        else:
            change = view.update(friend, 10.0 if op != "far" else 5000.0, True if op == "near_watching" else None)
            if friend in oracle:
                oracle[friend] = op != "far"
                watching[friend] = watching[friend] or op == "near_watching"
            else:
                assert change is Change.NONE
        assert view.friends == sorted(oracle)
        assert view.visible == {f for f, shown in oracle.items() if shown}
        assert view.watchers == sorted(f for f, w in watching.items() if w)
        assert (view.watching != 0) is any(watching.values())


def test_the_expiry_wheel_reports_each_deadline_once_never_early() -> None:
    from friends_ws.expiry import ExpiryWheel

    wheel = ExpiryWheel(100)
    wheel.schedule(1, 1_050)
    wheel.schedule(2, 1_100)
    wheel.schedule(3, 1_000)
    wheel.schedule(3, 5_000)  # rescheduled: it moves, it is not kept twice
    wheel.schedule(4, 1_000)
    wheel.cancel(4)
    assert len(wheel) == 3
    assert wheel.due(1_099) == []  # 1 is due at 1050 but its bucket ends at 1100
    assert sorted(wheel.due(1_100)) == [1, 2]
    assert wheel.due(4_999) == []
    assert wheel.due(5_000) == [3]
    assert len(wheel) == 0
