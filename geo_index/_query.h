/* The exact scan of a query's key ranges: a page of (distance, id) and the match counts.
 *
 * The ranges are visited nearest first (by a lower bound of their distance). A Z-order node
 * (a latitude/longitude rectangle) is bounded by the triangle inequality through its centre:
 * its farthest point from the centre is a corner, so every point in it lies within
 * [d(q, centre) - r_c, d(q, centre) + r_c] of the query (padded by the usual margins). A node
 * surely inside the radius adds its point count without reading a point, unless it may hold
 * one of the page's hits (its lower bound is below the page's current cut) or a filter must
 * see its points; a crowded node that the radius or the page's cut crosses is split.
 *
 * Every distance reported is geo_index.haversine_m's, bit for bit: the same operations in the
 * same order with the C library's sin, cos, asin and sqrt (built with -ffp-contract=off). Most
 * candidates never need it: a few multiplications bound the haversine term ``a`` of a nearby
 * point (Taylor polynomials of the same sines and cosine, within 1e-10 of it), and only a
 * point whose bound straddles the radius (or the page's start) within a relative 1e-9, or one
 * that may belong to the page, gets the exact distance. */
#ifndef GEO_QUERY_H
#define GEO_QUERY_H
#include "_plan.h"
#include "_store.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double d;
    int64_t id;
} QHit;

/* 1: the point (its id and position, degrees) passes the page's filter; 0: it does not;
 * -1: an error (the scan stops). */
typedef int (*QFilter)(void *ctx, int64_t id, double lat, double lon);

typedef struct {
    int on;          /* a page after (d, id) */
    double d;
    int64_t id;
} QAfter;

/* A box of latitudes and longitudes, degrees (native.h's GeoBox): west > east crosses the
 * 180th meridian. */
typedef struct {
    double west, south, east, north;
} QBox;

/* Whether the box holds a point, on its edge included; a pole is at every longitude (as
 * geo_index.in_box). */
static inline int
box_holds(const QBox *box, double lat, double lon)
{
    if (!(box->south <= lat && lat <= box->north)) return 0;
    if (lat == 90.0 || lat == -90.0) return 1;
    if (box->west <= box->east) return box->west <= lon && lon <= box->east;
    return lon >= box->west || lon <= box->east;
}

typedef struct {
    size_t total;     /* points within the radius (that pass the filter) */
    size_t following; /* of them, ordered after ``after`` */
    size_t count;     /* hits[0..count): the first ``limit`` of those, by (distance, id) */
    QHit *hits;       /* malloc'd; the caller frees it */
} QPage;

/* The page of the points of ``nodes`` (a plan): limit < 0 for every match. A node holding
 * more than ``split`` points is split into its quarters (halves at odd bits), down to
 * ``max_bits``, where that helps;
 * a node surely within the radius that cannot hold a hit of the page is counted without
 * looking at its points. With ``counting`` 0 the counts are not wanted (only the hits): the
 * walk stops at the first node that cannot hold a hit, and out->total and out->following are
 * only lower bounds. With a ``box`` (NULL: none) only the points it holds match: a node whose
 * rectangle lies outside it is dropped, one inside it is counted as if there were no box, and
 * only the points of one its edge crosses are tested. Returns 0, -1 out of memory, -2 the
 * filter failed. */
int query_page(const Store *s, const Ranges *nodes, int split, int max_bits, int counting, double lat, double lon, double radius_m, long limit,
               const QAfter *after, const QBox *box, QFilter filter, void *ctx, QPage *out);

/* geo_index.haversine_m(lat1, lon1, lat2, lon2), bit for bit. */
double haversine(double lat1, double lon1, double lat2, double lon2);
#endif
