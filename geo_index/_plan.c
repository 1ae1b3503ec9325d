/* Query plans (see _plan.h): geohash cells at one level, linear quadtree nodes, S2 coverings. */
#include "_plan.h"
#include "_keys.h"
#include "_s2geom.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Must equal geo_index.distance. */
#define EARTH_RADIUS_M 6371008.8
#define REL_MARGIN 1e-9
#define ABS_MARGIN_M 1e-3
#define RAD (M_PI / 180.0)

double
padded_angle_rad(double radius_m)
{
    return (radius_m * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M;
}

/* geo_index.distance.cap_bounds, operation for operation. */
void
cap_box(double lat, double lon, double radius_m, Box *box)
{
    box->lat_lo = -90.0;
    box->lat_hi = 90.0;
    box->nlon = 0;
    double delta = padded_angle_rad(radius_m);
    if (delta >= 0.5 * M_PI) return;
    double d_deg = delta / RAD;
    box->lat_lo = lat - d_deg;
    box->lat_hi = lat + d_deg;
    if (box->lat_hi >= 90.0 || box->lat_lo <= -90.0) {
        if (box->lat_lo < -90.0) box->lat_lo = -90.0;
        if (box->lat_hi > 90.0) box->lat_hi = 90.0;
        return;
    }
    double x = sin(delta) / cos(lat * RAD);
    if (x >= 1.0 - 1e-9) return;
    double dlon = asin(x) / RAD * (1.0 + REL_MARGIN) + 1e-9;
    if (dlon >= 180.0) return;
    if (lon == -180.0) lon = 180.0;
    double lo = lon - dlon, hi = lon + dlon;
    box->nlon = 1;
    box->lon_lo[0] = lo;
    box->lon_hi[0] = hi;
    if (lo <= -180.0 || hi >= 180.0) {   /* split at the antimeridian, both spellings covered */
        box->nlon = 2;
        box->lon_lo[0] = -180.0;
        box->lon_hi[0] = lo <= -180.0 ? hi : hi - 360.0;
        box->lon_lo[1] = lo <= -180.0 ? lo + 360.0 : lo;
        box->lon_hi[1] = 180.0;
    }
}

void
ranges_free(Ranges *r)
{
    free(r->lo); free(r->hi); free(r->bits); free(r->row); free(r->col);
    memset(r, 0, sizeof *r);
}

static int
ranges_reserve(Ranges *r, size_t cap)
{
    if (cap <= r->cap) return 0;
    if (cap < 2 * r->cap) cap = 2 * r->cap;
    void *p;
    if (!(p = realloc(r->lo, cap * sizeof *r->lo))) return -1;
    r->lo = p;
    if (!(p = realloc(r->hi, cap * sizeof *r->hi))) return -1;
    r->hi = p;
    if (!(p = realloc(r->bits, cap * sizeof *r->bits))) return -1;
    r->bits = p;
    if (!(p = realloc(r->row, cap * sizeof *r->row))) return -1;
    r->row = p;
    if (!(p = realloc(r->col, cap * sizeof *r->col))) return -1;
    r->col = p;
    r->cap = cap;
    return 0;
}

int
ranges_add(Ranges *r, uint64_t lo, uint64_t hi, int bits, uint32_t row, uint32_t col)
{
    if (r->n == r->cap && ranges_reserve(r, r->n + 64) < 0) return -1;
    r->lo[r->n] = lo;
    r->hi[r->n] = hi;
    r->bits[r->n] = (int8_t)bits;
    r->row[r->n] = row;
    r->col[r->n] = col;
    r->n++;
    return 0;
}

/* The node of the cell of ``bits`` bits (0..64) at grid row and column. */
static int
add_cell(Ranges *r, int bits, uint32_t row, uint32_t col)
{
    if (bits == 0) return ranges_add(r, 0, UINT64_MAX, 0, 0, 0);
    uint64_t code = zorder_code(bits, row, col);
    uint64_t lo = bits == 64 ? code : code << (64 - bits);
    return ranges_add(r, lo, bits == 64 ? lo : lo | (UINT64_MAX >> bits), bits, row, col);
}

static int
by_start(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

void
ranges_normalize(Ranges *r)
{
    uint64_t (*pairs)[2] = malloc((r->n ? r->n : 1) * sizeof *pairs);
    if (!pairs) return;   /* left as it is: still a valid (unmerged) plan */
    for (size_t i = 0; i < r->n; i++) { pairs[i][0] = r->lo[i]; pairs[i][1] = r->hi[i]; }
    qsort(pairs, r->n, sizeof *pairs, by_start);
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (k > 0 && (r->hi[k - 1] == UINT64_MAX || pairs[i][0] <= r->hi[k - 1] + 1)) {
            if (pairs[i][1] > r->hi[k - 1]) r->hi[k - 1] = pairs[i][1];
        } else {
            r->lo[k] = pairs[i][0];
            r->hi[k] = pairs[i][1];
            r->bits[k] = -1;
            k++;
        }
    }
    r->n = k;
    free(pairs);
}

/* The box's rows and column ranges at a level with lat_bits and lon_bits. */
typedef struct {
    uint32_t r0, r1;
    int ncols;
    uint32_t c0[2], c1[2];
} Span;

static uint32_t top(uint32_t v, int bits) { return bits == 0 ? 0 : v >> (32 - bits); }

static void
box_span(const Box *box, int lat_bits, int lon_bits, Span *sp)
{
    sp->r0 = top(grid_row(box->lat_lo), lat_bits);
    sp->r1 = top(grid_row(box->lat_hi), lat_bits);
    if (box->nlon == 0) {
        sp->ncols = 1;
        sp->c0[0] = 0;
        sp->c1[0] = top(UINT32_MAX, lon_bits);
        return;
    }
    sp->ncols = box->nlon;
    for (int k = 0; k < box->nlon; k++) {
        sp->c0[k] = top(grid_col(box->lon_lo[k]), lon_bits);
        sp->c1[k] = top(grid_col(box->lon_hi[k]), lon_bits);
    }
}

static size_t
span_cells(const Span *sp)
{
    size_t cols = 0;
    for (int k = 0; k < sp->ncols; k++) cols += (size_t)(sp->c1[k] - sp->c0[k]) + 1;
    return ((size_t)(sp->r1 - sp->r0) + 1) * cols;
}

/* The finest level whose cells overlapping the box number about max_cells or fewer: the mean
 * count over the box's positions, (height/cell_height + 1) * (width/cell_width + 1). */
static int
geohash_level(const Plan *p, const Box *box)
{
    double height = box->lat_hi - box->lat_lo, width = 0.0;
    if (box->nlon == 0) width = 360.0;
    for (int k = 0; k < box->nlon; k++) width += box->lon_hi[k] - box->lon_lo[k];
    int bits = p->levels[0];
    for (int k = 0; k < p->nlevels; k++) {
        bits = p->levels[k];
        double rows_per_deg = (double)(1ULL << (bits / 2)) / 180.0;
        double cols_per_deg = (double)(1ULL << (bits - bits / 2)) / 360.0;
        if ((height * rows_per_deg + 1.0) * (width * cols_per_deg + 1.0) <= p->max_cells) break;
    }
    return bits;
}

void
plan_geohash_choice(const Plan *p, double lat, double lon, double radius_m, int *bits, size_t *cells)
{
    Box box;
    Span sp;
    cap_box(lat, lon, radius_m, &box);
    *bits = geohash_level(p, &box);
    box_span(&box, *bits / 2, *bits - *bits / 2, &sp);
    *cells = span_cells(&sp);
}

static int
plan_geohash(const Plan *p, const Box *box, Ranges *out)
{
    int bits = geohash_level(p, box);
    Span sp;
    box_span(box, bits / 2, bits - bits / 2, &sp);
    for (uint32_t row = sp.r0;; row++) {
        for (int k = 0; k < sp.ncols; k++)
            for (uint32_t col = sp.c0[k];; col++) {
                if (add_cell(out, bits, row, col) < 0) return -1;
                if (col == sp.c1[k]) break;
            }
        if (row == sp.r1) break;
    }
    return 0;
}

/* A linear quadtree over the Z-order keys: a node of depth d is the cell of 2d bits. The plan
 * is the nodes overlapping the box at the finest depth where it spans at most 16 of them; the
 * scan splits a node holding more than leaf_capacity points (down to max_depth) where that
 * helps (query.c), so the depth adapts to the density where the query is. */
static int
plan_quadtree(const Plan *p, const Box *box, Ranges *out)
{
    Span sp;
    int d = 0;
    for (int e = 1; e <= p->max_depth; e++) {
        box_span(box, e, e, &sp);
        if (span_cells(&sp) > 16) break;
        d = e;
    }
    box_span(box, d, d, &sp);
    for (uint32_t row = sp.r0;; row++) {
        for (int k = 0; k < sp.ncols; k++)
            for (uint32_t col = sp.c0[k];; col++) {
                if (add_cell(out, 2 * d, row, col) < 0) return -1;
                if (col == sp.c1[k]) break;
            }
        if (row == sp.r1) break;
    }
    return 0;
}

static int
plan_s2(const Plan *p, double lat, double lon, double radius_m, Ranges *out)
{
    int cap = p->max_cells + 1;
    if (ranges_reserve(out, (size_t)cap) < 0) return -1;
    int n = s2geom_cap_ranges(lat, lon, padded_angle_rad(radius_m), p->max_cells, out->lo, out->hi, cap);
    if (n < 0) return -1;
    out->n = (size_t)n;
    memset(out->bits, -1, (size_t)n * sizeof *out->bits);
    return 0;
}

int
plan_ranges(const Plan *p, const Store *s, double lat, double lon, double radius_m, Ranges *out)
{
    out->n = 0;
    if (p->kind == PLAN_S2) return plan_s2(p, lat, lon, radius_m, out);
    Box box;
    cap_box(lat, lon, radius_m, &box);
    return p->kind == PLAN_GEOHASH ? plan_geohash(p, &box, out) : plan_quadtree(p, &box, out);
}
