"""The wall clock of the friends tier: Unix milliseconds.

Locations carry it (``updated_at``), friends expire on it and tokens run out on it, so every
part that reads the time reads it here.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock time, Unix milliseconds (the ``updated_at`` of locations)."""
    return time.time_ns() // 1_000_000
