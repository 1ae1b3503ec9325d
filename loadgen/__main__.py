"""``geo-loadgen``: drive the search API and the friends tier with realistic users."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geo-loadgen", description="Location load generator for geo.")
    parser.add_subparsers(dest="command", title="commands", required=True)
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
