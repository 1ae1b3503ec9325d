"""Whether a program's output is the output a guide shows, with ``...`` for what changes.

JSON (a ``json`` output block, or a ``<`` frame of a transcript) is compared as values, so
the guide may lay it out for reading: ``"..."`` as a value stands for any value, ``...``
inside a string for any characters there, a ``"..."`` key for any further keys, and
``"..."`` as an array's last element for any further elements. Everything else is
exact: ids, names, coordinates and distances from the demo data are the same on every run.

Text is compared line by line after trailing blanks are dropped: ``...`` inside a line stands
for any characters, a line that is only ``...`` for any number of lines.
"""

from __future__ import annotations

import json
import re
from typing import Any

ELLIPSIS = "..."


def json_values(text: str) -> list[Any]:
    """The JSON values of a text, one after another (a program may print several).

    Raises:
        ValueError: the text holds something that is not JSON.
    """
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return values
        value, i = decoder.raw_decode(text, i)
        values.append(value)


def json_mismatch(expected: Any, actual: Any, where: str = "$") -> str | None:
    """Where ``actual`` differs from ``expected`` (with its ``...`` placeholders), or None."""
    if expected == ELLIPSIS:
        return None
    if isinstance(expected, str) and ELLIPSIS in expected and isinstance(actual, str):
        pattern = ".*?".join(re.escape(piece) for piece in expected.split(ELLIPSIS))
        return (
            None if re.fullmatch(pattern, actual, re.DOTALL) else f"{where}: {actual!r}, the guide shows {expected!r}"
        )
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r}"
        keys = [k for k in expected if k != ELLIPSIS]
        missing = [k for k in keys if k not in actual]
        if missing:
            return f"{where}: missing {missing} in {sorted(actual)}"
        extra = sorted(set(actual) - set(keys))
        if extra and ELLIPSIS not in expected:
            return f"{where}: not shown: {extra}"
        for k in keys:
            if (problem := json_mismatch(expected[k], actual[k], f"{where}.{k}")) is not None:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected an array, got {actual!r}"
        open_ended = bool(expected) and expected[-1] == ELLIPSIS
        shown = expected[:-1] if open_ended else expected
        if len(actual) < len(shown) or (not open_ended and len(actual) != len(shown)):
            return f"{where}: {len(actual)} elements, the guide shows {len(shown)}"
        for i, (e, a) in enumerate(zip(shown, actual, strict=False)):
            if (problem := json_mismatch(e, a, f"{where}[{i}]")) is not None:
                return problem
        return None
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    elif isinstance(expected, int | float):
        same = isinstance(actual, int | float) and expected == actual
    else:
        same = type(expected) is type(actual) and expected == actual
    return None if same else f"{where}: {actual!r}, the guide shows {expected!r}"


def normalise(text: str) -> str:
    """Line ends as ``\\n``, no trailing blanks on a line, no blank lines at the end."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def text_pattern(expected: str) -> re.Pattern[str]:
    """A regular expression for a shown text with its ``...`` placeholders."""
    parts: list[str] = []
    for line in normalise(expected).split("\n"):
        if line.strip() == ELLIPSIS:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(r"[^\n]*?".join(re.escape(piece) for piece in line.split(ELLIPSIS)) + r"\n")
    return re.compile("".join(parts))


def text_matches(expected: str, actual: str) -> bool:
    """Whether a printed text is the shown one (after :func:`normalise`, with placeholders)."""
    return text_pattern(expected).fullmatch(normalise(actual) + "\n") is not None


def output_mismatch(lang: str, expected: str, actual: str) -> str | None:
    """How a program's output differs from a ``doc-output`` block of language ``lang``, or None."""
    if lang == "json":
        try:
            got = json_values(actual)
        except ValueError as exc:
            return f"the output is not JSON ({exc}):\n{actual}"
        shown = json_values(expected)
        if len(got) != len(shown):
            return f"{len(got)} JSON values printed, the guide shows {len(shown)}:\n{actual}"
        for i, (e, a) in enumerate(zip(shown, got, strict=True)):
            if (problem := json_mismatch(e, a, f"${i}" if len(shown) > 1 else "$")) is not None:
                return f"{problem}\nprinted:\n{actual}"
        return None
    if text_matches(expected, actual):
        return None
    return f"printed:\n{normalise(actual)}\n--- the guide shows:\n{normalise(expected)}"


def json_kind(value: Any) -> str:
    """The JSON type of a value: object, array, string, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape_mismatch(shown: Any, real: Any, where: str = "$") -> str | None:
    """Where a shown value has other field names or JSON types than a real one, or None.

    Arrays compare their first elements (a real array may be empty: then nothing to compare).
    """
    if json_kind(shown) != json_kind(real):
        return f"{where}: the guide shows a {json_kind(shown)}, the server sends a {json_kind(real)} ({real!r})"
    if isinstance(shown, dict):
        if set(shown) != set(real):
            return f"{where}: the guide shows fields {sorted(shown)}, the server sends {sorted(real)}"
        for key in shown:
            if (problem := shape_mismatch(shown[key], real[key], f"{where}.{key}")) is not None:
                return problem
    if isinstance(shown, list) and shown and real:
        return shape_mismatch(shown[0], real[0], f"{where}[0]")
    return None
