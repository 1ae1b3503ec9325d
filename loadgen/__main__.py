"""``geo-loadgen``: drive the search API and the friends tier with realistic users."""

from __future__ import annotations

import sys

from loadgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
