/* S2 geometry for geo_index's store, in plain C (no Python objects, no state: every function is
 * safe to call from any thread, with or without the interpreter's lock).
 *
 * An S2 leaf cell id (level 30) is the key of a point on the Hilbert curve over the six faces
 * of the cube; the leaf ids of any cell's descendants form one contiguous range, so a region
 * given as cells is a handful of key ranges of a store sorted by leaf id.
 *
 * Both functions must be compiled without fused multiply-adds (-ffp-contract=off, as setup.py
 * does): s2geom_leaf_id promises the same bits as s2sphere, which rounds every operation. */
#ifndef GEO_S2GEOM_H
#define GEO_S2GEOM_H
#include <stdint.h>

/* The most cells a covering uses: a larger max_cells is treated as this. */
#define S2GEOM_MAX_CELLS 64

/* The S2 leaf cell id (level 30) of a point given in degrees: identical, bit for bit, to
 * s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon)).id() for every finite
 * lat in [-90, 90] and lon in [-180, 180]. */
uint64_t s2geom_leaf_id(double lat_deg, double lon_deg);

/* A covering of the spherical cap of angular radius angle_rad (radians, already padded by the
 * caller) around (lat_deg, lon_deg): sorted, disjoint, non-adjacent inclusive ranges
 * [lo[i], hi[i]] of leaf cell ids whose union contains s2geom_leaf_id(p) of every point p whose
 * angular distance from the centre is <= angle_rad.
 *
 * Consecutive ranges have at least one leaf id between them (lo[i + 1] > hi[i] + 2: leaf ids
 * are odd). The ranges are the cells of one level that may meet the cap, merged where they
 * touch on the curve; the level is the finest (from about the cap's size down) at which at most
 * n = min(max_cells, cap, S2GEOM_MAX_CELLS) cells do. When even the six faces are too many for
 * n, or angle_rad + 1e-12 is not below 1.5 (or angle_rad is NaN), the answer is the whole curve,
 * one range [0, UINT64_MAX]. A negative angle_rad counts as 0. The cells are tested against
 * the cap grown by 1e-12 rad, which absorbs the rounding of the projections.
 *
 * Guarantee: for max_cells >= 1 and cap >= 1 and finite lat_deg, lon_deg the call never fails;
 * it writes and returns between 1 and n ranges. It returns -1 (writing nothing) only when
 * max_cells < 1, cap < 1, or lat_deg or lon_deg is not finite. */
int s2geom_cap_ranges(double lat_deg, double lon_deg, double angle_rad, int max_cells,
                      uint64_t *lo, uint64_t *hi, int cap);

#endif
