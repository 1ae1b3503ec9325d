/* The queries of geo_index.native.Index: page, within, ranges and geohash_choice, and the
 * page of native.h's C interface (see native.c). */
#include "_index.h"
#include <stdlib.h>

/* A page's filter: (table, value), or a callable (value NULL) asked of each id. */
typedef struct {
    PyObject *table, *value;
} Where;

static int
where_passes(void *ctx, int64_t id, double lat, double lon)
{
    Where *w = ctx;
    PyObject *got;
    if (w->value == NULL) {
        PyObject *key = PyLong_FromLongLong(id);
        if (!key) return -1;
        PyObject *verdict = PyObject_CallOneArg(w->table, key);
        Py_DECREF(key);
        if (!verdict) return -1;
        int passes = PyObject_IsTrue(verdict);
        Py_DECREF(verdict);
        return passes;
    }
    if (PyList_Check(w->table)) {
        if (id < 0 || id >= PyList_GET_SIZE(w->table)) return 0;
        got = PyList_GET_ITEM(w->table, id);
    } else {
        PyObject *key = PyLong_FromLongLong(id);
        if (!key) return -1;
        got = PyDict_GetItemWithError(w->table, key);
        Py_DECREF(key);
        if (!got) return PyErr_Occurred() ? -1 : 0;
    }
    if (got == w->value) return 1;
    Py_INCREF(got);   /* the comparison may run code that changes the table */
    int same = PyObject_RichCompareBool(got, w->value, Py_EQ);
    Py_DECREF(got);
    return same;
}

/* The page of a query, in C; out as query_page's. */
static int
run_query(Index *self, double lat, double lon, double radius, long limit, int counting, const QAfter *after,
          const QBox *box, Where *where, QPage *out)
{
    if (plan_ranges(&self->plan, &self->store, lat, lon, radius, &self->ranges) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    const Plan *p = &self->plan;
    int status = query_page(&self->store, &self->ranges, p->leaf_capacity, p->kind == PLAN_QUADTREE ? 2 * p->max_depth : 64,
                            counting, lat, lon, radius, limit, after, box, where ? where_passes : NULL, where, out);
    if (status == -1) PyErr_NoMemory();
    return status < 0 ? -1 : 0;
}

static PyObject *
hits_list(const QPage *page)
{
    PyObject *list = PyList_New((Py_ssize_t)page->count);
    for (size_t i = 0; list && i < page->count; i++) {
        PyObject *hit = PyTuple_New(2), *id = PyLong_FromLongLong(page->hits[i].id);
        PyObject *d = PyFloat_FromDouble(page->hits[i].d);
        if (!hit || !id || !d) {
            Py_XDECREF(hit); Py_XDECREF(id); Py_XDECREF(d);
            Py_CLEAR(list);
            break;
        }
        PyTuple_SET_ITEM(hit, 0, id);
        PyTuple_SET_ITEM(hit, 1, d);
        PyList_SET_ITEM(list, (Py_ssize_t)i, hit);
    }
    return list;
}

/* The (lat, lon, radius_m, limit) page and within begin with: 0, or -1 with an exception. */
static int
read_query(PyObject *const *args, double *lat, double *lon, double *radius, long *limit)
{
    if (read_point(args, lat, lon) < 0) return -1;
    *radius = PyFloat_AsDouble(args[2]);
    *limit = PyLong_AsLong(args[3]);
    return PyErr_Occurred() ? -1 : 0;
}

/* page(lat, lon, radius_m, limit[, after[, box[, table, value]]]) -> (total, following, hits);
 * limit -1: every match (``within``). after: None or (distance_m, id). box: None or (west,
 * south, east, north) in degrees. A callable in place of (table, value) (seven arguments)
 * is the filter itself: ``where(id)``. */
PyObject *
index_page(Index *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 4 || nargs > 8)
        return PyErr_Format(PyExc_TypeError, "page(lat, lon, radius_m, limit[, after[, box[, table, value | where]]])");
    double lat, lon, radius;
    long limit;
    if (read_query(args, &lat, &lon, &radius, &limit) < 0) return NULL;
    QAfter after = {0, 0.0, 0};
    if (nargs >= 5 && args[4] != Py_None) {
        long long aid;
        if (!PyArg_ParseTuple(args[4], "dL", &after.d, &aid)) return NULL;
        after.on = 1;
        after.id = aid;
    }
    Where where = {nargs >= 7 ? args[6] : NULL, nargs == 8 ? args[7] : NULL};
    QBox box;
    int boxed = nargs >= 6 && args[5] != Py_None;
    if (boxed && !PyArg_ParseTuple(args[5], "dddd", &box.west, &box.south, &box.east, &box.north)) return NULL;
    QPage page;
    if (run_query(self, lat, lon, radius, limit, 1, &after, boxed ? &box : NULL, where.table ? &where : NULL, &page) < 0)
        return NULL;
    PyObject *hits = hits_list(&page), *result = NULL;
    if (hits) result = Py_BuildValue("(nnN)", (Py_ssize_t)page.total, (Py_ssize_t)page.following, hits);
    free(page.hits);
    return result;
}

/* within(lat, lon, radius_m, limit) -> hits: page's hits without its counts (limit -1: all),
 * so only the nodes that can hold a hit are read. */
PyObject *
index_within(Index *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) return PyErr_Format(PyExc_TypeError, "within(lat, lon, radius_m, limit)");
    double lat, lon, radius;
    long limit;
    if (read_query(args, &lat, &lon, &radius, &limit) < 0) return NULL;
    QAfter after = {0, 0.0, 0};
    QPage page;
    if (run_query(self, lat, lon, radius, limit, 0, &after, NULL, NULL, &page) < 0) return NULL;
    PyObject *hits = hits_list(&page);
    free(page.hits);
    return hits;
}

/* ranges(lat, lon, radius_m) -> [(lo, hi), ...]: the key ranges a query reads. */
PyObject *
index_ranges(Index *self, PyObject *const *args, Py_ssize_t nargs)
{
    double lat, lon;
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "ranges(lat, lon, radius_m)");
    if (read_point(args, &lat, &lon) < 0) return NULL;
    double radius = PyFloat_AsDouble(args[2]);
    if (radius == -1.0 && PyErr_Occurred()) return NULL;
    if (plan_ranges(&self->plan, &self->store, lat, lon, radius, &self->ranges) < 0) return PyErr_NoMemory();
    ranges_normalize(&self->ranges);
    PyObject *list = PyList_New((Py_ssize_t)self->ranges.n);
    for (size_t i = 0; list && i < self->ranges.n; i++) {
        PyObject *pair = Py_BuildValue("(KK)", (unsigned long long)self->ranges.lo[i],
                                       (unsigned long long)self->ranges.hi[i]);
        if (!pair) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/* geohash_choice(lat, lon, radius_m) -> (bits, cells): the level a geohash query reads. */
PyObject *
index_geohash_choice(Index *self, PyObject *const *args, Py_ssize_t nargs)
{
    double lat, lon;
    if (nargs != 3 || self->plan.kind != PLAN_GEOHASH)
        return PyErr_Format(PyExc_TypeError, "geohash_choice(lat, lon, radius_m) of a geohash Index");
    if (read_point(args, &lat, &lon) < 0) return NULL;
    double radius = PyFloat_AsDouble(args[2]);
    if (radius == -1.0 && PyErr_Occurred()) return NULL;
    int bits;
    size_t cells;
    plan_geohash_choice(&self->plan, lat, lon, radius, &bits, &cells);
    return Py_BuildValue("(in)", bits, (Py_ssize_t)cells);
}

/* native.h's page. */
int
api_page(PyObject *index, double lat, double lon, double radius, Py_ssize_t limit, const GeoBox *box, GeoPage *out)
{
    out->count = 0;
    out->hits = NULL;
    if (!PyObject_TypeCheck(index, &IndexType) || limit < 1) {
        PyErr_SetString(PyExc_TypeError, "page() takes a geo_index.native.Index and a limit >= 1");
        return -1;
    }
    QAfter after = {0, 0.0, 0};
    QBox qbox;
    if (box != NULL) qbox = (QBox){box->west, box->south, box->east, box->north};
    QPage page;
    if (run_query((Index *)index, lat, lon, radius, (long)limit, 1, &after, box ? &qbox : NULL, NULL, &page) < 0) return -1;
    out->within = (Py_ssize_t)page.total;
    out->following = (Py_ssize_t)page.following;
    out->hits = PyMem_Malloc((page.count ? page.count : 1) * sizeof *out->hits);
    if (!out->hits) { free(page.hits); PyErr_NoMemory(); return -1; }
    for (size_t i = 0; i < page.count; i++) {
        out->hits[i].d = page.hits[i].d;
        out->hits[i].id = PyLong_FromLongLong(page.hits[i].id);
        if (!out->hits[i].id) { out->count = (Py_ssize_t)i; geo_page_release(out); free(page.hits); return -1; }
    }
    out->count = (Py_ssize_t)page.count;
    free(page.hits);
    return 0;
}
