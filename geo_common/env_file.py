"""The env file a command-line entry point reads its defaults from (pure but for the read).

``geo-stack up`` writes ``.stack/env``; entry points read it under the real environment
(:func:`geo_common.settings.load_settings`), so a shell needs no ``source`` to reach the stack.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines (an optional ``export`` prefix, ``#`` comments) from a file.

    Args:
        path: the file, such as ``.stack/env`` written by ``geo-stack up``.

    Returns:
        The variables it sets; an absent file gives an empty mapping.
    """
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    return values


def default_env_file() -> Path:
    """The env file a command-line entry point reads: ``$GEO_ENV_FILE`` or ``./.stack/env``."""
    return Path(os.environ.get("GEO_ENV_FILE", ".stack/env"))
