"""The installed version of geo, and the ``--version`` flag every command-line program takes."""

from __future__ import annotations

import argparse
from importlib import metadata

DISTRIBUTION = "geo-nearby"
"""The distribution name in pyproject.toml (``geo`` is another project's name on PyPI)."""

UNKNOWN = "0+unknown"
"""Reported when the distribution is not installed, e.g. when run from a bare source tree."""


def version(distribution: str = DISTRIBUTION) -> str:
    """The version recorded in the installed distribution's metadata.

    Args:
        distribution: the distribution to ask about; only tests pass another.

    Returns:
        The version string (``0.1.0``), or :data:`UNKNOWN` when no such distribution is
        installed: a value that sorts before every release rather than an exception, so that
        ``--version`` still answers from a source tree.
    """
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--version``, which prints ``<prog> <version>`` and exits 0.

    argparse handles the flag while parsing, before any subcommand is required and before the
    program reads settings or opens anything, so it works without a stack or a database.

    Args:
        parser: the program's top-level parser; its ``prog`` names the program.
    """
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
