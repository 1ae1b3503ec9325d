"""How old the positions a client shows of its friends get: the gaps between refreshes.

For each (receiver, sender) pair while the sender is in the receiver's view, the time from
one ``friend_location`` of the sender to the next (or from the ``init``/``resumed`` that
showed it): how stale a friend's position gets on the receiver's map. Times are seconds on
the generator's clock (:func:`loadgen.clock.now`). The caller judges which gaps count (the
two in range, as it knows their positions) and records them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class PositionAges:
    """When each receiver's view of each friend was last refreshed."""

    def __init__(self) -> None:
        self._since: dict[int, dict[int, float]] = {}

    def start(self, receiver: int, senders: Iterable[int], at: float) -> None:
        """A view shown whole at ``at`` (``init``, or ``resumed`` for the friends held): every
        friend in it counts from then; nothing else is in view."""
        self._since[receiver] = dict.fromkeys(senders, at)

    def refresh(self, receiver: int, sender: int, at: float) -> float | None:
        """``sender``'s position arrived at ``receiver`` at ``at``: the gap since the last one
        (seconds), or None when the sender was not in view (it comes into view now)."""
        view = self._since.setdefault(receiver, {})
        last = view.get(sender)
        view[sender] = at
        return None if last is None else at - last

    def left(self, receiver: int, sender: int) -> None:
        """``friend_left``: no longer in view."""
        view = self._since.get(receiver)
        if view is not None:
            view.pop(sender, None)

    def forget(self, receiver: int) -> None:
        """The receiver's connection is gone: nothing is refreshed until its view is shown again."""
        self._since.pop(receiver, None)

    def held(self) -> Iterator[tuple[int, int, float]]:
        """(receiver, sender, last refreshed) of every pair in view."""
        for receiver, view in self._since.items():
            for sender, since in view.items():
                yield receiver, sender, since
