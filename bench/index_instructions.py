"""Instructions per index query, for callgrind: build a GeohashIndex, then page it 1,000 times.

Run it under callgrind with the collection switched on only inside the compiled query, so the
build does not count, and divide the total by the queries::

    valgrind --tool=callgrind --toggle-collect=index_page \\
        .venv/bin/python bench/index_instructions.py --points 1000000 --radius 5000

``--root DIR`` measures another checkout's geo_index (built in place there); before the
compact store the compiled entry was ``scan_levels``, so collect that instead. ``--within``
calls ``within`` (entry ``index_within``) instead of ``page``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--radius", type=float, default=5_000.0)
    ap.add_argument("--root", default=str(BENCH.parent), help="the checkout whose geo_index to measure")
    ap.add_argument("--within", action="store_true", help="call within() instead of page()")
    args = ap.parse_args()
    sys.path[:0] = [args.root, str(BENCH)]
    from geo_index import GeohashIndex
    from points import scatter_arrays

    lats, lons = scatter_arrays(args.points, seed=1)
    q_lats, q_lons = scatter_arrays(args.queries, seed=1_000_004)
    index = GeohashIndex()
    if hasattr(index, "bulk_load_arrays") and hasattr(index, "native"):
        index.bulk_load_arrays(np.arange(args.points, dtype=np.int64), lats, lons)
    else:  # a checkout from before the compact store
        index.bulk_load(zip(range(args.points), lats.tolist(), lons.tolist(), strict=True))
    for lat, lon in zip(q_lats.tolist(), q_lons.tolist(), strict=True):
        if args.within:
            index.within(lat, lon, args.radius, 20)
        else:
            index.page(lat, lon, args.radius, 20)


if __name__ == "__main__":
    main()
