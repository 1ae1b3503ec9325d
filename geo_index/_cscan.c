/* geo_index._cscan: the candidate scan of geo_index._scan.search, compiled.
 *
 * scan(vec_groups, rec_groups, lat, lon, radius_m, limit) -> [(id, distance_m), ...]
 *
 * Same contract and same result, bit for bit, as the pure-Python scan:
 *   - vec_groups[g] is a list of unit vectors (x, y, z) (tuples of floats) or any
 *     C-contiguous buffer of 3 * len(rec_groups[g]) doubles (a numpy (n, 3) array);
 *   - rec_groups[g] is a list of records (phi, lam, cos_phi, id);
 *   - or, a *packed* group: vec_groups[g] is a bytearray of six native doubles per point
 *     (x, y, z, phi, lam, cos_phi) and rec_groups[g] the list of their ids. Scanning it reads
 *     two contiguous blocks instead of several objects per point (GeohashIndex's cells);
 *   - the squared chord to the query is only a filter, padded exactly as in Python;
 *   - the survivors' distances are evaluated with the operations of
 *     geo_index.distance.haversine_m, in the same order, with the C library's sin, asin
 *     and sqrt (the functions Python's math module calls), so the floats are identical.
 *     The module is built with -ffp-contract=off: a fused multiply-add would round
 *     differently.
 *   - the result is sorted by (distance, id) with Python's own comparison of the ids.
 *
 * scan_levels(levels, max_cells, lat, lon, radius_m, limit) is GeohashIndex's whole query:
 * it finds the cells as GeohashIndex._grid does (same box, same level, same rows and
 * columns, with the operations of geo_index.distance.cap_bounds), then scans them as scan().
 * A cell is a tuple (vectors, records) or (packed, ids), as the groups above; a level's
 * cells are a dict or a CellMap (_ccells.c) of cell code -> cell.
 *
 * Ids are compared (Python's <) only to order equal distances and against ``after``; their
 * comparison must not change the index being scanned (ints and strings never do).
 *
 * scan(..., limit, after) and scan_levels(..., limit, after) page instead: they return
 * (total, following, hits), where total counts the points within the radius, following those
 * of them ordered after ``after`` = (distance, id) (all of them when None), and hits is the
 * first ``limit`` of those, as above. Counting needs no exact distance except for the few
 * candidates whose chord lies within a hair (1e-9 relative plus 1 mm) of the radius or of
 * ``after``'s distance, nor a float object per match: only the page is built.
 */
#include "_ccells.h"
#include "_cscan_api.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Must equal geo_index.distance and geo_index._scan. */
#define EARTH_RADIUS_M 6371008.8
#define REL_MARGIN 1e-9
#define ABS_MARGIN_M 1e-3
#define CHORD_REL 1e-9
#define CHORD_ABS 1e-12

typedef struct {
    double key;           /* squared chord to the query */
    double d;             /* exact distance, or -1 while not computed */
    const char *terms;    /* phi, lam, cos_phi in a packed cell (3 native doubles), or NULL */
    PyObject *rec;        /* borrowed: the record tuple (record groups), or NULL */
    PyObject *id;         /* borrowed: the id (packed cells), or NULL: then the record's */
} Cand;

/* A packed cell: PACKED_DOUBLES native doubles per point, x, y, z, phi, lam, cos_phi. */
#define PACKED_DOUBLES 6
#define PACKED_BYTES (PACKED_DOUBLES * (Py_ssize_t)sizeof(double))

/* A hit: its distance and its id (borrowed from the record or the cell). */
typedef GeoHit Hit;

/* The query: its terms as geo_index._scan.search computes them, and the radius. */
typedef struct {
    double phi, lam, cos_phi, v[3], radius;
} Query;

/* A page's starting point: only hits ordered after (d, id) count. */
typedef struct {
    int on;
    double d;
    PyObject *id;    /* borrowed */
} After;

/* Only points whose id maps to ``value`` in ``table`` (a list indexed by int id, or a dict)
 * count; no filter when ``table`` is NULL. */
typedef struct {
    PyObject *table;    /* borrowed */
    PyObject *value;    /* borrowed */
} Where;

static const Where NO_WHERE = {NULL, NULL};

static int sort_failed;

static int
hit_cmp(const void *pa, const void *pb)
{
    const Hit *a = (const Hit *)pa;
    const Hit *b = (const Hit *)pb;
    if (a->d < b->d) return -1;
    if (a->d > b->d) return 1;
    if (a->id == b->id) return 0;
    int lt = PyObject_RichCompareBool(a->id, b->id, Py_LT);
    if (lt < 0) { sort_failed = 1; return 0; }
    if (lt) return -1;
    int gt = PyObject_RichCompareBool(b->id, a->id, Py_LT);
    if (gt < 0) { sort_failed = 1; return 0; }
    return gt ? 1 : 0;
}

/* k-th smallest of keys[0..n) (0-based), reordering keys: Hoare's selection. */
static double
select_kth(double *keys, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = keys[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (keys[i] < pivot) i++;
            while (keys[j] > pivot) j--;
            if (i <= j) {
                double t = keys[i]; keys[i] = keys[j]; keys[j] = t;
                i++; j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return keys[k];
    }
    return keys[k];
}

static int
as_double(PyObject *o, double *out)
{
    if (PyFloat_CheckExact(o)) { *out = PyFloat_AS_DOUBLE(o); return 0; }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

/* The first three items of a tuple of ``size`` items, as doubles; ``what`` names it in the
 * error. */
static int
three_doubles(PyObject *t, Py_ssize_t size, double out[3], const char *what)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != size) {
        PyErr_Format(PyExc_TypeError, "%s", what);
        return -1;
    }
    for (int k = 0; k < 3; k++)
        if (as_double(PyTuple_GET_ITEM(t, k), &out[k]) < 0) return -1;
    return 0;
}

/* Append the candidates of one group whose squared chord is <= cmax2. */
static int
scan_group(PyObject *vecs, PyObject *recs, const double q[3], double cmax2,
           Cand *out, Py_ssize_t *count)
{
    Py_ssize_t n = PyList_GET_SIZE(recs);
    Py_ssize_t c = *count;
    if (PyList_Check(vecs)) {
        if (PyList_GET_SIZE(vecs) != n) {
            PyErr_SetString(PyExc_ValueError, "a vector group and its record group differ in length");
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            double v[3];
            if (three_doubles(PyList_GET_ITEM(vecs, i), 3, v, "a unit vector must be a tuple (x, y, z)") < 0)
                return -1;
            double dx = v[0] - q[0], dy = v[1] - q[1], dz = v[2] - q[2];
            double c2 = dx * dx + dy * dy + dz * dz;
            if (c2 <= cmax2) {
                out[c].key = c2;
                out[c].d = -1.0;
                out[c].terms = NULL;
                out[c].rec = PyList_GET_ITEM(recs, i);
                out[c].id = NULL;
                c++;
            }
        }
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(vecs, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
        if (view.itemsize != (Py_ssize_t)sizeof(double) || (view.format && strcmp(view.format, "d") != 0)
            || view.len != (Py_ssize_t)(3 * n * sizeof(double))) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "a vector array must hold 3 float64 per record");
            return -1;
        }
        const double *v = (const double *)view.buf;
        for (Py_ssize_t i = 0; i < n; i++, v += 3) {
            double dx = v[0] - q[0], dy = v[1] - q[1], dz = v[2] - q[2];
            double c2 = dx * dx + dy * dy + dz * dz;
            if (c2 <= cmax2) {
                out[c].key = c2;
                out[c].d = -1.0;
                out[c].terms = NULL;
                out[c].rec = PyList_GET_ITEM(recs, i);
                out[c].id = NULL;
                c++;
            }
        }
        PyBuffer_Release(&view);
    }
    *count = c;
    return 0;
}

/* Append the points of one packed cell (a bytearray of PACKED_DOUBLES doubles per id, the
 * ids in a list) whose squared chord is <= cmax2. Nothing but these two contiguous blocks is
 * read: no object per point. */
static int
scan_packed(PyObject *packed, PyObject *ids, const double q[3], double cmax2, Cand *out, Py_ssize_t *count)
{
    Py_ssize_t n = PyList_GET_SIZE(ids);
    if (PyByteArray_GET_SIZE(packed) != n * PACKED_BYTES) {
        PyErr_SetString(PyExc_ValueError, "a packed cell must hold 6 float64 per id");
        return -1;
    }
    const char *p = PyByteArray_AS_STRING(packed);
    PyObject **items = PySequence_Fast_ITEMS(ids);
    Py_ssize_t c = *count;
    for (Py_ssize_t i = 0; i < n; i++, p += PACKED_BYTES) {
        double v[3];
        memcpy(v, p, sizeof v);
        double dx = v[0] - q[0], dy = v[1] - q[1], dz = v[2] - q[2];
        double c2 = dx * dx + dy * dy + dz * dz;
        if (c2 <= cmax2) {
            out[c].key = c2;
            out[c].d = -1.0;
            out[c].terms = p + 3 * sizeof(double);
            out[c].rec = NULL;
            out[c].id = items[i];
            c++;
        }
    }
    *count = c;
    return 0;
}

/* A candidate's id (its record already checked by exact()). */
static PyObject *
cand_id(const Cand *cand)
{
    return cand->id != NULL ? cand->id : PyTuple_GET_ITEM(cand->rec, 3);
}

/* Does the candidate pass ``where`` (table[id] == value)? 1 yes, 0 no, -1 error. An id that
 * is not in the table (out of a list's range, or not an int there) does not pass. */
static int
passes(const Cand *cand, const Where *where)
{
    PyObject *id = cand->id;
    if (id == NULL) {
        if (!PyTuple_Check(cand->rec) || PyTuple_GET_SIZE(cand->rec) != 4) {
            PyErr_SetString(PyExc_TypeError, "a record must be a tuple (phi, lam, cos_phi, id)");
            return -1;
        }
        id = PyTuple_GET_ITEM(cand->rec, 3);
    }
    PyObject *got;
    if (PyList_Check(where->table)) {
        if (!PyLong_CheckExact(id)) return 0;
        int overflow;
        long long i = PyLong_AsLongLongAndOverflow(id, &overflow);
        if (overflow || i < 0 || i >= PyList_GET_SIZE(where->table)) return 0;
        got = PyList_GET_ITEM(where->table, (Py_ssize_t)i);
    } else {
        got = PyDict_GetItemWithError(where->table, id);  /* borrowed */
        if (got == NULL) return PyErr_Occurred() ? -1 : 0;
    }
    if (got == where->value) return 1;
    Py_INCREF(got);  /* held while an __eq__ of the value's runs, whatever it does to the table */
    int same = PyObject_RichCompareBool(got, where->value, Py_EQ);
    Py_DECREF(got);
    return same;
}

/* A chord (units of the sphere radius) that every point within dist_m stays under. */
static double
chord_above(double dist_m)
{
    double delta = (dist_m * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M;
    return delta >= M_PI ? 3.0 : 2.0 * sin(0.5 * delta) * (1.0 + CHORD_REL) + CHORD_ABS;
}

/* Its mirror: a point whose squared chord is below the square of this is closer than dist_m
 * by haversine_m too (margins as above, inwards); -1 when no chord is that sure. */
static double
chord_below(double dist_m)
{
    double delta = (dist_m * (1.0 - REL_MARGIN) - ABS_MARGIN_M) / EARTH_RADIUS_M;
    if (delta <= 0.0) return -1.0;
    if (delta >= M_PI) return 3.0;
    double c = 2.0 * sin(0.5 * delta) * (1.0 - CHORD_REL) - CHORD_ABS;
    return c > 0.0 ? c : -1.0;
}

static double
squared(double c)
{
    return c < 0.0 ? -1.0 : c * c;
}

/* The exact distance of a candidate (geo_index._scan._exact, i.e. haversine_m's operations
 * in its order), cached in the candidate. */
static int
exact(Cand *cand, const Query *q)
{
    if (cand->d >= 0.0) return 0;
    double t[3];  /* phi, lam, cos_phi */
    if (cand->terms != NULL)
        memcpy(t, cand->terms, sizeof t);
    else if (three_doubles(cand->rec, 4, t, "a record must be a tuple (phi, lam, cos_phi, id)") < 0)
        return -1;
    double s1 = sin((t[0] - q->phi) * 0.5);
    double s2 = sin((t[1] - q->lam) * 0.5);
    double a = s1 * s1 + q->cos_phi * t[2] * s2 * s2;
    cand->d = 2.0 * EARTH_RADIUS_M * asin(sqrt(a < 1.0 ? a : 1.0));
    return 0;
}

/* Is the candidate's (distance, id) after the page's start? 1 yes, 0 no, -1 error. */
static int
is_after(Cand *cand, const Query *q, const After *after)
{
    if (exact(cand, q) < 0) return -1;
    if (cand->d != after->d) return cand->d > after->d;
    return PyObject_RichCompareBool(cand_id(cand), after->id, Py_GT);
}

/* Keep in cands[0..*n) the candidates within the radius that follow ``after`` (when on);
 * *total counts every candidate within the radius. Exact distances are computed only where
 * the squared chord cannot decide: within a hair of the radius or of the page's start. */
static int
classify(Cand *cands, Py_ssize_t *n, const Query *q, const After *after, Py_ssize_t *total)
{
    double in2 = squared(chord_below(q->radius));
    double lo2 = after->on ? squared(chord_below(after->d)) : -1.0;
    double hi2 = after->on ? squared(chord_above(after->d)) : -1.0;
    Py_ssize_t m = 0, t = 0;
    for (Py_ssize_t i = 0; i < *n; i++) {
        Cand *c = &cands[i];
        if (c->key > in2) {
            if (exact(c, q) < 0) return -1;
            if (c->d > q->radius) continue;
        }
        t++;
        if (after->on && c->key <= hi2) {
            if (c->key < lo2) continue;
            int later = is_after(c, q, after);
            if (later < 0) return -1;
            if (!later) continue;
        }
        cands[m++] = *c;
    }
    *n = m;
    *total = t;
    return 0;
}

/* Start fetching the first lines of each packed group's points. Only a hint: what a
 * group holds is checked where it is scanned. */
static void
prefetch_groups(PyObject *const *vec_groups, Py_ssize_t ngroups)
{
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        if (!PyByteArray_CheckExact(vec_groups[g])) continue;
        const char *p = PyByteArray_AS_STRING(vec_groups[g]);
        Py_ssize_t n = PyByteArray_GET_SIZE(vec_groups[g]);
        for (Py_ssize_t off = 0; off < n && off < 4 * 64; off += 64) __builtin_prefetch(p + off);
    }
}

/* The scan proper over ngroups (vectors, records) pairs. Returns the list of hits, or with
 * ``paged`` the tuple (total within the radius, hits after ``after``, the first ``limit`` of
 * those); or, given ``c_out`` (paged only), fills it (_cscan_api.h) and returns None. */
static PyObject *
scan_groups(PyObject *const *vec_groups, PyObject *const *rec_groups, Py_ssize_t ngroups,
            double lat, double lon, double radius, Py_ssize_t limit, int paged, const After *after,
            const Where *where, GeoPage *c_out)
{
    /* The query's terms, as geo_index._scan.search computes them. */
    const double rad = M_PI / 180.0;
    if (lon == -180.0) lon = 180.0;
    Query q;
    q.phi = lat * rad;
    q.lam = lon * rad;
    q.cos_phi = cos(q.phi);
    q.v[0] = q.cos_phi * cos(q.lam);
    q.v[1] = q.cos_phi * sin(q.lam);
    q.v[2] = sin(q.phi);
    q.radius = radius;
    double cmax = chord_above(radius);
    double cmax2 = cmax * cmax;

    /* Each group's objects, then its points, lie far from the other groups' in a large
     * index: start fetching all of them before reading any (see prefetch_groups). */
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        __builtin_prefetch(vec_groups[g]);
        __builtin_prefetch(rec_groups[g]);
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        PyObject *recs = rec_groups[g];
        if (!PyList_Check(recs)) {
            PyErr_SetString(PyExc_TypeError, "every record group must be a list");
            return NULL;
        }
        total += PyList_GET_SIZE(recs);
    }
    prefetch_groups(vec_groups, ngroups);
    PyObject *result = NULL;
    Cand *cands = PyMem_Malloc((size_t)(total ? total : 1) * sizeof(Cand));
    double *keys = NULL;
    Hit *hits = NULL;
    if (cands == NULL) return PyErr_NoMemory();
    Py_ssize_t n = 0;
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        int failed = PyByteArray_CheckExact(vec_groups[g])
            ? scan_packed(vec_groups[g], rec_groups[g], q.v, cmax2, cands, &n)
            : scan_group(vec_groups[g], rec_groups[g], q.v, cmax2, cands, &n);
        if (failed < 0) goto done;
    }
    if (where->table != NULL) {  /* before anything is counted: only the points that pass count */
        Py_ssize_t m = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int ok = passes(&cands[i], where);
            if (ok < 0) goto done;
            if (ok) cands[m++] = cands[i];
        }
        n = m;
    }
    Py_ssize_t within = 0;
    if (classify(cands, &n, &q, after, &within) < 0) goto done;
    Py_ssize_t following = n;

    if (limit > 0 && n > 2 * limit) {
        /* Only candidates whose chord is within the slack of the limit-th smallest can be
         * among the limit nearest by exact distance. */
        keys = PyMem_Malloc((size_t)n * sizeof(double));
        if (keys == NULL) { PyErr_NoMemory(); goto done; }
        for (Py_ssize_t i = 0; i < n; i++) keys[i] = cands[i].key;
        double kth = select_kth(keys, n, limit - 1);
        double cut = sqrt(kth) * (1.0 + CHORD_REL) + CHORD_ABS;
        double cut2 = cut * cut;
        Py_ssize_t m = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (cands[i].key <= cut2) cands[m++] = cands[i];
        n = m;
    }

    hits = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Hit));
    if (hits == NULL) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (exact(&cands[i], &q) < 0) goto done;
        hits[i].d = cands[i].d;
        hits[i].id = cand_id(&cands[i]);
    }
    Py_ssize_t h = n;
    sort_failed = 0;
    qsort(hits, (size_t)h, sizeof(Hit), hit_cmp);
    if (sort_failed || PyErr_Occurred()) goto done;
    if (limit > 0 && h > limit) h = limit;
    if (c_out != NULL) {  /* the page stays in C: the hits array is handed over */
        for (Py_ssize_t i = 0; i < h; i++) Py_INCREF(hits[i].id);
        c_out->within = within;
        c_out->following = following;
        c_out->count = h;
        c_out->hits = hits;
        hits = NULL;
        result = Py_NewRef(Py_None);
        goto done;
    }

    /* The page's ids are about to be referenced: fetch them together, not one per tuple. */
    for (Py_ssize_t i = 0; i < h; i++) __builtin_prefetch(hits[i].id, 1);
    PyObject *list = PyList_New(h);
    if (list == NULL) goto done;
    for (Py_ssize_t i = 0; i < h; i++) {
        PyObject *d = PyFloat_FromDouble(hits[i].d);
        if (d == NULL) { Py_DECREF(list); goto done; }
        Py_INCREF(hits[i].id);
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) { Py_DECREF(d); Py_DECREF(hits[i].id); Py_DECREF(list); goto done; }
        PyTuple_SET_ITEM(pair, 0, hits[i].id);
        PyTuple_SET_ITEM(pair, 1, d);
        PyList_SET_ITEM(list, i, pair);
    }
    result = paged ? Py_BuildValue("(nnN)", within, following, list) : list;

done:
    PyMem_Free(cands);
    PyMem_Free(keys);
    PyMem_Free(hits);
    return result;
}


/* lat, lon, radius_m, limit[, after[, table, value]]: ``nargs`` of them. after is None or
 * (distance, id); table (a list or a dict) and value make ``where``. */
static int
parse_query(PyObject *const *args, Py_ssize_t nargs, double *lat, double *lon, double *radius, Py_ssize_t *limit,
            After *after, Where *where)
{
    int paged = nargs >= 5;
    if (as_double(args[0], lat) < 0 || as_double(args[1], lon) < 0 || as_double(args[2], radius) < 0)
        return -1;
    *limit = -1;
    if (args[3] != Py_None) {
        *limit = PyLong_AsSsize_t(args[3]);
        if (*limit == -1 && PyErr_Occurred()) return -1;
        if (*limit < 1) {
            PyErr_SetString(PyExc_ValueError, "limit must be None or >= 1");
            return -1;
        }
    }
    after->on = 0;
    if (paged && args[4] != Py_None) {
        PyObject *a = args[4];
        if (!PyTuple_Check(a) || PyTuple_GET_SIZE(a) != 2) {
            PyErr_SetString(PyExc_TypeError, "after must be None or a tuple (distance_m, id)");
            return -1;
        }
        if (as_double(PyTuple_GET_ITEM(a, 0), &after->d) < 0) return -1;
        after->id = PyTuple_GET_ITEM(a, 1);
        after->on = 1;
    }
    *where = NO_WHERE;
    if (nargs == 7) {
        if (!PyList_Check(args[5]) && !PyDict_Check(args[5])) {
            PyErr_SetString(PyExc_TypeError, "where's table must be a list or a dict");
            return -1;
        }
        where->table = args[5];
        where->value = args[6];
    }
    return 0;
}

static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6 && nargs != 7 && nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "scan(vec_groups, rec_groups, lat, lon, radius_m, limit[, after[, table, value]])");
        return NULL;
    }
    PyObject *vec_groups = args[0], *rec_groups = args[1];
    if (!PyList_Check(vec_groups) || !PyList_Check(rec_groups)
        || PyList_GET_SIZE(vec_groups) != PyList_GET_SIZE(rec_groups)) {
        PyErr_SetString(PyExc_TypeError, "vec_groups and rec_groups must be lists of the same length");
        return NULL;
    }
    double lat, lon, radius;
    Py_ssize_t limit;
    After after;
    Where where;
    if (parse_query(args + 2, nargs - 2, &lat, &lon, &radius, &limit, &after, &where) < 0) return NULL;
    return scan_groups(PySequence_Fast_ITEMS(vec_groups), PySequence_Fast_ITEMS(rec_groups),
                       PyList_GET_SIZE(rec_groups), lat, lon, radius, limit, nargs >= 7, &after, &where, NULL);
}

/* Look up the cells at codes rows[i] | cols[j] (every pair, rows outer) in ``cells`` (code ->
 * (vectors, records), a dict or a CellMap) and scan them as scan() does. In a CellMap every
 * code's first slot is prefetched, then every cell found, before any is read: the lookups'
 * cache misses overlap instead of following one another. */
static PyObject *
scan_codes(PyObject *cells, const unsigned long long *rows, Py_ssize_t nr, const unsigned long long *cols,
           Py_ssize_t nc, double lat, double lon, double radius, Py_ssize_t limit, int paged, After *after,
           const Where *where, GeoPage *c_out)
{
    PyObject **groups = PyMem_Malloc((size_t)(nr * nc > 0 ? nr * nc : 1) * 3 * sizeof(PyObject *));
    if (groups == NULL) return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t ng = 0;
    PyObject **vecs = groups, **recs = groups + nr * nc, **found = groups + 2 * nr * nc;
    if (CellMap_Check(cells)) {
        const CellMapObject *m = (const CellMapObject *)cells;
        if (m->slots != NULL) {
            for (Py_ssize_t i = 0; i < nr; i++)
                for (Py_ssize_t j = 0; j < nc; j++) __builtin_prefetch(&m->slots[cellmap_home(m, rows[i] | cols[j])]);
            for (Py_ssize_t i = 0; i < nr; i++) {
                for (Py_ssize_t j = 0; j < nc; j++) {
                    PyObject *cell = cellmap_find(m, rows[i] | cols[j]);
                    if (cell != NULL) {
                        __builtin_prefetch(cell);
                        found[ng++] = cell;
                    }
                }
            }
        }
    } else {
        for (Py_ssize_t i = 0; i < nr; i++) {
            for (Py_ssize_t j = 0; j < nc; j++) {
                PyObject *key = PyLong_FromUnsignedLongLong(rows[i] | cols[j]);
                if (key == NULL) goto out;
                PyObject *cell = PyDict_GetItemWithError(cells, key);  /* borrowed */
                Py_DECREF(key);
                if (cell == NULL) {
                    if (PyErr_Occurred()) goto out;
                    continue;
                }
                found[ng++] = cell;
            }
        }
    }
    for (Py_ssize_t g = 0; g < ng; g++) {
        PyObject *cell = found[g];
        if (!PyTuple_Check(cell) || PyTuple_GET_SIZE(cell) != 2) {
            PyErr_SetString(PyExc_TypeError, "a cell must be a tuple (vectors, records) or (packed, ids)");
            goto out;
        }
        vecs[g] = PyTuple_GET_ITEM(cell, 0);
        recs[g] = PyTuple_GET_ITEM(cell, 1);
    }
    result = scan_groups(vecs, recs, ng, lat, lon, radius, limit, paged, after, where, c_out);
out:
    PyMem_Free(groups);
    return result;
}

/* Bit i of x (16 bits) at bit 2i: one half of a geohash interleave (geohash_codes.SPREAD). */
static unsigned long long
spread16(unsigned long long x)
{
    x &= 0xFFFFULL;
    x = (x | (x << 8)) & 0x00FF00FFULL;
    x = (x | (x << 4)) & 0x0F0F0F0FULL;
    x = (x | (x << 2)) & 0x33333333ULL;
    x = (x | (x << 1)) & 0x55555555ULL;
    return x;
}

#define RAD (M_PI / 180.0)
#define MAX_SPAN 65536

/* One geohash level as GeohashIndex hands it over. */
typedef struct {
    double rows_per_deg, cols_per_deg;
    long nrows, ncols, row_shift, col_shift;
    PyObject *cells;  /* borrowed */
} Level;

static int
level_of(PyObject *t, Level *lv)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 7
        || !(PyDict_Check(PyTuple_GET_ITEM(t, 6)) || CellMap_Check(PyTuple_GET_ITEM(t, 6)))) {
        PyErr_SetString(PyExc_TypeError,
                        "a level must be (rows_per_deg, cols_per_deg, nrows, ncols, row_shift, col_shift, cells)");
        return -1;
    }
    if (as_double(PyTuple_GET_ITEM(t, 0), &lv->rows_per_deg) < 0
        || as_double(PyTuple_GET_ITEM(t, 1), &lv->cols_per_deg) < 0) return -1;
    long *ints[4] = {&lv->nrows, &lv->ncols, &lv->row_shift, &lv->col_shift};
    for (int k = 0; k < 4; k++) {
        *ints[k] = PyLong_AsLong(PyTuple_GET_ITEM(t, 2 + k));
        if (*ints[k] == -1 && PyErr_Occurred()) return -1;
    }
    if (lv->nrows < 1 || lv->nrows > MAX_SPAN || lv->ncols < 1 || lv->ncols > MAX_SPAN
        || lv->row_shift < 0 || lv->row_shift > 1 || lv->col_shift < 0 || lv->col_shift > 1) {
        PyErr_SetString(PyExc_ValueError, "a level's rows and columns must number 1 to 65536, its shifts 0 or 1");
        return -1;
    }
    lv->cells = PyTuple_GET_ITEM(t, 6);
    return 0;
}

static PyObject *levels_query(PyObject *levels, double max_cells, double lat, double lon, double radius,
                              Py_ssize_t limit, int paged, After *after, const Where *where, GeoPage *c_out);

/* scan_levels(levels, max_cells, lat, lon, radius_m, limit[, after[, table, value]]): GeohashIndex's query
 * in one call. The cap's bounding box (geo_index.distance.cap_bounds), the finest level
 * whose cells overlapping it number about ``max_cells`` or fewer (``levels`` finest first),
 * the rows and columns of those cells (GeohashIndex._grid), then the scan of those cells. */
static PyObject *
scan_levels(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6 && nargs != 7 && nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "scan_levels(levels, max_cells, lat, lon, radius_m, limit[, after[, table, value]])");
        return NULL;
    }
    double max_cells, lat, lon, radius;
    Py_ssize_t limit;
    After after;
    Where where;
    if (as_double(args[1], &max_cells) < 0) return NULL;
    if (parse_query(args + 2, nargs - 2, &lat, &lon, &radius, &limit, &after, &where) < 0) return NULL;
    return levels_query(args[0], max_cells, lat, lon, radius, limit, nargs >= 7, &after, &where, NULL);
}

/* GEO_SCAN_API's page_levels (_cscan_api.h): scan_levels's first page, left in C. */
static int
page_levels(PyObject *levels, double max_cells, double lat, double lon, double radius, Py_ssize_t limit,
            GeoPage *out)
{
    out->count = 0;
    out->hits = NULL;
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 1");
        return -1;
    }
    After after = {0, 0.0, NULL};
    PyObject *done = levels_query(levels, max_cells, lat, lon, radius, limit, 1, &after, &NO_WHERE, out);
    if (done == NULL) return -1;
    Py_DECREF(done);
    return 0;
}

/* scan_levels proper, after its arguments are read; c_out as scan_groups's. */
static PyObject *
levels_query(PyObject *levels, double max_cells, double lat, double lon, double radius, Py_ssize_t limit,
             int paged, After *after, const Where *where, GeoPage *c_out)
{
    if (!PyTuple_Check(levels) || PyTuple_GET_SIZE(levels) < 1) {
        PyErr_SetString(PyExc_TypeError, "levels must be a non-empty tuple");
        return NULL;
    }
    if (lon == -180.0) lon = 180.0;

    /* cap_bounds */
    double lat_lo = -90.0, lat_hi = 90.0, ranges[2][2] = {{-180.0, 180.0}, {0.0, 0.0}};
    int nranges = 1;
    double delta = (radius * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M;
    if (delta < 0.5 * M_PI) {
        double d_deg = delta / RAD;
        lat_lo = lat - d_deg;
        lat_hi = lat + d_deg;
        if (lat_hi >= 90.0 || lat_lo <= -90.0) {
            if (lat_lo < -90.0) lat_lo = -90.0;
            if (lat_hi > 90.0) lat_hi = 90.0;
        } else {
            double x = sin(delta) / cos(lat * RAD);
            if (x < 1.0 - 1e-9) {
                double dlon = asin(x) / RAD * (1.0 + REL_MARGIN) + 1e-9;
                if (dlon < 180.0) {
                    double lo = lon - dlon, hi = lon + dlon;
                    if (lo <= -180.0) {
                        ranges[0][0] = -180.0; ranges[0][1] = hi;
                        ranges[1][0] = lo + 360.0; ranges[1][1] = 180.0;
                        nranges = 2;
                    } else if (hi >= 180.0) {
                        ranges[0][0] = -180.0; ranges[0][1] = hi - 360.0;
                        ranges[1][0] = lo; ranges[1][1] = 180.0;
                        nranges = 2;
                    } else {
                        ranges[0][0] = lo; ranges[0][1] = hi;
                    }
                }
            }
        }
    }

    /* the level */
    double height = lat_hi - lat_lo, width = 0.0;
    for (int k = 0; k < nranges; k++) width += ranges[k][1] - ranges[k][0];
    Level lv = {0};
    Py_ssize_t nlevels = PyTuple_GET_SIZE(levels);
    for (Py_ssize_t k = 0; k < nlevels; k++) {
        if (level_of(PyTuple_GET_ITEM(levels, k), &lv) < 0) return NULL;
        if ((height * lv.rows_per_deg + 1.0) * (width * lv.cols_per_deg + 1.0) <= max_cells) break;
    }

    /* its rows and columns, spread into cell-code bits */
    long last = lv.nrows - 1, lastc = lv.ncols - 1;
    long r0 = (long)((lat_lo + 90.0) * lv.rows_per_deg), r1 = (long)((lat_hi + 90.0) * lv.rows_per_deg);
    if (r1 > last) r1 = last;
    if (r0 > last) r0 = last;
    Py_ssize_t nr = r1 - r0 + 1 > 0 ? r1 - r0 + 1 : 0, nc = 0;
    long c0[2], c1[2];
    for (int k = 0; k < nranges; k++) {
        c0[k] = (long)((ranges[k][0] + 180.0) * lv.cols_per_deg);
        c1[k] = (long)((ranges[k][1] + 180.0) * lv.cols_per_deg);
        if (c0[k] > lastc) c0[k] = lastc;
        if (c1[k] > lastc) c1[k] = lastc;
        if (c1[k] >= c0[k]) nc += c1[k] - c0[k] + 1;
    }
    unsigned long long *codes = PyMem_Malloc((size_t)(nr + nc > 0 ? nr + nc : 1) * sizeof(unsigned long long));
    if (codes == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < nr; i++) codes[i] = spread16((unsigned long long)(r0 + i)) << lv.row_shift;
    Py_ssize_t j = nr;
    for (int k = 0; k < nranges; k++) {
        for (long c = c0[k]; c <= c1[k]; c++) codes[j++] = spread16((unsigned long long)c) << lv.col_shift;
    }
    PyObject *result = scan_codes(lv.cells, codes, nr, codes + nr, nc, lat, lon, radius, limit, paged, after, where, c_out);
    PyMem_Free(codes);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(vec_groups, rec_groups, lat, lon, radius_m, limit) -> list of (id, distance_m)\n\n"
     "geo_index._scan.search compiled: same arguments, same result.\n\n"
     "With a seventh argument ``after`` (None or (distance_m, id)) it returns\n"
     "(total within radius_m, how many follow ``after``, the first ``limit`` of those).\n"
     "Two more, ``table`` (a list indexed by int id, or a dict) and ``value``, count only\n"
     "the points whose table[id] == value."},
    {"scan_levels", (PyCFunction)(void (*)(void))scan_levels, METH_FASTCALL,
     "scan_levels(levels, max_cells, lat, lon, radius_m, limit[, after[, table, value]])\n\n"
     "GeohashIndex's query in one call: the cap's bounding box, the level, its rows and\n"
     "columns, then scan() of that level's cells there. ``levels``: a tuple, finest first, of\n"
     "(rows_per_deg, cols_per_deg, nrows, ncols, row_shift, col_shift, cells). ``after``,\n"
     "``table`` and ``value`` as scan()'s."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cscan", "The compiled candidate scan of geo_index._scan.", -1, methods,
};

PyMODINIT_FUNC
PyInit__cscan(void)
{
    if (PyType_Ready(&CellMap_Type) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    static GeoScanAPI api = {GEO_SCAN_API_VERSION, page_levels};
    PyObject *capsule = PyCapsule_New(&api, GEO_SCAN_API_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObjectRef(m, "CellMap", (PyObject *)&CellMap_Type) < 0
        || PyModule_AddObjectRef(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(capsule);
    return m;
}
