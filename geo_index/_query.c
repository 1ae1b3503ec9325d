/* The exact scan of a query's key ranges (see _query.h). */
#include "_query.h"
#include <math.h>
#include <stdlib.h>

/* Must equal geo_index.distance. */
#define EARTH_RADIUS_M 6371008.8
#define REL_MARGIN 1e-9
#define ABS_MARGIN_M 1e-3
#define TWO_R (2.0 * EARTH_RADIUS_M)
#define RAD (M_PI / 180.0)

/* A bound decides only when it clears the threshold by this much, relatively: far above the
 * bound's own error (1e-12 relative, see bound()) and the rounding of asin and sqrt (1e-15). */
#define BAND 1e-9
/* Angles (radians) under which the Taylor bounds apply: |dphi|, |dlambda| < 0.02 (127 km). */
#define NEAR 0.02

double
haversine(double lat1, double lon1, double lat2, double lon2)
{
    if (lon1 == -180.0) lon1 = 180.0;
    if (lon2 == -180.0) lon2 = 180.0;
    double phi1 = lat1 * RAD, phi2 = lat2 * RAD;
    double s_phi = sin((phi2 - phi1) * 0.5);
    double s_lam = sin((lon2 * RAD - lon1 * RAD) * 0.5);
    double a = s_phi * s_phi + cos(phi1) * cos(phi2) * s_lam * s_lam;
    if (a > 1.0) a = 1.0;
    return TWO_R * asin(sqrt(a));
}

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
static double
exact_a(const Q *q, double lat, double lon)
{
    if (lon == -180.0) lon = 180.0;
    double phi = lat * RAD;
    double s1 = sin((phi - q->qphi) * 0.5);
    double s2 = sin((lon * RAD - q->qlam) * 0.5);
    return s1 * s1 + q->qcos * cos(phi) * s2 * s2;
}

static double
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
static int
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

static int
hit_order(const void *pa, const void *pb)
{
    const Cand *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The k-th smallest (0-based) of v[0..n), reordering v. */
static double
select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        for (;;) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i >= j) break;
            double t = v[i]; v[i] = v[j]; v[j] = t;
            i++; j--;
        }
        if (k <= j) hi = j;
        else lo = j + 1;
    }
    return v[k];
}

static void
make_exact(const Q *q, Cand *c)
{
    if (c->d >= 0.0) return;
    c->lo = c->hi = exact_a(q, c->lat, c->lon);
    c->d = distance_of(c->lo);
}

/* Cut the page from the candidates: exact distances for those that may be among the first
 * ``limit`` (every one whose lower bound is within BAND of the limit-th smallest upper bound),
 * then sort by (distance, id). */
static int
cut_page(const Q *q, Cand *c, size_t n, long limit, QPage *out)
{
    if (limit >= 0 && n > (size_t)limit && limit > 0) {
        double *hi = malloc(n * sizeof *hi);
        if (!hi) return -1;
        for (size_t i = 0; i < n; i++) hi[i] = c[i].hi;
        double cut = select_kth(hi, n, (size_t)limit - 1) * (1.0 + BAND);
        free(hi);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (c[i].lo <= cut) c[k++] = c[i];
        n = k;
    }
    for (size_t i = 0; i < n; i++) make_exact(q, &c[i]);
    qsort(c, n, sizeof *c, hit_order);
    size_t count = limit >= 0 && n > (size_t)limit ? (size_t)limit : n;
    out->hits = malloc((count ? count : 1) * sizeof *out->hits);
    if (!out->hits) return -1;
    for (size_t i = 0; i < count; i++) { out->hits[i].d = c[i].d; out->hits[i].id = c[i].id; }
    out->count = count;
    return 0;
}

int
query_page(const Store *s, const uint64_t *lo, const uint64_t *hi, size_t nranges, double lat, double lon,
           double radius_m, long limit, const QAfter *after, QFilter filter, void *ctx, QPage *out)
{
    Q q;
    if (lon == -180.0) lon = 180.0;
    q.qphi = lat * RAD;
    q.qlam = lon * RAD;
    q.qcos = cos(q.qphi);
    q.qsin = sin(q.qphi);
    q.radius = radius_m;
    q.dpad = (radius_m * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M;
    q.fast = radius_m / TWO_R < 1.5;
    double st = q.fast ? sin(radius_m / TWO_R) : 0.0;
    q.thr_lo = st * st * (1.0 - BAND);
    q.thr_hi = st * st * (1.0 + BAND);
    q.afast = after->on && after->d / TWO_R < 1.5;
    double sa = q.afast ? sin(after->d / TWO_R) : 0.0;
    q.athr_lo = sa * sa * (1.0 - BAND);
    q.athr_hi = sa * sa * (1.0 + BAND);
    out->total = out->following = out->count = 0;
    out->hits = NULL;

    size_t n = 0, cap = 0;
    Cand *c = NULL;
    int status = 0;
    const Run *runs[3] = {&s->base, &s->frozen, &s->active};
    for (int r = 0; r < 3 && status == 0; r++) {
        const Run *run = runs[r];
        if (run->n == 0) continue;
        for (size_t k = 0; k < nranges && status == 0; k++) {
            size_t i = run_lower(run, s->kind, lo[k]);
            size_t end = hi[k] == UINT64_MAX ? run->n : run_lower(run, s->kind, hi[k] + 1);
            for (; i < end; i++) {
                if (run_is_dead(run, i)) continue;
                Cand x = {0.0, 0.0, -1.0, run->lat[i], run->lon[i], run->id[i]};
                int b = q.fast ? bound(&q, x.lat, x.lon, &x.lo, &x.hi) : 0;
                if (b < 0 || (b > 0 && x.lo > q.thr_hi)) continue;
                if (b == 0 || x.hi >= q.thr_lo) {
                    make_exact(&q, &x);
                    if (!(x.d <= radius_m)) continue;
                }
                if (filter) {
                    int f = filter(ctx, x.id);
                    if (f < 0) { status = -2; break; }
                    if (!f) continue;
                }
                out->total++;
                if (after->on) {
                    if (x.d < 0.0 && q.afast && x.hi < q.athr_lo) continue;
                    if (!(x.d < 0.0 && q.afast && x.lo > q.athr_hi)) {
                        make_exact(&q, &x);
                        if (!(x.d > after->d || (x.d == after->d && x.id > after->id))) continue;
                    }
                }
                out->following++;
                if (limit == 0) continue;
                if (n == cap) {
                    size_t grown = cap ? 2 * cap : 256;
                    Cand *more = realloc(c, grown * sizeof *more);
                    if (!more) { status = -1; break; }
                    c = more;
                    cap = grown;
                }
                c[n++] = x;
            }
        }
    }
    if (status == 0 && cut_page(&q, c, n, limit, out) < 0) status = -1;
    free(c);
    return status;
}
