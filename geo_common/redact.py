"""Keeping passwords out of messages (pure).

A Redis or PostgreSQL URL may carry its password (``redis://geo:secret@host:6379/0``), and
so may a Redis Cluster seed (``geo:secret@host:6379``); messages, logs and errors show such
values only through :func:`redact_passwords`.
"""

from __future__ import annotations

import re

#: What a hidden value is shown as.
REDACTED = "<redacted>"

# ``[scheme://]user:password@``: the user info of a URL, or of a bare ``user:password@host``.
# A password may hold anything but what ends the value (blanks, quotes, a comma between list
# items), the ``@`` that ends the user info and a ``/`` (a URL's password has it %-encoded).
_USER_INFO = re.compile(r"(?P<head>(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^\s,/@:'\"]*):[^\s,/@'\"]*@")


def redact_passwords(text: str) -> str:
    """``text`` with the password of every ``user:password@`` in it replaced by :data:`REDACTED`.

    >>> redact_passwords("redis://geo:s3cret@h:6379/0,geo:s3cret@h2:7000")
    'redis://geo:<redacted>@h:6379/0,geo:<redacted>@h2:7000'
    """
    return _USER_INFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
