"""What a simulated phone shows of its friends, as the server told it: enough to resume.

After a reconnect (a dropped socket, a return from the background) the client's first
``location`` carries ``resume``: the newest server time it received and every friend it
shows with the ``updated_at`` of the position it holds, so that the server sends only what
changed (docs/friends-protocol.md). Times are Unix milliseconds on the server's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class HeldView:
    """Friend id -> ``updated_at`` of the position shown, the newest server time received
    (None before an ``init`` that carries one: such a server does not resume), and the radius."""

    friends: dict[int, int] = field(default_factory=dict)
    at: int | None = None
    radius_m: float | None = None

    def on_init(self, frame: dict[str, Any]) -> None:
        """A fresh ``init``: the view is what it lists."""
        self.friends = {int(f["user_id"]): int(f["updated_at"]) for f in frame["friends"]}
        at = frame.get("at")
        self.at = None if at is None else int(at)
        self.radius_m = float(frame["radius_m"])

    def on_resumed(self, frame: dict[str, Any]) -> None:
        """``resumed``: the view held is kept; what changed follows as other frames."""
        self._saw(int(frame["at"]))
        self.radius_m = float(frame["radius_m"])

    def on_location(self, friend: int, updated_at: int) -> None:
        """``friend_location``: the friend is shown at a position the server got at ``updated_at``."""
        self.friends[friend] = updated_at
        self._saw(updated_at)

    def on_left(self, friend: int) -> None:
        self.friends.pop(friend, None)

    def on_radius(self, radius_m: float) -> None:
        self.radius_m = radius_m

    def _saw(self, at: int) -> None:
        self.at = at if self.at is None else max(self.at, at)

    def resume(self) -> dict[str, Any] | None:
        """The ``resume`` field of a reconnected client's first ``location``, or None when there
        is nothing to resume (no ``init`` with ``at`` yet)."""
        if self.at is None:
            return None
        out: dict[str, Any] = {"at": self.at, "friends": {str(k): v for k, v in self.friends.items()}}
        if self.radius_m is not None:
            out["radius_m"] = self.radius_m
        return out
