/* Query plans (see _plan.h): geohash cells at one level, linear quadtree nodes, S2 coverings. */
#include "_plan.h"
#include "_keys.h"
#include "_s2geom.h"
#include <math.h>
#include <stdlib.h>

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
    free(r->lo);
    free(r->hi);
    r->lo = r->hi = NULL;
    r->n = r->cap = 0;
}

static int
ranges_add(Ranges *r, uint64_t lo, uint64_t hi)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        uint64_t *a = realloc(r->lo, cap * sizeof *a);
        if (!a) return -1;
        r->lo = a;
        uint64_t *b = realloc(r->hi, cap * sizeof *b);
        if (!b) return -1;
        r->hi = b;
        r->cap = cap;
    }
    r->lo[r->n] = lo;
    r->hi[r->n] = hi;
    r->n++;
    return 0;
}

/* The range of keys of the cell with ``code`` at ``bits`` bits (0..64). */
static int
add_cell(Ranges *r, int bits, uint64_t code)
{
    if (bits == 0) return ranges_add(r, 0, UINT64_MAX);
    uint64_t span = bits == 64 ? 0 : UINT64_MAX >> bits;
    uint64_t lo = bits == 64 ? code : code << (64 - bits);
    return ranges_add(r, lo, lo | span);
}

/* Sort by start (insertion sort: plans are short and nearly sorted), merge touching ranges. */
static void
ranges_normalize(Ranges *r)
{
    for (size_t i = 1; i < r->n; i++) {
        uint64_t lo = r->lo[i], hi = r->hi[i];
        size_t j = i;
        for (; j > 0 && r->lo[j - 1] > lo; j--) { r->lo[j] = r->lo[j - 1]; r->hi[j] = r->hi[j - 1]; }
        r->lo[j] = lo;
        r->hi[j] = hi;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (k > 0 && (r->hi[k - 1] == UINT64_MAX || r->lo[i] <= r->hi[k - 1] + 1)) {
            if (r->hi[i] > r->hi[k - 1]) r->hi[k - 1] = r->hi[i];
        } else {
            r->lo[k] = r->lo[i];
            r->hi[k] = r->hi[i];
            k++;
        }
    }
    r->n = k;
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
                if (add_cell(out, bits, zorder_code(bits, row, col)) < 0) return -1;
                if (col == sp.c1[k]) break;
            }
        if (row == sp.r1) break;
    }
    return 0;
}

/* Points of the store with keys in [lo, hi] (tombstones included: an estimate). */
static size_t
count_keys(const Store *s, uint64_t lo, uint64_t hi)
{
    const Run *runs[3] = {&s->base, &s->frozen, &s->active};
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        if (runs[k]->n == 0) continue;
        size_t end = hi == UINT64_MAX ? runs[k]->n : run_lower(runs[k], s->kind, hi + 1);
        n += end - run_lower(runs[k], s->kind, lo);
    }
    return n;
}

static int
in_span(const Span *sp, uint32_t row, uint32_t col)
{
    if (row < sp->r0 || row > sp->r1) return 0;
    for (int k = 0; k < sp->ncols; k++)
        if (col >= sp->c0[k] && col <= sp->c1[k]) return 1;
    return 0;
}

/* A linear quadtree over the Z-order keys: a node of depth d is the cell of 2d bits; it is
 * read whole when it holds at most leaf_capacity points (or at max_depth), else its children
 * overlapping the box are visited. The walk starts at the finest depth where the box spans at
 * most 16 nodes, so a query does not count its way down from the root. */
static int
plan_quadtree(const Plan *p, const Store *s, const Box *box, Ranges *out)
{
    Span sp;
    int d = 0;
    for (int e = 1; e <= p->max_depth; e++) {
        box_span(box, e, e, &sp);
        if (span_cells(&sp) > 16) break;
        d = e;
    }
    box_span(box, d, d, &sp);
    size_t cap = 64, n = 0;
    uint32_t (*stack)[3] = malloc(cap * sizeof *stack);   /* depth, row, col */
    if (!stack) return -1;
    for (uint32_t row = sp.r0;; row++) {
        for (int k = 0; k < sp.ncols; k++)
            for (uint32_t col = sp.c0[k];; col++) {
                if (n == cap) {
                    void *grown = realloc(stack, 2 * cap * sizeof *stack);
                    if (!grown) { free(stack); return -1; }
                    stack = grown;
                    cap *= 2;
                }
                stack[n][0] = (uint32_t)d; stack[n][1] = row; stack[n][2] = col;
                n++;
                if (col == sp.c1[k]) break;
            }
        if (row == sp.r1) break;
    }
    while (n > 0) {
        n--;
        int depth = (int)stack[n][0];
        uint32_t row = stack[n][1], col = stack[n][2];
        uint64_t code = zorder_code(2 * depth, row, col);
        uint64_t lo = depth == 0 ? 0 : depth == 32 ? code : code << (64 - 2 * depth);
        uint64_t hi = depth == 0 ? UINT64_MAX : depth == 32 ? code : lo | (UINT64_MAX >> (2 * depth));
        size_t held = count_keys(s, lo, hi);
        if (held == 0) continue;
        if (held <= (size_t)p->leaf_capacity || depth >= p->max_depth) {
            if (ranges_add(out, lo, hi) < 0) { free(stack); return -1; }
            continue;
        }
        Span child;
        box_span(box, depth + 1, depth + 1, &child);
        if (n + 4 > cap) {
            void *grown = realloc(stack, 2 * cap * sizeof *stack);
            if (!grown) { free(stack); return -1; }
            stack = grown;
            cap *= 2;
        }
        for (uint32_t i = 0; i < 4; i++) {
            uint32_t r = 2 * row + (i >> 1), c = 2 * col + (i & 1);
            if (!in_span(&child, r, c)) continue;
            stack[n][0] = (uint32_t)depth + 1; stack[n][1] = r; stack[n][2] = c;
            n++;
        }
    }
    free(stack);
    return 0;
}

static int
plan_s2(const Plan *p, double lat, double lon, double radius_m, Ranges *out)
{
    int cap = 8 * p->max_cells + 64;
    if (out->cap < (size_t)cap) {
        ranges_free(out);
        out->lo = malloc((size_t)cap * sizeof *out->lo);
        out->hi = malloc((size_t)cap * sizeof *out->hi);
        if (!out->lo || !out->hi) { ranges_free(out); return -1; }
        out->cap = (size_t)cap;
    }
    int n = s2geom_cap_ranges(lat, lon, padded_angle_rad(radius_m), p->max_cells, out->lo, out->hi, cap);
    if (n < 0) return -1;
    out->n = (size_t)n;
    return 0;
}

int
plan_ranges(const Plan *p, const Store *s, double lat, double lon, double radius_m, Ranges *out)
{
    out->n = 0;
    if (p->kind == PLAN_S2) return plan_s2(p, lat, lon, radius_m, out);
    Box box;
    cap_box(lat, lon, radius_m, &box);
    int failed = p->kind == PLAN_GEOHASH ? plan_geohash(p, &box, out) : plan_quadtree(p, s, &box, out);
    if (failed) return -1;
    ranges_normalize(out);
    return 0;
}
