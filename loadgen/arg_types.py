"""The command line's value types: each refuses a bad value with a one-line message that
names the option (argparse prints it; :mod:`loadgen.cli` turns it into exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from loadgen.junit import file_problem


def positive(kind: type[int] | type[float], name: str) -> Callable[[str], int | float]:
    """A number of ``kind`` above 0, for option ``name``."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return value

    return parse


def report_file(flag: str) -> Callable[[str], Path]:
    """A file a report is written to after the run: refused now when it could not be."""

    def parse(text: str) -> Path:
        path = Path(text)
        problem = file_problem(path)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{text} {problem}")
        return path

    return parse


def fraction(text: str) -> float:
    """``--online-fraction``: a share in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--online-fraction must be a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"--online-fraction must be in (0, 1], got {text!r}")
    return value
