"""Durations as people write them: ``500ms``, ``30s``, ``2m``, ``1h`` or plain seconds.

The command line and scenario files read them alike; a bad one raises
:class:`argparse.ArgumentTypeError` with a one-line message, as argparse expects of a type.
"""

from __future__ import annotations

import argparse
import re

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``500ms``, ``30s``, ``2m``, ``1h`` or plain seconds, to seconds (> 0)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"cannot read duration {text!r} (e.g. 30s, 2m)")
    value = float(match.group(1)) * _UNIT_S[match.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be > 0, got {text!r}")
    return value


def duration_or_zero(text: str) -> float:
    """A duration as :func:`parse_duration` reads it, or none at all (``0``, ``0s``, ``0ms``...)."""
    match = _DURATION.match(text)
    if match and float(match.group(1)) == 0:
        return 0.0
    return parse_duration(text)
