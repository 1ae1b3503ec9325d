"""A user's own moves: friends are judged again only when a move can change one of them.

:class:`~friends_ws.following.Following` keeps how far the user may move before any friend's
visibility can change (its slack) and skips judging every friend on a shorter move. Held
here to an oracle that judges every known friend on every move, with the same hysteresis
(:func:`friends_ws.nearby.judge`): the frames the viewer gets must be the same, in the same
order, for any sequence of the user's and the friends' moves.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from friends_ws.following import Following
from friends_ws.metrics import Stats
from friends_ws.nearby import ENTER, LEAVE, MOVE, judge
from geo_common.presence import Location
from geo_index import haversine_m

CENTRE = (37.7749, -122.4194)
RADIUS_M, MARGIN_M = 3_000.0, 200.0
FRIENDS = (2, 3, 4, 5)


class Known:
    """The friends' latest locations, as the process's fan-out holds them."""

    def __init__(self) -> None:
        self.known: dict[int, Location] = {}

    async def latest(self, friends: object) -> None:
        """The cache read of a first view: what is known already stands for it here."""


class Sink:
    """The session's way out: records (frame type, friend) of what it queues."""

    closed = False

    def __init__(self) -> None:
        self.frames: list[tuple[str, int]] = []

    def send(self, frame: bytes) -> None:
        raise AssertionError("no frame but a friend's is expected here")

    def send_friend(self, friend_id: int, frame: bytes) -> None:
        self.frames.append((orjson.loads(frame)["type"], friend_id))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        coro.close()
        raise AssertionError("nothing runs in the background here")


class Oracle:
    """Every known friend judged on every move of the user's."""

    def __init__(self) -> None:
        self.position: tuple[float, float] | None = None
        self.visible: set[int] = set()
        self.frames: list[tuple[str, int]] = []

    def judge(self, friend_id: int, location: Location, *, moved: bool) -> None:
        assert self.position is not None
        distance = haversine_m(*self.position, location.latitude, location.longitude)
        change = judge(friend_id in self.visible, distance, RADIUS_M, MARGIN_M)
        if change is ENTER:
            self.visible.add(friend_id)
        elif change is LEAVE:
            self.visible.discard(friend_id)
            self.frames.append(("friend_left", friend_id))
        if change is ENTER or (moved and change is MOVE):
            self.frames.append(("friend_location", friend_id))


# The user's moves are steps (degrees, most of them short: what makes the slack count);
# a friend's moves are places around the centre, some near the edge of the radius.
_STEP = st.one_of(st.floats(-0.0005, 0.0005), st.floats(-0.03, 0.03))
_PLACE = st.floats(-0.04, 0.04)
_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just(0), _STEP, _STEP),
        st.tuples(st.sampled_from(FRIENDS), _PLACE, _PLACE),
    ),
    min_size=1,
    max_size=80,
)


def _following(locations: Known, sink: Sink) -> Following:
    following = Following(
        1,
        locations=locations,  # type: ignore[arg-type]
        stats=Stats(),
        db=None,  # type: ignore[arg-type]
        sink=sink,  # type: ignore[arg-type]
        radius_m=RADIUS_M,
        margin_m=MARGIN_M,
    )
    for friend_id in FRIENDS:
        following.view.add(friend_id)
    return following


@settings(max_examples=300, deadline=None)
@given(_EVENTS)
def test_skipping_friends_a_move_cannot_change_sends_what_judging_them_all_sends(
    events: list[tuple[int, float, float]],
) -> None:
    locations, sink, oracle = Known(), Sink(), Oracle()
    following = _following(locations, sink)
    position = CENTRE
    for clock, (who, dlat, dlon) in enumerate(events):
        if who == 0:
            position = (position[0] + dlat, position[1] + dlon)
            oracle.position = position
            for friend_id in sorted(locations.known):  # friends are judged by id, ascending
                oracle.judge(friend_id, locations.known[friend_id], moved=False)
            following.moved_to(*position)
        else:
            location = Location(who, CENTRE[0] + dlat, CENTRE[1] + dlon, 1_000 + clock, None)
            locations.known[who] = location
            if oracle.position is not None:
                oracle.judge(who, location, moved=True)
            following.friend_moved(location)
        assert sink.frames == oracle.frames
    assert set(following.view.visible) == oracle.visible


async def test_a_location_the_first_view_read_is_not_sent_again_when_its_message_comes() -> None:
    """The sender writes the cache, then publishes: a first view's cache read may get the
    location before the process hears its message, which must then add nothing."""
    for held in (None, {2: 1_000}):  # a fresh init, and a resume holding friend 2 as it is
        locations, sink = Known(), Sink()
        following = _following(locations, sink)
        two, three = (Location(f, CENTRE[0] + f / 1_000, CENTRE[1], 1_000, None) for f in (2, 3))
        locations.known = {2: two, 3: three}
        visible, gone = await following.first_view(*CENTRE, held)
        assert [f.user_id for f in visible] == ([2, 3] if held is None else [3]) and gone == []
        following.friend_moved(two)
        following.friend_moved(three)
        assert sink.frames == []  # both shown (or held) as they are already
        again = Location(2, CENTRE[0] + 0.005, CENTRE[1], 1_001, None)
        following.friend_moved(again)  # a newer one is sent
        assert sink.frames == [("friend_location", 2)]
        far = Location(4, CENTRE[0] + 0.001, CENTRE[1], 900, None)  # not known at the first view
        following.friend_moved(far)
        assert sink.frames[-1] == ("friend_location", 4)
