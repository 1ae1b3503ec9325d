"""What one connection shows of strangers (pure): range, the cap, order of news, exclusions,
expiry."""

from __future__ import annotations

from friends_ws.cells import CellNews
from friends_ws.strangers import Hidden, Shown, StrangerView

HERE = (37.7749, -122.4194)
T0 = 1_763_890_000_000


def _view(cap: int = 3) -> StrangerView:
    view = StrangerView(1, radius_m=2000.0, cap=cap, ttl_ms=600_000)
    view.moved_to(*HERE)
    return view


def _near(
    user_id: int, at: int = T0, *, dlat: float = 0.001, cell: str = "9q8yy", handle: str | None = None
) -> CellNews:
    return CellNews(user_id, cell, at, HERE[0] + dlat, HERE[1], handle)


def test_a_stranger_in_range_is_shown_once_and_again_only_when_they_move() -> None:
    view = _view()
    [shown] = view.heard(_near(2))
    assert isinstance(shown, Shown) and shown.user_id == 2 and 100 < shown.distance_m < 120
    assert view.heard(_near(2, T0 + 1)) == []  # heard again, same place: nothing to say
    [moved] = view.heard(_near(2, T0 + 2, dlat=0.002))
    assert isinstance(moved, Shown) and moved.latitude == HERE[0] + 0.002


def test_out_of_range_strangers_are_not_shown_and_shown_ones_leave() -> None:
    view = _view()
    assert view.heard(_near(2, dlat=0.05)) == []  # 5.6 km
    view.heard(_near(3))
    assert view.heard(_near(3, T0 + 1, dlat=0.05)) == [Hidden(3, "out_of_range")]
    view.heard(_near(4))
    assert view.moved_to(HERE[0] - 0.05, HERE[1]) == [Hidden(4, "out_of_range")]


def test_the_user_themselves_and_excluded_users_are_never_shown() -> None:
    view = _view()
    view.excluded.add(5)
    assert view.heard(_near(1)) == [] and view.heard(_near(5)) == []
    view.heard(_near(6))
    assert view.exclude(6) == [Hidden(6, "hidden")]
    assert view.heard(_near(6, T0 + 5)) == []


def test_older_news_is_ignored_and_leaving_an_old_cell_after_arriving_in_a_new_one_is_not_leaving() -> None:
    view = _view()
    view.heard(_near(2, T0 + 10, cell="a"))
    assert view.heard(_near(2, T0 + 5, dlat=0.002, cell="a")) == []
    # Crossing from cell a to b: news in b, then "moved" in a (in either order).
    [moved] = view.heard(_near(2, T0 + 20, dlat=0.0015, cell="b"))
    assert isinstance(moved, Shown)
    assert view.heard(CellNews(2, "a", T0 + 20, gone="moved")) == []
    assert 2 in view.shown
    # The other order: the stranger leaves a (the view only hears a), then b arrives.
    view.heard(_near(3, T0, cell="a"))
    assert view.heard(CellNews(3, "a", T0 + 30, gone="moved")) == [Hidden(3, "out_of_range")]
    assert isinstance(view.heard(_near(3, T0 + 30, cell="b"))[0], Shown)


def test_a_crowd_shows_the_first_heard_up_to_the_cap_and_fills_places_that_free() -> None:
    view = _view(cap=3)
    shown = [c for uid in range(10, 20) for c in view.heard(_near(uid, T0 + uid))]
    assert [c.user_id for c in shown] == [10, 11, 12]
    # Those waiting say nothing while they wait, even when they speak again.
    assert view.heard(_near(15, T0 + 100)) == []
    # One shown signs out: the most recently heard waiting one takes the place.
    left, arrived = view.heard(CellNews(11, "9q8yy", T0 + 200, gone="offline"))
    assert left == Hidden(11, "offline")
    assert isinstance(arrived, Shown) and (arrived.user_id, arrived.at) == (15, T0 + 100)
    assert sorted(view.shown) == [10, 12, 15]


def test_the_waiting_list_is_bounded_and_the_newest_wait() -> None:
    view = _view(cap=2)
    for uid in range(100, 200):
        view.heard(_near(uid, T0 + uid))
    promoted = []
    at = T0 + 1000
    while view.shown:
        at += 1
        for change in view.heard(CellNews(min(view.shown), "9q8yy", at, gone="offline")):
            if isinstance(change, Shown):
                promoted.append(change.user_id)
    assert promoted == list(range(199, 191, -1))  # 4 x cap waited: the newest, newest first


def test_news_expires_after_its_ttl() -> None:
    view = _view(cap=1)
    view.heard(_near(2, T0))
    view.heard(_near(3, T0 + 400_000))
    assert view.expire(T0 + 599_999) == []
    changes = view.expire(T0 + 600_001)
    assert changes[0] == Hidden(2, "expired") and isinstance(changes[1], Shown) and changes[1].user_id == 3


def test_a_handle_change_is_shown() -> None:
    view = _view()
    view.heard(_near(2))
    [change] = view.heard(_near(2, T0 + 1, handle="ana_surfs"))
    assert isinstance(change, Shown) and change.handle == "ana_surfs"


def test_nothing_is_shown_before_the_viewer_has_a_position() -> None:
    view = StrangerView(1, radius_m=2000.0, cap=3, ttl_ms=600_000)
    assert view.heard(_near(2)) == []
