/* S2 leaf cell ids and cap coverings (see _s2geom.h).
 *
 * Leaf ids repeat s2sphere's float operations one for one (LatLng.from_degrees, to_point,
 * xyz_to_face_uv, the quadratic uv_to_st, st_to_ij and from_face_ij), so they are equal bit
 * for bit. Coverings are our own: a flood fill over the cells of one level, tested against the
 * cap with distance lower bounds that can only err towards keeping a cell. */
#include "_s2geom.h"

#include <math.h>

#ifdef __clang__ /* GCC ignores the standard pragma: it needs -ffp-contract=off */
#pragma STDC FP_CONTRACT OFF
#endif

#define PI 3.14159265358979323846   /* Py_MATH_PI: math.radians multiplies by PI / 180.0 */
#define MAX_SIZE 1073741824         /* 2^30 leaf cells along a face edge */
#define FINEST 28                   /* finest covering level: a cell is >= 4 leaves wide */
#define MIN_WIDTH 0.94280904158206337 /* 2 sqrt(2) / 3: narrowest level-0 cell width, radians */
/* Slack added to every radius test, radians (6 micrometres on the Earth). It absorbs the
 * rounding of everything computed below, a few 1e-16 rad: a point's xyz, its projection to
 * (face, s, t) that picks its leaf, and our cell edges, centres and distances. */
#define EPS 1e-12
/* Caps from this radius on (9,556 km on the Earth) get the whole curve. The half-space test
 * of may_intersect compares sines, where EPS / 2 of angle is worth cos(r) EPS / 2: at 1.5 rad
 * that is still 3.5e-14, well above the test's rounding (about 2e-15). */
#define WHOLE 1.5

typedef struct {
    int face;
    uint32_t i, j; /* position of the cell among the 2^level x 2^level of its face */
} Cell;

typedef struct {
    double p[3];   /* the centre, unit vector */
    double radius; /* angle_rad + EPS */
    double sin_r;  /* sin(radius), radius < WHOLE < pi/2 */
    double sin_half, cos_half; /* of radius / 2 */
} Cap;

static void
to_point(double lat_deg, double lon_deg, double p[3])
{
    double phi = lat_deg * (PI / 180.0), theta = lon_deg * (PI / 180.0);
    double cosphi = cos(phi);
    p[0] = cos(theta) * cosphi;
    p[1] = sin(theta) * cosphi;
    p[2] = sin(phi);
}

/* s2sphere's xyz_to_face_uv: the face of the largest component (ties go to the later axis,
 * as largest_abs_component's strict comparisons do), then the ratios. */
static int
xyz_to_face_uv(const double p[3], double *u, double *v)
{
    double a0 = fabs(p[0]), a1 = fabs(p[1]), a2 = fabs(p[2]);
    int face = a0 > a1 ? (a0 > a2 ? 0 : 2) : (a1 > a2 ? 1 : 2);
    if (p[face] < 0) face += 3;
    switch (face) {
    case 0: *u = p[1] / p[0]; *v = p[2] / p[0]; break;
    case 1: *u = -p[0] / p[1]; *v = p[2] / p[1]; break;
    case 2: *u = -p[0] / p[2]; *v = -p[1] / p[2]; break;
    case 3: *u = p[2] / p[0]; *v = p[1] / p[0]; break;
    case 4: *u = p[2] / p[1]; *v = -p[0] / p[1]; break;
    default: *u = -p[1] / p[2]; *v = -p[0] / p[2]; break;
    }
    return face;
}

/* A point in the frame of a face: xyz = pn * N + pu * U + pv * V, where (N, U, V) are the
 * face's normal and u and v axes (face_uv_to_xyz(face, u, v) = N + u U + v V). The axes are
 * signed unit vectors along x, y, z, so these are exact. */
static void
to_face_frame(int face, const double p[3], double *pu, double *pv, double *pn)
{
    switch (face) {
    case 0: *pu = p[1]; *pv = p[2]; *pn = p[0]; break;
    case 1: *pu = -p[0]; *pv = p[2]; *pn = p[1]; break;
    case 2: *pu = -p[0]; *pv = -p[1]; *pn = p[2]; break;
    case 3: *pu = -p[2]; *pv = -p[1]; *pn = -p[0]; break;
    case 4: *pu = -p[2]; *pv = p[0]; *pn = -p[1]; break;
    default: *pu = p[1]; *pv = p[0]; *pn = -p[2]; break;
    }
}

static void
face_uv_to_xyz(int face, double u, double v, double p[3])
{
    switch (face) {
    case 0: p[0] = 1; p[1] = u; p[2] = v; break;
    case 1: p[0] = -u; p[1] = 1; p[2] = v; break;
    case 2: p[0] = -u; p[1] = -v; p[2] = 1; break;
    case 3: p[0] = -1; p[1] = -v; p[2] = -u; break;
    case 4: p[0] = v; p[1] = -1; p[2] = -u; break;
    default: p[0] = v; p[1] = u; p[2] = -1; break;
    }
}

static double
uv_to_st(double u)
{
    return u >= 0 ? 0.5 * sqrt(1 + 3 * u) : 1 - 0.5 * sqrt(1 - 3 * u);
}

static double
st_to_uv(double s)
{
    return s >= 0.5 ? (1.0 / 3.0) * (4 * s * s - 1) : (1.0 / 3.0) * (1 - 4 * (1 - s) * (1 - s));
}

/* s2sphere's st_to_ij: floor(2^30 s) clamped to the face (the product is exact). */
static uint32_t
st_to_ij(double s)
{
    double f = floor(MAX_SIZE * s);
    if (!(f >= 0)) return 0;
    return f >= MAX_SIZE - 1 ? MAX_SIZE - 1 : (uint32_t)f;
}

/* S2's Hilbert curve three levels at a time: HILBERT[o << 6 | i << 3 | j] = p << 2 | o', where
 * (i, j) are three bits each of a leaf's coordinates, o the curve's orientation on entering
 * that 8 x 8 block, p the block's 6 bits of curve position and o' the orientation after it. It
 * is kIJtoPos = {{0,1,3,2}, {0,3,1,2}, {2,3,1,0}, {2,1,3,0}} and kPosToOrientation = {1,0,0,3}
 * applied three times (pos = kIJtoPos[o][i << 1 | j], o ^= kPosToOrientation[pos]), the same
 * tables s2sphere's LOOKUP_POS holds four levels at a time. */
static const uint8_t HILBERT[256] = {
      1,   4,  58,  61,  64,  78,  81,  84,  15,   8,  54,  51,  69,  73,  95,  88,
     16,  30,  32,  46, 123, 119,  97, 100,  21,  25,  37,  41, 124, 114, 111, 104,
    235, 231, 219, 215, 128, 142, 145, 148, 236, 226, 220, 210, 133, 137, 159, 152,
    241, 244, 202, 205, 187, 183, 161, 164, 255, 248, 198, 195, 188, 178, 175, 168,
      0,  14,  17,  20, 234, 237, 240, 254,   5,   9,  31,  24, 230, 227, 245, 249,
     59,  55,  33,  36, 218, 221, 203, 199,  60,  50,  47,  40, 214, 211, 204, 194,
     65,  68, 122, 125, 129, 132, 186, 189,  79,  72, 118, 115, 143, 136, 182, 179,
     80,  94,  96, 110, 144, 158, 160, 174,  85,  89, 101, 105, 149, 153, 165, 169,
    170, 173, 176, 190, 193, 196, 250, 253, 166, 163, 181, 185, 207, 200, 246, 243,
    154, 157, 139, 135, 208, 222, 224, 238, 150, 147, 140, 130, 213, 217, 229, 233,
    106, 109, 112, 126,  43,  39,  27,  23, 102,  99, 117, 121,  44,  34,  28,  18,
     90,  93,  75,  71,  49,  52,  10,  13,  86,  83,  76,  66,  63,  56,   6,   3,
    171, 167, 155, 151, 107, 103,  91,  87, 172, 162, 156, 146, 108,  98,  92,  82,
    177, 180, 138, 141, 113, 116,  74,  77, 191, 184, 134, 131, 127, 120,  70,  67,
    192, 206, 209, 212,  42,  45,  48,  62, 197, 201, 223, 216,  38,  35,  53,  57,
    251, 247, 225, 228,  26,  29,  11,   7, 252, 242, 239, 232,  22,  19,  12,   2,
};

/* from_face_ij: the curve position of leaf (i, j) of a face, whose curve starts with the
 * orientation of the face's swap bit; 30 levels = 10 blocks. */
static uint64_t
from_face_ij(int face, uint32_t i, uint32_t j)
{
    unsigned orientation = (unsigned)face & 1;
    uint64_t pos = 0;
    for (int k = 27; k >= 0; k -= 3) {
        unsigned e = HILBERT[orientation << 6 | ((i >> k) & 7) << 3 | ((j >> k) & 7)];
        pos = pos << 6 | e >> 2;
        orientation = e & 3;
    }
    return (uint64_t)face << 61 | pos << 1 | 1;
}

uint64_t
s2geom_leaf_id(double lat_deg, double lon_deg)
{
    double p[3], u, v;
    to_point(lat_deg, lon_deg, p);
    int face = xyz_to_face_uv(p, &u, &v);
    return from_face_ij(face, st_to_ij(uv_to_st(u)), st_to_ij(uv_to_st(v)));
}

/* The edge neighbour of a cell at `level` (<= FINEST) in direction d: 0 -i, 1 +i, 2 -j, 3 +j.
 * Within the face it is the next (i, j). Across a face edge we do what S2's FromFaceIJWrap
 * does: take the leaf just beyond the edge, level with the middle of the cell's side, map its
 * centre (linear projection) through xyz to the adjacent face and take that leaf's ancestor.
 * The detour moves the leaf at most one leaf along the shared edge, and a cell at level
 * <= FINEST is at least 4 leaves wide, so the middle leaf stays within the neighbour. The cube's
 * faces split a shared edge at the same points at every level, so the neighbour shares the
 * whole side. */
static Cell
neighbour(Cell c, int level, int d)
{
    int64_t n = (int64_t)1 << level;
    int64_t i = (int64_t)c.i + (d == 0 ? -1 : d == 1 ? 1 : 0);
    int64_t j = (int64_t)c.j + (d == 2 ? -1 : d == 3 ? 1 : 0);
    if (i >= 0 && i < n && j >= 0 && j < n) return (Cell){c.face, (uint32_t)i, (uint32_t)j};
    int shift = 30 - level;
    int64_t half = ((int64_t)1 << shift) / 2;
    int64_t li = i < 0 ? -1 : i >= n ? MAX_SIZE : (i << shift) + half;
    int64_t lj = j < 0 ? -1 : j >= n ? MAX_SIZE : (j << shift) + half;
    double scale = 1.0 / MAX_SIZE, p[3], u, v;
    face_uv_to_xyz(c.face, scale * (double)(2 * li + 1 - MAX_SIZE),
                   scale * (double)(2 * lj + 1 - MAX_SIZE), p);
    int face = xyz_to_face_uv(p, &u, &v);
    return (Cell){face, st_to_ij(0.5 * (u + 1)) >> shift, st_to_ij(0.5 * (v + 1)) >> shift};
}

/* Whether a cell may meet the cap: 0 only when a lower bound on the distance from the centre
 * to the cell exceeds the radius r. Two lower bounds, each valid on its own:
 *
 * 1. The cell is the intersection of four hemispheres, u >= u0, u <= u1, v >= v0, v <= v1,
 *    bounded by the great circles through its edges (normals n = U - u0 N etc. in the face
 *    frame; together they also exclude the opposite face). A path from the centre p into the
 *    cell crosses every circle whose hemisphere p is outside, so it is at least as long as the
 *    distance from p to that circle, asin(-p.n / |n|). It exceeds r (< pi/2) when
 *    -p.n > 0 and (p.n)^2 > sin^2(r) |n|^2.
 * 2. The cell lies in its bounding cap: centred on c, the normalised (u, v) centre, with radius
 *    R, the angle to its farthest vertex w (the cell is the convex hull of its vertices). The
 *    distance to the cell is at least |pc| - R, so the cell may meet the cap only when
 *    |pc| <= R + r, i.e. chord(p, c) / 2 <= sin((R + r) / 2) = sin(R/2) cos(r/2) +
 *    cos(R/2) sin(r/2), with sin(R/2) = chord(c, w) / 2 and (R + r) / 2 < pi/2. Chords are
 *    differences of unit vectors, accurate for small angles where cosines are not (which is
 *    also why w is the vertex of the largest chord, not of the smallest cosine: those tie).
 * The first is tight beside an edge, the second beyond a corner. */
static int
may_intersect(const Cap *cap, int level, Cell c)
{
    double size = ldexp(1.0, -level);
    double u0 = st_to_uv(c.i * size), u1 = st_to_uv((c.i + 1) * size);
    double v0 = st_to_uv(c.j * size), v1 = st_to_uv((c.j + 1) * size);
    double q[3];
    to_face_frame(c.face, cap->p, &q[0], &q[1], &q[2]); /* (u, v, normal) components */
    double s2 = cap->sin_r * cap->sin_r;
    double out[4] = {u0 * q[2] - q[0], q[0] - u1 * q[2], v0 * q[2] - q[1], q[1] - v1 * q[2]};
    double edge[4] = {u0, u1, v0, v1};
    for (int k = 0; k < 4; k++)
        if (out[k] > 0 && out[k] * out[k] > s2 * (1 + edge[k] * edge[k])) return 0;

    double uc = 0.5 * (u0 + u1), vc = 0.5 * (v0 + v1), nc = sqrt(uc * uc + vc * vc + 1);
    double cu = uc / nc, cv = vc / nc, cn = 1 / nc, chord2 = 0; /* c, and the largest chord^2 */
    for (int k = 0; k < 4; k++) {
        double u = k & 1 ? u1 : u0, v = k & 2 ? v1 : v0, nw = sqrt(u * u + v * v + 1);
        double du = cu - u / nw, dv = cv - v / nw, dn = cn - 1 / nw;
        double d2 = du * du + dv * dv + dn * dn;
        if (d2 > chord2) chord2 = d2;
    }
    double pu = q[0] - cu, pv = q[1] - cv, pn = q[2] - cn;
    double half_r = 0.5 * sqrt(chord2); /* sin(R/2) */
    double bound = 2 * (half_r * cap->cos_half + sqrt(1 - half_r * half_r) * cap->sin_half);
    return pu * pu + pv * pv + pn * pn <= bound * bound;
}

static int
same_cell(Cell a, Cell b)
{
    return a.face == b.face && a.i == b.i && a.j == b.j;
}

/* The cells of `level` that may meet the cap, into out[], or -1 when there are more than
 * `limit`. Breadth-first from `start`, the cell of the centre's leaf, over edge neighbours
 * that may meet the cap. It finds every cell that meets the cap grown by EPS / 2 (the cap
 * whose leaves we must cover, plus rounding):
 * - those cells are edge-connected: the grown cap is connected, a path inside it passes from
 *   cell to cell across edges, and where it passes a vertex, every cell around that vertex
 *   meets the cap, and they form a ring joined by edges;
 * - they all pass may_intersect, whose bounds are off by far less than EPS / 2;
 * - start is one of them: the centre's leaf is within rounding of the centre.
 * So each is reached through cells that pass. Each accepted cell adds at most four cells to
 * `seen`, so it holds at most 1 + 4 limit. */
static int
flood(const Cap *cap, int level, Cell start, int limit, Cell *out)
{
    Cell seen[1 + 4 * S2GEOM_MAX_CELLS];
    int nseen = 1, nout = 1;
    seen[0] = out[0] = start;
    for (int q = 0; q < nout; q++) {
        for (int d = 0; d < 4; d++) {
            Cell nb = neighbour(out[q], level, d);
            int k = 0;
            while (k < nseen && !same_cell(seen[k], nb)) k++;
            if (k < nseen) continue;
            seen[nseen++] = nb;
            if (!may_intersect(cap, level, nb)) continue;
            if (nout == limit) return -1;
            out[nout++] = nb;
        }
    }
    return nout;
}

/* Sorts ranges by lo (insertion sort: a handful) and joins those that touch. The cells of one
 * level are disjoint, so their ranges never overlap; the ranges of cells next to each other on
 * the curve are [id - lsb + 1, id + lsb - 1] and [id + lsb + 1, ...]: between them lies only
 * id + lsb, an even number and so no leaf id (leaf ids are odd). Returns the count. */
static int
sort_and_merge(uint64_t *lo, uint64_t *hi, int n)
{
    for (int a = 1; a < n; a++) {
        uint64_t l = lo[a], h = hi[a];
        int b = a;
        for (; b > 0 && lo[b - 1] > l; b--) {
            lo[b] = lo[b - 1];
            hi[b] = hi[b - 1];
        }
        lo[b] = l;
        hi[b] = h;
    }
    int m = 0;
    for (int a = 0; a < n; a++) {
        if (m > 0 && lo[a] - hi[m - 1] <= 2) {
            hi[m - 1] = hi[a];
        } else {
            lo[m] = lo[a];
            hi[m] = hi[a];
            m++;
        }
    }
    return m;
}

int
s2geom_cap_ranges(double lat_deg, double lon_deg, double angle_rad, int max_cells,
                  uint64_t *lo, uint64_t *hi, int cap)
{
    if (max_cells < 1 || cap < 1 || !isfinite(lat_deg) || !isfinite(lon_deg)) return -1;
    int limit = max_cells < cap ? max_cells : cap;
    if (limit > S2GEOM_MAX_CELLS) limit = S2GEOM_MAX_CELLS;
    Cap c;
    c.radius = (angle_rad < 0 ? 0 : angle_rad) + EPS; /* NaN stays NaN */
    if (!(c.radius < WHOLE)) goto whole; /* also NaN */
    c.sin_r = sin(c.radius);
    c.sin_half = sin(0.5 * c.radius);
    c.cos_half = cos(0.5 * c.radius);
    to_point(lat_deg, lon_deg, c.p);

    /* Start one level finer than where about `limit` cells of the narrowest width span the
     * cap's diameter ((sqrt(limit) - 1) widths across), then go coarser until one fits. */
    double across = sqrt((double)limit) - 1;
    int e;
    frexp(MIN_WIDTH * (across > 1 ? across : 1) / (2 * c.radius), &e);
    int level = e < 0 ? 0 : e > FINEST ? FINEST : e; /* e - 1 = floor(log2), plus one level */

    double u, v;
    int face = xyz_to_face_uv(c.p, &u, &v);
    uint32_t ci = st_to_ij(uv_to_st(u)), cj = st_to_ij(uv_to_st(v));
    Cell cells[S2GEOM_MAX_CELLS];
    for (; level >= 0; level--) {
        int shift = 30 - level;
        int n = flood(&c, level, (Cell){face, ci >> shift, cj >> shift}, limit, cells);
        if (n < 0) continue;
        /* A cell's leaves are the ids within lsb - 1 of its id (lsb = 4^(30 - level)), and its
         * id is any of its leaves with the bits below lsb replaced by lsb (CellId.parent). */
        uint64_t lsb = (uint64_t)1 << 2 * shift;
        for (int k = 0; k < n; k++) {
            uint64_t id = (from_face_ij(cells[k].face, cells[k].i << shift, cells[k].j << shift) & ~(lsb - 1)) | lsb;
            lo[k] = id - (lsb - 1);
            hi[k] = id + (lsb - 1);
        }
        return sort_and_merge(lo, hi, n);
    }
whole:
    lo[0] = 0;
    hi[0] = UINT64_MAX;
    return 1;
}
