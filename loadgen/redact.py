"""Keeping secrets out of what a run writes: report files, summaries and messages.

The friends scenario holds the key that signs its tokens (it can mint an admin's), and a URL
may carry a password; a report is a file people attach to CI jobs and tickets. So options
reach a report only through :func:`plain`, which replaces any value kept under a secret-like
name, anything that looks like a JSON Web Token, and the password of a URL.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from geo_common.redact import REDACTED, redact_passwords

#: Option names whose values are never written (``jwt_secret``, ``token``, ``api_key``...).
SECRET_NAME = re.compile(r"secret|token|passw(or)?d|credential|private|(^|_)(api_?)?key$", re.IGNORECASE)
#: The start of a JSON Web Token: base64url of ``{"``.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.")


def plain(value: Any, name: str = "") -> Any:
    """``value`` (``dataclasses.asdict`` output) as JSON-ready data with every secret replaced.

    Enums become their values and tuples lists; a value kept under a secret-like ``name``,
    a string holding a JSON Web Token, and the password of a URL are replaced by
    :data:`REDACTED`.
    """
    if name and SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, Enum):
        return plain(value.value, name)
    if isinstance(value, dict):
        return {str(k): plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, name) for v in value]
    if isinstance(value, str):
        return REDACTED if _JWT.search(value) else redact_passwords(value)
    return value
