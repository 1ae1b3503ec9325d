"""The plain values of query strings and bodies: decimal and whole numbers, text, booleans.

Numbers are accepted only in plain decimal notation: Python's ``float()`` would also take
``nan``, ``inf``, ``1_000`` and surrounding blanks, none of which is a coordinate. Each
parser raises ``ValueError`` saying what is wrong, for the caller to name the field.
"""

from __future__ import annotations

import math
import re

#: A plain decimal number, and a whole one.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
WHOLE = re.compile(r"[0-9]+")
#: What counts as blank: ASCII white space only, the same rule as the OpenAPI patterns.
BLANK = " \t\n\r\f\v"


def shown(raw: str) -> str:
    """A client's value quoted for an error message, cut short so a message stays short."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def decimal(raw: str, lo: float, hi: float) -> float:
    """Parse a decimal number in [lo, hi]; ``ValueError`` says what is wrong with it."""
    if raw == "":
        raise ValueError("must not be empty")
    if not DECIMAL.fullmatch(raw):
        raise ValueError(f"must be a decimal number, got {shown(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {shown(raw)}")
    if not lo <= value <= hi:
        raise ValueError(f"must be from {lo:g} to {hi:g}, got {shown(raw)}")
    return value


def whole(raw: str, lo: int, hi: int) -> int:
    """Parse a whole number in [lo, hi]; ``ValueError`` says what is wrong with it."""
    if raw == "":
        raise ValueError("must not be empty")
    if not WHOLE.fullmatch(raw) or len(raw) > 19:
        raise ValueError(f"must be a whole number from {lo} to {hi}, got {shown(raw)}")
    value = int(raw)
    if not lo <= value <= hi:
        raise ValueError(f"must be a whole number from {lo} to {hi}, got {shown(raw)}")
    return value


def text(raw: str, max_chars: int) -> str:
    """Check a text value: not blank, no NUL (PostgreSQL text cannot hold one), not too long."""
    if not raw.strip(BLANK):
        raise ValueError("must not be empty or blank")
    if "\x00" in raw:
        raise ValueError("must not contain NUL characters")
    if len(raw) > max_chars:
        raise ValueError(f"must be at most {max_chars} characters, got {len(raw)}")
    return raw


def boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"must be true or false, got {shown(raw)}")
