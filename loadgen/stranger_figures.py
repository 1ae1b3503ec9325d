"""What a strangers run delivered, from its counters: the ``strangers`` block of report.json and
the line the summary prints (:mod:`loadgen.report`, :mod:`loadgen.report_html`).

Counters only, so that workers' figures add up exactly: how many ``stranger`` frames came
(appeared, moved, repeated), how many ``stranger_left`` by reason, and how many strangers each
user saw at most at once (``visible_<n>``: the users whose peak was ``n``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_LEFT = "stranger_left_"
_VISIBLE = re.compile(r"visible_([0-9]+)")


def stranger_summary(counters: Mapping[str, int], options: Mapping[str, Any]) -> dict[str, Any]:
    """The run's deliveries of strangers.

    Args:
        counters: the run's counters.
        options: the run's options (``ramp_s``, ``duration_s`` and ``drain_s``: the time
            clients listened, the span of ``per_second``).
    """
    kinds = {k: int(counters.get(f"stranger_{k}", 0)) for k in ("appeared", "moved", "repeated")}
    frames = sum(kinds.values())
    listened = sum(float(options.get(k) or 0.0) for k in ("ramp_s", "duration_s", "drain_s"))
    peaks = {int(m.group(1)): n for k, n in counters.items() if (m := _VISIBLE.fullmatch(k))}
    users = sum(peaks.values())
    return {
        "frames": frames,
        **kinds,
        "per_second": round(frames / listened, 3) if listened > 0 else None,
        "left": {k[len(_LEFT) :]: int(n) for k, n in sorted(counters.items()) if k.startswith(_LEFT)},
        "left_unshown": int(counters.get("left_unshown", 0)),
        "visible": {
            "users": users,
            "mean": round(sum(p * n for p, n in peaks.items()) / users, 2) if users else None,
            "max": max(peaks) if peaks else None,
        },
    }


def describe_strangers(figures: Mapping[str, Any]) -> str:
    """The summary's line: ``stranger frames: 3120 (260.0/s): 380 appeared, 2740 moved; ...``."""
    rate = figures["per_second"]
    left = ", ".join(f"{k}={v}" for k, v in figures["left"].items()) or "none"
    visible = figures["visible"]
    seen = (
        f"strangers shown at once per user: mean {visible['mean']:g}, max {visible['max']} ({visible['users']} users)"
        if visible["users"]
        else "no user connected"
    )
    odd = [f"{figures[k]} {k.replace('_', ' ')}" for k in ("repeated", "left_unshown") if figures[k]]
    return (
        f"stranger frames: {figures['frames']}"
        + (f" ({rate:.1f}/s)" if rate is not None else "")
        + f": {figures['appeared']} appeared, {figures['moved']} moved{''.join(f', {o}' for o in odd)}; "
        f"stranger_left: {left}; {seen}"
    )
