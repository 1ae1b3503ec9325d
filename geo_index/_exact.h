/* A query's distances to candidate points: exact (geo_index.haversine_m's ``a`` and distance,
 * bit for bit) or bounded by Taylor polynomials (see _query.h), and the cut of a page from its
 * candidates. Shared by the walk (_query.c) and the page's cut (_exact.c); the bounds are
 * inline, as the walk calls them for every candidate. */
#ifndef GEO_EXACT_H
#define GEO_EXACT_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "_query.h"

/* Must equal geo_index.distance. */
#define EARTH_RADIUS_M 6371008.8
#define REL_MARGIN 1e-9
#define ABS_MARGIN_M 1e-3
#define TWO_R (2.0 * EARTH_RADIUS_M)
#define RAD (M_PI / 180.0)
/* Candidates held on the query's stack (and the page's cut) before they grow onto the heap. */
#define STACK_CANDS 128

/* A bound decides only when it clears the threshold by this much, relatively: far above the
 * bound's own error (1e-12 relative, see bound()) and the rounding of asin and sqrt (1e-15). */
#define BAND 1e-9
/* Angles (radians) under which the Taylor bounds apply: |dphi|, |dlambda| < 0.02 (127 km). */
#define NEAR 0.02

typedef struct {
    double qphi, qlam, qcos, qsin, radius, dpad;
    int fast;               /* the radius's threshold on ``a`` is usable */
    double thr_lo, thr_hi;  /* sin^2(radius / 2R) shrunk and grown by BAND */
    int afast;
    double athr_lo, athr_hi;
} Q;

typedef struct {
    double lo, hi;  /* bounds of the point's ``a`` (equal once exact) */
    double d;       /* its exact distance, or -1 */
    double lat, lon;
    int64_t id;
} Cand;

/* haversine(query, point)'s ``a``, with its operations. */
static inline double
exact_a(const Q *q, double lat, double lon)
{
    if (lon == -180.0) lon = 180.0;
    double phi = lat * RAD;
    double s1 = sin((phi - q->qphi) * 0.5);
    double s2 = sin((lon * RAD - q->qlam) * 0.5);
    return s1 * s1 + q->qcos * cos(phi) * s2 * s2;
}

static inline double
distance_of(double a)
{
    if (a > 1.0) a = 1.0;
    return TWO_R * asin(sqrt(a));
}

/* Bounds lo <= a <= hi of exact_a(q, lat, lon) from Taylor polynomials: 1 with them, 0 when
 * the point is too far for them (the caller computes ``a``), -1 when it is surely outside
 * (its latitude alone is farther than the padded radius: d >= R |dphi|).
 *
 * The polynomials are of the very arguments exact_a passes to sin and cos: h1 = dphi / 2,
 * h2 = dlambda / 2 (sin(h) ~ h - h^3/6 + h^5/120, error < h^7/5040, 2e-16 relative here) and
 * cos(phi) = cos(qphi) cos(dphi) - sin(qphi) sin(dphi) with cos(x) ~ 1 - x^2/2 + x^4/24
 * (error < x^6/720 < 9e-14 absolute). So |a - exact| <= 1e-14 (t1 + |t2|) + 1.2e-13 cos(qphi)
 * s2^2 with t1 = s1^2, t2 = cos(qphi) cos(phi) s2^2; the margin used is a hundred times that. */
static inline int
bound(const Q *q, double lat, double lon, double *lo, double *hi)
{
    double dphi = lat * RAD - q->qphi;
    if (fabs(dphi) > q->dpad) return -1;
    if (lon == -180.0) lon = 180.0;
    double dl = lon * RAD - q->qlam;
    if (!(fabs(dphi) < NEAR && fabs(dl) < NEAR)) return 0;
    double h1 = dphi * 0.5, h1s = h1 * h1;
    double s1 = h1 * (1.0 - h1s / 6.0 * (1.0 - h1s / 20.0));
    double h2 = dl * 0.5, h2s = h2 * h2;
    double s2 = h2 * (1.0 - h2s / 6.0 * (1.0 - h2s / 20.0));
    double d2 = dphi * dphi;
    double cosd = 1.0 - d2 * 0.5 * (1.0 - d2 / 12.0);
    double sind = dphi * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0));
    double cphi = q->qcos * cosd - q->qsin * sind;
    double t1 = s1 * s1, s22 = s2 * s2, t2 = q->qcos * cphi * s22;
    double a = t1 + t2;
    double m = 1e-12 * (t1 + fabs(t2)) + 1.2e-11 * q->qcos * s22;
    *lo = a - m;
    *hi = a + m;
    return 1;
}

static inline void
make_exact(const Q *q, Cand *c)
{
    if (c->d >= 0.0) return;
    c->lo = c->hi = exact_a(q, c->lat, c->lon);
    c->d = distance_of(c->lo);
}

/* Cut the page from the candidates c[0..n) into out (out->hits malloc'd): exact distances for
 * those that may be among the first ``limit`` (every one whose lower bound is within BAND of
 * the limit-th smallest upper bound), sorted by (distance, id). 0, or -1 out of memory. */
int cut_page(const Q *q, Cand *c, size_t n, long limit, QPage *out);
#endif
