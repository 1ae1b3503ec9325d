"""The candidate scan shared by the indexes: a C-speed chord filter, then exact distances.

Every stored point has two parallel representations:

* a *vector*: its unit vector ``(x, y, z)`` on the sphere. The chord between two unit
  vectors grows with the great-circle distance, has no antimeridian or pole cases, and
  ``math.dist`` computes it inside C. Mapped over a whole group of candidates with
  ``map``/``itertools.compress`` it discards the far ones without running any Python
  bytecode per candidate. It is only a filter: its threshold is padded so that it never
  discards a point the exact test would accept.
* a *record* ``(phi, lam, cos_phi, id)``: the :class:`~geo_index.distance.PointTerms` of the
  point and its id. The survivors of the filter get their distance from
  :func:`~geo_index.distance.haversine_m`'s formula evaluated with these precomputed terms in
  the same operation order, so every reported distance is bit-identical to
  ``haversine_m(query_lat, query_lon, lat, lon)``; that distance alone decides
  ``<= radius_m`` and the (distance, id) order.

When the compiled scan :mod:`geo_index._cscan` is built (``geo_index/_cscan.c``, compiled by
``pip install``), the indexes hand every query to it instead: it does the same chord
filter, the same limit cut and the same exact distances with the C library's ``sin``,
``asin`` and ``sqrt`` (the functions :mod:`math` calls) in the same order, so its answers
are identical, 1.4-6x faster than the Python paths below (measured in docs/benchmarks.md).

Without it, when a query has many candidates (``DEFAULT_DENSE_MIN`` or more) and numpy is installed,
:func:`search_dense` computes the same chord filter with numpy over per-group arrays of the
unit vectors that the indexes cache, which costs a few nanoseconds per candidate instead of
a few hundred; the survivors still get their distance from the scalar formula above.
numpy is optional: without it every query takes the :func:`search` path.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from itertools import accumulate, chain, compress, repeat
from operator import ge
from typing import Any, TypeVar

from geo_index.distance import ABS_MARGIN_M, EARTH_RADIUS_M, RAD, REL_MARGIN, PointTerms, padded_angle_rad

_np: Any
try:  # numpy only speeds up large candidate sets; everything works without it
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only where numpy is absent
    _np = None

#: True when numpy is importable and :func:`search_dense` can be used.
HAVE_NUMPY = _np is not None

search_native: Any
scan_levels: Any
CellMap: Any
try:  # the compiled scan; a checkout without a C compiler falls back to the Python paths
    from geo_index import _cscan

    CellMap, search_native, scan_levels = _cscan.CellMap, _cscan.scan, _cscan.scan_levels
except ImportError:  # pragma: no cover - exercised only where the extension is not built
    search_native = scan_levels = CellMap = None

#: True when :func:`search_native` (``geo_index/_cscan.c``) is built and importable.
HAVE_NATIVE = search_native is not None

#: Default number of candidates from which an index switches to :func:`search_dense`
#: (measured on the benchmark data: 48 to 128 all cut 20 km queries by 2-3x, and 5 km
#: queries are unchanged within noise).
DEFAULT_DENSE_MIN = 64

K = TypeVar("K", bound=Hashable)

#: ``(phi, lam, cos_phi, id)``: radians, radians, cosine, id.
Record = tuple[float, float, float, K]

#: A unit vector ``(x, y, z)``, dimensionless.
Vec = tuple[float, float, float]

_TWO_R = 2.0 * EARTH_RADIUS_M
_sin = math.sin
_cos = math.cos
_asin = math.asin
_sqrt = math.sqrt
_dist = math.dist
_chain = chain.from_iterable

# Slack on the k-th smallest chord when narrowing to the top ``limit`` candidates: relative
# (rounding of math.dist is ~1e-16) plus absolute (chords of near-duplicates, in units of
# the sphere radius: 1e-12 is 6 micrometres).
_CHORD_REL = 1e-9
_CHORD_ABS = 1e-12


def make_record(terms: PointTerms, id: K) -> Record[K]:
    """Build the record a scan expects.

    Args:
        terms: the point's precomputed factors.
        id: the point's id.

    Returns:
        ``(phi, lam, cos_phi, id)``.
    """
    return (terms.phi, terms.lam, terms.cos_phi, id)


def unit_vector(terms: PointTerms) -> Vec:
    """The point's unit vector on the sphere.

    Args:
        terms: the point's precomputed factors (radians).

    Returns:
        ``(cos(lat) cos(lon), cos(lat) sin(lon), sin(lat))``, dimensionless.
    """
    phi, lam, cos_phi = terms
    return (cos_phi * _cos(lam), cos_phi * _sin(lam), _sin(phi))


def chord_upper_bound(radius_m: float) -> float:
    """A chord length that every point within ``radius_m`` stays under.

    Args:
        radius_m: the search radius, metres (may be ``inf``).

    Returns:
        ``2 sin(delta / 2)`` for the padded angular radius ``delta``, in units of the sphere
        radius; 3.0 (more than any chord) when the padded angle reaches pi.
    """
    delta = padded_angle_rad(radius_m)
    if delta >= math.pi:
        return 3.0
    return 2.0 * _sin(0.5 * delta) * (1.0 + _CHORD_REL) + _CHORD_ABS


def search(
    vec_groups: Iterable[Iterable[Vec]],
    rec_groups: Iterable[Iterable[Record[K]]],
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
) -> list[tuple[K, float]]:
    """Exact radius search over candidate groups (cells, leaves).

    Args:
        vec_groups: unit vectors of the candidates, one iterable per group.
        rec_groups: the matching records, parallel to ``vec_groups``.
        lat: query latitude, degrees.
        lon: query longitude, degrees.
        radius_m: the radius, metres (``inf`` accepts everything).
        limit: keep only the ``limit`` nearest, or all when ``None``.

    Returns:
        ``(id, distance_m)`` pairs sorted by (distance, id).
    """
    # point_terms() and unit_vector() of the query, inlined (this runs once per query).
    if lon == -180.0:
        lon = 180.0
    qphi = lat * RAD
    qlam = lon * RAD
    qcos = _cos(qphi)
    qv = (qcos * _cos(qlam), qcos * _sin(qlam), _sin(qphi))
    # chord_upper_bound(radius_m), inlined
    delta = (radius_m * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M
    cmax = 3.0 if delta >= math.pi else 2.0 * _sin(0.5 * delta) * (1.0 + _CHORD_REL) + _CHORD_ABS
    chords = list(map(_dist, repeat(qv), _chain(vec_groups)))
    survivors = list(compress(_chain(rec_groups), map(ge, repeat(cmax), chords)))
    if limit is not None and len(survivors) > 2 * limit:
        # Many more candidates than wanted: only those whose chord is within the slack of
        # the limit-th smallest can be among the limit nearest by exact distance, so only
        # they get an exact distance.
        kept = list(compress(chords, map(ge, repeat(cmax), chords)))
        cut = sorted(kept)[limit - 1] * (1.0 + _CHORD_REL) + _CHORD_ABS
        survivors = list(compress(survivors, map(ge, repeat(cut), kept)))
    return _exact(survivors, lat, lon, radius_m, limit)


def _exact(
    survivors: Iterable[Record[K]], lat: float, lon: float, radius_m: float, limit: int | None
) -> list[tuple[K, float]]:
    """Exact distances of the survivors (haversine_m's operations), filter, order, cut."""
    qphi = lat * RAD
    qlam = lon * RAD
    qcos = _cos(qphi)
    sin = _sin
    asin = _asin
    sqrt = _sqrt
    two_r = _TWO_R
    out: list[tuple[float, K]] = []
    append = out.append
    for phi, lam, cos_phi, pid in survivors:
        s1 = sin((phi - qphi) * 0.5)
        s2 = sin((lam - qlam) * 0.5)
        a = s1 * s1 + qcos * cos_phi * s2 * s2
        # The last steps of haversine_m, in its order: bit-identical.
        d = two_r * asin(sqrt(a if a < 1.0 else 1.0))
        if d <= radius_m:
            append((d, pid))
    out.sort()
    if limit is not None and len(out) > limit:
        del out[limit:]
    return [(pid, d) for d, pid in out]


def vec_array(vecs: Sequence[Vec]) -> Any:
    """A ``(n, 3)`` float64 numpy array of unit vectors, for :func:`search_dense`.

    Args:
        vecs: unit vectors.

    Returns:
        The array (the caller caches it until the group changes).
    """
    assert _np is not None
    n = len(vecs)
    return _np.fromiter(_chain(vecs), dtype=_np.float64, count=3 * n).reshape(n, 3)


def group_arrays(big: Any, keys: Sequence[int], shift: int) -> dict[int, Any]:
    """Views of ``big`` for every run of equal ``key >> shift`` with two or more rows.

    After a bulk load the points are in key order, so each cell of a level is one run;
    handing out views of one array built once is far cheaper than an array per cell.

    Args:
        big: ``(n, 3)`` array of the unit vectors, in key order.
        keys: the points' keys (unsigned 64-bit), ascending.
        shift: how many low bits to drop to get a cell code.

    Returns:
        cell code -> ``(rows, 3)`` view.
    """
    assert _np is not None
    n = len(keys)
    if n == 0:
        return {}
    codes = _np.fromiter(keys, dtype=_np.uint64, count=n) >> _np.uint64(shift)
    cut = _np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = _np.concatenate(([0], cut))
    ends = _np.concatenate((cut, [n]))
    multi = _np.flatnonzero(ends - starts >= 2)
    return {
        code: big[a:b]
        for code, a, b in zip(codes[starts[multi]].tolist(), starts[multi].tolist(), ends[multi].tolist())
    }


def search_dense(
    arrays: Sequence[Any],
    rec_groups: Sequence[Sequence[Record[K]]],
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
) -> list[tuple[K, float]]:
    """:func:`search` with the chord filter done by numpy; same result, bit for bit.

    Args:
        arrays: ``(n_i, 3)`` arrays of unit vectors (:func:`vec_array`), one per group.
        rec_groups: the matching records, parallel to ``arrays``.
        lat: query latitude, degrees.
        lon: query longitude, degrees.
        radius_m: the radius, metres (``inf`` accepts everything).
        limit: keep only the ``limit`` nearest, or all when ``None``.

    Returns:
        ``(id, distance_m)`` pairs sorted by (distance, id).
    """
    assert _np is not None
    if lon == -180.0:
        lon = 180.0
    qphi = lat * RAD
    qlam = lon * RAD
    qcos = _cos(qphi)
    qv = _np.array((qcos * _cos(qlam), qcos * _sin(qlam), _sin(qphi)))
    delta = (radius_m * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M
    cmax = 3.0 if delta >= math.pi else 2.0 * _sin(0.5 * delta) * (1.0 + _CHORD_REL) + _CHORD_ABS
    diff = (_np.concatenate(arrays) if len(arrays) > 1 else arrays[0]) - qv
    # Squared chords; the padding of cmax (1e-9 relative, 1e-12 absolute) dwarfs numpy's
    # rounding (1e-16 relative), so squaring the threshold keeps the filter conservative.
    c2 = _np.einsum("ij,ij->i", diff, diff)
    picked = _np.flatnonzero(c2 <= cmax * cmax)
    if limit is not None and len(picked) > limit:
        kth = float(_np.partition(c2[picked], limit - 1)[limit - 1])
        cut = math.sqrt(kth) * (1.0 + _CHORD_REL) + _CHORD_ABS
        picked = picked[c2[picked] <= cut * cut]
    survivors: list[Record[K]] = []
    if len(picked):
        starts = list(accumulate(map(len, rec_groups), initial=0))
        g = 0
        for i in picked.tolist():  # ascending, so the group index only moves forward
            while i >= starts[g + 1]:
                g += 1
            survivors.append(rec_groups[g][i - starts[g]])
    return _exact(survivors, lat, lon, radius_m, limit)


def search_cells(
    vec_groups: list[list[Vec]],
    rec_groups: list[list[Record[K]]],
    keys: list[int],
    arrays: dict[int, Any],
    dense_min: int | None,
    native: bool,
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
) -> list[tuple[K, float]]:
    """:func:`search_native` when ``native``, else :func:`search` over cells, or
    :func:`search_dense` when they hold ``dense_min`` candidates or more.

    ``keys`` names each cell (parallel to the groups); ``arrays`` is the index's cache of numpy
    arrays by cell key, filled here on first use; the other arguments are :func:`search`'s.
    """
    if native:
        return search_native(vec_groups, rec_groups, lat, lon, radius_m, limit)  # type: ignore[no-any-return]
    if dense_min is not None and sum(map(len, rec_groups)) >= dense_min:
        arrs = []
        for key, vecs in zip(keys, vec_groups):
            arr = arrays.get(key)
            if arr is None:
                arr = arrays[key] = vec_array(vecs)
            arrs.append(arr)
        return search_dense(arrs, rec_groups, lat, lon, radius_m, limit)
    return search(vec_groups, rec_groups, lat, lon, radius_m, limit)
