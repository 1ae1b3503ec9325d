"""A slow reader's bounded queue of frames (pure): the newest frame per friend wins.

A friend's ``friend_location`` or ``friend_left`` replaces that friend's frame still waiting,
so a reader that falls behind receives the latest state of each friend rather than a
backlog, and the queue can never hold more than one frame per friend plus a few others.
"""

from __future__ import annotations


class Outbox:
    """Frames waiting to be written to one connection, in order.

    Args:
        limit: the most frames that may wait; :meth:`put` refuses beyond it.
    """

    __slots__ = ("limit", "_frames", "_seq", "replaced")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames: dict[object, bytes] = {}
        self._seq = 0
        #: Frames dropped because a newer one for the same friend replaced them.
        self.replaced = 0

    def __len__(self) -> int:
        return len(self._frames)

    def __bool__(self) -> bool:
        return bool(self._frames)

    def put(self, frame: bytes, *, friend_id: int | None = None) -> bool:
        """Queue a frame; one about a friend replaces that friend's waiting frame.

        Args:
            frame: the encoded frame.
            friend_id: the friend it is about, or None for frames that never coalesce.

        Returns:
            False when the queue is full (the frame is not queued).
        """
        if friend_id is None:
            self._seq += 1
            key: object = ("frame", self._seq)
        else:
            key = friend_id
        if key in self._frames:
            # Keep causal order: the newest frame goes to the back.
            del self._frames[key]
            self.replaced += 1
        elif len(self._frames) >= self.limit:
            return False
        self._frames[key] = frame
        return True

    def take(self) -> list[bytes]:
        """Every waiting frame, oldest first; the queue is left empty."""
        frames = list(self._frames.values())
        self._frames.clear()
        return frames

    def clear(self) -> None:
        self._frames.clear()

    def pop(self) -> bytes:
        """The oldest waiting frame.

        Raises:
            KeyError: nothing waits.
        """
        key = next(iter(self._frames))
        return self._frames.pop(key)
