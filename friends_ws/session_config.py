"""The rules every connection of the WebSocket tier follows, as the app reads them from settings.

:class:`SessionConfig` is the per-connection part of :class:`~geo_common.settings.Settings`:
plain numbers (metres, frames, updates per second) with no behaviour and no imports of the
tier. The app factory builds it once; :mod:`friends_ws.session` only reads it, and keeps to
what a connection does.
"""

from __future__ import annotations

from dataclasses import dataclass

from friends_ws.pace import Pace


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Per-connection rules from the settings: metres and frames (rates: friends_ws.limits)."""

    radius_m: float
    min_radius_m: float
    max_radius_m: float
    margin_m: float
    queue_size: int
    #: How often clients are asked to send (watched or not).
    pace: Pace
    #: A reconnecting client that received something this recently (ms) gets only what changed.
    resume_ms: int
    #: Nearby strangers: the radius (metres), its cells' geohash precision
    #: (:func:`friends_ws.cells.precision_for`), the most shown at once, how long news lives (ms).
    discover_radius_m: float = 2000.0
    discover_precision: int = 5
    discover_max_shown: int = 20
    discover_ttl_ms: int = 600_000
