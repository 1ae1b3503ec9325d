"""How many files a server process may hold open: a WebSocket instance holds one socket per
client, so the usual soft limit (1,024) or a container's (often 20,000 or 65,536) caps its
connections before its memory or CPU does.

At start-up a server raises its soft ``RLIMIT_NOFILE`` to :data:`WANTED`; past the hard limit
only with the privilege to raise that too (``CAP_SYS_RESOURCE``, root in a container that keeps
it). Otherwise it goes as far as the hard limit and says so; an operator raises the hard limit
where the process is started (``LimitNOFILE=`` in systemd, ``ulimit -Hn``, the container
runtime's ``nofile``), docs/deploy.md has the details.
"""

from __future__ import annotations

import resource

#: The soft limit a server asks for: Linux's default ceiling (``fs.nr_open``).
WANTED = 1_048_576


def raise_open_files(wanted: int = WANTED) -> int:
    """Raise this process's open-file limit towards ``wanted``; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):  # no privilege to raise the hard limit, or above fs.nr_open
            pass
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target
