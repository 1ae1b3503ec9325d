/* The exact scan of a query's key ranges (see _query.h). */
#include "_query.h"
#include "_exact.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "_keys.h"

/* Nodes held on the query's stack before they grow onto the heap. */
#define STACK_NODES 64

/* A node of the walk: its key range, its geometry (bits -1: none), distance bounds, the
 * positions of its points in each run, and whether the query's box surely holds them all. */
typedef struct {
    uint64_t lo, hi;
    double lb, ub;   /* metres: every point of the node is within [lb, ub] of the query */
    int bits;
    uint32_t row, col;
    size_t p0[3], p1[3], held;
    int boxed;       /* 1: no box, or the box holds every point of the node */
} Node;

/* Nodes holding at most this many points are read without bounds: bounding them costs about
 * what reading them does. */
#define BOUND_MIN 32

/* Growable arrays of the walk start in the query's own stack buffers (a page's walk rarely
 * outgrows them) and move to the heap when they fill: ``owned`` says which. */
static void *
grow(void *v, size_t n, size_t *cap, int *owned, size_t size)
{
    size_t more = 2 * *cap;
    void *w = *owned ? realloc(v, more * size) : malloc(more * size);
    if (!w) return NULL;
    if (!*owned) memcpy(w, v, n * size);
    *cap = more;
    *owned = 1;
    return w;
}

typedef struct {
    Node *v;
    size_t n, cap;
    int owned;
} NodeHeap;   /* a binary min-heap by lb */

static int
heap_push(NodeHeap *h, Node x)
{
    if (h->n == h->cap) {
        Node *v = grow(h->v, h->n, &h->cap, &h->owned, sizeof *v);
        if (!v) return -1;
        h->v = v;
    }
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].lb > x.lb) { h->v[i] = h->v[(i - 1) / 2]; i = (i - 1) / 2; }
    h->v[i] = x;
    return 0;
}

static Node
heap_pop(NodeHeap *h)
{
    Node top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1].lb < h->v[c].lb) c++;
        if (h->v[c].lb >= last.lb) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Bounds of a Z-order node: its cell's rectangle, grown by 1e-9 degrees (far above the
 * rounding of grid_row/grid_col), and the triangle inequality through its centre c: every
 * point p of it has |d(q, c) - d(c, p)| <= d(q, p) <= d(q, c) + d(c, p), and d(c, p) <=
 * R (h/2 + cos(phi_e) w/2) (along the meridian to p's latitude, then along that parallel,
 * which is never shorter than the great circle; phi_e is the rectangle's latitude nearest the
 * equator). Rectangles over 10 degrees get no bounds (0, inf): they are only split or read. */
static void
node_bounds(double lat, double lon, Node *x)
{
    x->lb = 0.0;
    x->ub = INFINITY;
    if (x->bits < 0 || x->held <= BOUND_MIN) return;
    int lat_bits = x->bits / 2, lon_bits = x->bits - x->bits / 2;
    double h = ldexp(180.0, -lat_bits), w = ldexp(360.0, -lon_bits);
    if (h > 10.0 || w > 10.0) return;
    double lat0 = x->row * h - 90.0 - 1e-9, lat1 = (x->row + 1.0) * h - 90.0 + 1e-9;
    double clat = 0.5 * (lat0 + lat1), clon = (x->col + 0.5) * w - 180.0;
    double eq = lat0 > 0.0 ? lat0 : lat1 < 0.0 ? lat1 : 0.0;
    double rc = EARTH_RADIUS_M * (0.5 * (lat1 - lat0) + cos(eq * RAD) * (0.5 * w + 1e-9)) * RAD;
    double dc = haversine(lat, lon, clat, clon);
    x->lb = fmax(0.0, (dc - rc) * (1.0 - REL_MARGIN) - ABS_MARGIN_M);
    x->ub = (dc + rc) * (1.0 + REL_MARGIN) + ABS_MARGIN_M;
}

/* Where a node's points are in each run: found within its parent's (when it has one); a node
 * that starts right after the previous one (``prev``: the root node or the sibling placed
 * before it) starts where that one ended. */
static void
node_place(const Store *s, const Run *const runs[3], Node *x, const Node *parent, const Node *prev)
{
    x->held = 0;
    for (int r = 0; r < 3; r++) {
        const Run *run = runs[r];
        x->p0[r] = x->p1[r] = 0;
        if (run->n == 0) continue;
        int follows = prev && prev->hi != UINT64_MAX && prev->hi + 1 == x->lo;
        if (parent) {
            size_t a = parent->p0[r], b = parent->p1[r];
            x->p0[r] = x->lo == parent->lo ? a : follows ? prev->p1[r] : run_lower_in(run, s->kind, x->lo, a, b);
            x->p1[r] = x->hi == parent->hi ? b : run_lower_in(run, s->kind, x->hi + 1, x->p0[r], b);
        } else {
            x->p0[r] = follows ? prev->p1[r] : run_lower(run, s->kind, x->lo);
            x->p1[r] = x->hi == UINT64_MAX ? run->n : run_lower(run, s->kind, x->hi + 1);
        }
        x->held += x->p1[r] - x->p0[r];
    }
}

enum { BOX_CROSSES, BOX_HOLDS, BOX_MISSES };

/* How a Z-order node's rectangle, grown by 1e-9 degrees as in node_bounds, lies against the
 * box: every point of it inside (BOX_HOLDS), none (BOX_MISSES), or either (BOX_CROSSES, and
 * for a node without geometry). A point's longitude is never below -180 nor above 180, so a
 * rectangle reaching past them holds only points within. */
static int
node_in_box(const QBox *b, const Node *x)
{
    if (x->bits < 0) return BOX_CROSSES;
    int lat_bits = x->bits / 2, lon_bits = x->bits - x->bits / 2;
    double h = ldexp(180.0, -lat_bits), w = ldexp(360.0, -lon_bits);
    double lat0 = x->row * h - 90.0 - 1e-9, lat1 = (x->row + 1.0) * h - 90.0 + 1e-9;
    double lon0 = x->col * w - 180.0 - 1e-9, lon1 = (x->col + 1.0) * w - 180.0 + 1e-9;
    if (lat1 < b->south || lat0 > b->north) return BOX_MISSES;
    int lon_in, lon_out;
    if (b->west <= b->east) {
        lon_in = b->west <= lon0 && lon1 <= b->east;
        lon_out = lon1 < b->west || lon0 > b->east;
    } else {   /* [west, 180] and [-180, east] */
        lon_in = b->west <= lon0 || lon1 <= b->east;
        lon_out = lon0 > b->east && lon1 < b->west;
    }
    if (lon_in && b->south <= lat0 && lat1 <= b->north) return BOX_HOLDS;
    /* A pole is at every longitude: a node reaching one the box reaches may hold a point in it. */
    int pole = (lat1 >= 90.0 && b->north >= 90.0) || (lat0 <= -90.0 && b->south <= -90.0);
    return lon_out && !pole ? BOX_MISSES : BOX_CROSSES;
}

/* Place, bound and queue a node unless it is empty, surely outside the radius or outside the
 * box. */
static int
node_push(NodeHeap *heap, const Store *s, const Run *const runs[3], Node *x, const Node *parent,
          const Node *prev, double lat, double lon, double radius_m, const QBox *box)
{
    node_place(s, runs, x, parent, prev);
    if (x->held == 0) return 0;
    if (!x->boxed) {
        int placed = node_in_box(box, x);
        if (placed == BOX_MISSES) return 0;
        x->boxed = placed == BOX_HOLDS;
    }
    node_bounds(lat, lon, x);
    return x->lb <= radius_m ? heap_push(heap, *x) : 0;
}

/* Live points of r in [p0, p1). */
static size_t
live_in(const Run *r, size_t p0, size_t p1)
{
    size_t n = p1 - p0;
    if (!r->dead) return n;
    for (size_t i = p0; i < p1;) {
        if ((i & 63) == 0 && i + 64 <= p1) {
            uint64_t w;
            memcpy(&w, r->dead + i / 8, 8);
            n -= (size_t)__builtin_popcountll(w);
            i += 64;
        } else {
            n -= run_is_dead(r, i);
            i++;
        }
    }
    return n;
}

/* The a-scale of a distance (sin^2(d / 2R)), or 2 (above every a) when it has none. */
static double
a_of(double d)
{
    if (!(d / TWO_R < 1.5)) return 2.0;
    double s = sin(d / TWO_R);
    return s * s;
}

/* A max-heap of the ``limit`` smallest upper bounds seen: its top is the page's cut. */
typedef struct {
    double *v;
    size_t n, k;
} Cut;

static void
cut_add(Cut *c, double x)
{
    if (c->k == 0) return;
    size_t i;
    if (c->n < c->k) i = c->n++;
    else if (x < c->v[0]) {   /* replace the top, sift down */
        size_t j = 0;
        for (;;) {
            size_t l = 2 * j + 1;
            if (l >= c->n) break;
            if (l + 1 < c->n && c->v[l + 1] > c->v[l]) l++;
            if (c->v[l] <= x) break;
            c->v[j] = c->v[l];
            j = l;
        }
        c->v[j] = x;
        return;
    } else return;
    while (i > 0 && c->v[(i - 1) / 2] < x) { c->v[i] = c->v[(i - 1) / 2]; i = (i - 1) / 2; }
    c->v[i] = x;
}

static double
cut_value(const Cut *c)
{
    return c->k && c->n == c->k ? c->v[0] * (1.0 + BAND) : INFINITY;
}

typedef struct {
    Cand *v;
    size_t n, cap;
    int owned;
} Cands;

/* order[0..n) sorted by keys[order[i]]: a Shell sort (gaps 3h + 1), which is an insertion
 * sort for the dozen nodes of most plans, and needs neither a comparator nor shared state. */
static void
order_by_key(size_t *order, const uint64_t *keys, size_t n)
{
    size_t gap = 1;
    while (gap < n / 3) gap = 3 * gap + 1;
    for (; gap > 0; gap /= 3)
        for (size_t i = gap; i < n; i++) {
            size_t x = order[i], j = i;
            for (; j >= gap && keys[order[j - gap]] > keys[x]; j -= gap) order[j] = order[j - gap];
            order[j] = x;
        }
}

static int
cands_add(Cands *c, Cand x)
{
    if (c->n == c->cap) {
        Cand *v = grow(c->v, c->n, &c->cap, &c->owned, sizeof *v);
        if (!v) return -1;
        c->v = v;
    }
    c->v[c->n++] = x;
    return 0;
}

/* Count a match, place it against the page's start, and keep it when it may be on the page. */
static int
admit(const Q *q, const QAfter *after, long limit, Cand y, QPage *out, Cands *page, Cut *cut)
{
    out->total++;
    if (after->on) {
        if (y.d < 0.0 && q->afast && y.hi < q->athr_lo) return 0;
        if (!(y.d < 0.0 && q->afast && y.lo > q->athr_hi)) {
            make_exact(q, &y);
            if (!(y.d > after->d || (y.d == after->d && y.id > after->id))) return 0;
        }
    }
    out->following++;
    if (limit == 0 || (limit > 0 && y.lo > cut_value(cut))) return 0;
    if (cands_add(page, y) < 0) return -1;
    cut_add(cut, y.hi);
    return 0;
}

int
query_page(const Store *s, const Ranges *nodes, int split, int max_bits, int counting, double lat, double lon, double radius_m, long limit,
           const QAfter *after, const QBox *box, QFilter filter, void *ctx, QPage *out)
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

    Cand page_buf[STACK_CANDS], held_buf[STACK_CANDS];
    Node heap_buf[STACK_NODES];
    double cut_buf[STACK_CANDS];
    size_t order_buf[STACK_NODES];
    Cands page = {page_buf, 0, STACK_CANDS, 0}, held_back = {held_buf, 0, STACK_CANDS, 0};
    NodeHeap heap = {heap_buf, 0, STACK_NODES, 0};
    Cut cut = {cut_buf, 0, limit > 0 ? (size_t)limit : 0};
    int status = 0;
    if (cut.k > STACK_CANDS && !(cut.v = malloc(cut.k * sizeof *cut.v))) status = -1;
    const Run *const runs[3] = {&s->base, &s->frozen, &s->active};
    /* The plan's nodes in key order, so that touching ones share their boundary searches. */
    size_t *order = nodes->n <= STACK_NODES ? order_buf : malloc(nodes->n * sizeof *order);
    if (!order) status = -1;
    for (size_t k = 0; k < nodes->n && status == 0; k++) order[k] = k;
    int sorted = 1;
    for (size_t k = 1; k < nodes->n; k++) sorted &= nodes->lo[k - 1] <= nodes->lo[k];
    if (order && !sorted) order_by_key(order, nodes->lo, nodes->n);
    Node prev;
    for (size_t i = 0; i < nodes->n && status == 0; i++) {
        size_t k = order[i];
        Node x = {nodes->lo[k], nodes->hi[k], 0.0, INFINITY, nodes->bits[k], nodes->row[k], nodes->col[k], {0}, {0}, 0,
                  box == NULL};
        if (node_push(&heap, s, runs, &x, NULL, i ? &prev : NULL, lat, lon, radius_m, box) < 0) status = -1;
        prev = x;
    }
    if (order != order_buf) free(order);
    while (heap.n > 0 && status == 0) {
        Node x = heap_pop(&heap);
        const size_t *p0 = x.p0, *p1 = x.p1;
        size_t held = x.held;
        int inside = x.ub < radius_m;
        int for_page = limit < 0 || a_of(x.lb) <= cut_value(&cut);
        if (!for_page && !counting) break;   /* nodes come nearest first: no later one can hold a hit */
        if (inside && !for_page && !filter && x.boxed && (!after->on || x.lb > after->d || x.ub < after->d)) {
            size_t live = 0;
            for (int r = 0; r < 3; r++) live += live_in(runs[r], p0[r], p1[r]);
            out->total += live;
            if (!after->on || x.lb > after->d) out->following += live;
            continue;
        }
        if (split > 0 && held > (size_t)split && x.bits >= 0 && x.bits < max_bits && !(inside && !for_page && filter)) {
            /* Odd bits: a latitude bit, then quarters. The children are placed in key order, so
             * each starts where the one before it ended. */
            int more = x.bits & 1 ? 1 : 2;
            Node y[4];
            for (uint32_t i = 0; i < (1u << more); i++) {
                Node c = x;
                c.bits = x.bits + more;
                c.row = 2 * x.row + (more == 2 ? i >> 1 : i);
                c.col = more == 2 ? 2 * x.col + (i & 1) : x.col;
                uint64_t code = zorder_code(c.bits, c.row, c.col);
                c.lo = c.bits == 64 ? code : code << (64 - c.bits);
                c.hi = c.bits == 64 ? c.lo : c.lo | (UINT64_MAX >> c.bits);
                uint32_t j = i;
                for (; j > 0 && y[j - 1].lo > c.lo; j--) y[j] = y[j - 1];
                y[j] = c;
            }
            for (uint32_t i = 0; i < (1u << more) && status == 0; i++)
                if (node_push(&heap, s, runs, &y[i], &x, i ? &y[i - 1] : NULL, lat, lon, radius_m, box) < 0)
                    status = -1;
            continue;
        }
        for (int r = 0; r < 3 && status == 0; r++) {
            const Run *run = runs[r];
            for (size_t i = p0[r]; i < p1[r]; i++) {
                if (run_is_dead(run, i)) continue;
                if (!x.boxed && !box_holds(box, run->lat[i], run->lon[i])) continue;
                Cand y = {0.0, 0.0, -1.0, run->lat[i], run->lon[i], run->id[i]};
                int b = q.fast ? bound(&q, y.lat, y.lon, &y.lo, &y.hi) : 0;
                if (b < 0 || (b > 0 && y.lo > q.thr_hi)) continue;
                if (b == 0 || y.hi >= q.thr_lo) {
                    make_exact(&q, &y);
                    if (!(y.d <= radius_m)) continue;
                }
                /* With a filter, the matches are kept and filtered after the walk: the filter
                 * runs Python code, which must not see the store in the middle of a scan. */
                if (filter ? cands_add(&held_back, y) < 0 : admit(&q, after, limit, y, out, &page, &cut) < 0) {
                    status = -1;
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < held_back.n && status == 0; i++) {
        int f = filter(ctx, held_back.v[i].id, held_back.v[i].lat, held_back.v[i].lon);
        if (f < 0) status = -2;
        else if (f && admit(&q, after, limit, held_back.v[i], out, &page, &cut) < 0) status = -1;
    }
    if (status == 0 && cut_page(&q, page.v, page.n, limit, out) < 0) status = -1;
    if (page.owned) free(page.v);
    if (held_back.owned) free(held_back.v);
    if (heap.owned) free(heap.v);
    if (cut.v != cut_buf) free(cut.v);
    return status;
}
