/* geo_index.native: the compact store, its query planners and the exact scan, for Python.
 *
 * Index(kind, levels, max_cells, leaf_capacity, max_depth) is one index's points and plan
 * (kind "geohash", "quadtree" or "s2"); geo_index's GeohashIndex, QuadTree and S2Index check
 * every argument and hold one. Its methods take and return plain values: ids are ints in the
 * signed 64-bit range, coordinates floats in degrees, distances metres (haversine_m's).
 * Module functions expose the geometry: haversine, box_circle (geo_index.box_circle), and for
 * tests and tools zorder_key, s2_leaf_id, s2_cap_ranges. The C interface for other extensions is native.h.
 */
#include "native.h"
#include "_index.h"
#include "_plan.h"
#include "_query.h"
#include "_s2geom.h"
#include "_store.h"
#include "_keys.h"
#include <math.h>


static int
index_init(Index *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"kind", "levels", "max_cells", "leaf_capacity", "max_depth", NULL};
    const char *kind;
    PyObject *levels = NULL;
    int max_cells = 12, leaf = 100, depth = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|Oiii", names, &kind, &levels, &max_cells, &leaf, &depth))
        return -1;
    Plan *p = &self->plan;
    memset(p, 0, sizeof *p);
    p->kind = strcmp(kind, "geohash") == 0 ? PLAN_GEOHASH : strcmp(kind, "quadtree") == 0 ? PLAN_QUADTREE
            : strcmp(kind, "s2") == 0 ? PLAN_S2 : -1;
    if (p->kind < 0 || max_cells < 1 || leaf < 1 || depth < 1 || depth > 32) {
        PyErr_SetString(PyExc_ValueError, "Index(kind in geohash|quadtree|s2, max_cells >= 1, leaf_capacity >= 1, "
                                          "1 <= max_depth <= 32)");
        return -1;
    }
    p->max_cells = max_cells;
    p->leaf_capacity = leaf;
    p->max_depth = depth;
    if (p->kind == PLAN_GEOHASH) {
        Py_ssize_t n = levels ? PySequence_Size(levels) : -1;
        if (n < 1 || n > MAX_GEOHASH_LEVELS) {
            PyErr_SetString(PyExc_ValueError, "a geohash Index needs 1 to 32 levels, finest first");
            return -1;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *item = PySequence_GetItem(levels, k);
            long bits = item ? PyLong_AsLong(item) : -1;
            Py_XDECREF(item);
            if (bits < 1 || bits > 32) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "geohash levels are 1..32 bits");
                return -1;
            }
            p->levels[k] = (int)bits;
        }
        p->nlevels = (int)n;
    }
    store_free(&self->store);
    store_init(&self->store, p->kind == PLAN_S2 ? KEY_S2 : KEY_ZORDER);
    return 0;
}

static void
index_dealloc(Index *self)
{
    store_free(&self->store);
    ranges_free(&self->ranges);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int
read_point(PyObject *const *args, double *lat, double *lon)
{
    *lat = PyFloat_AsDouble(args[0]);
    if (*lat == -1.0 && PyErr_Occurred()) return -1;
    *lon = PyFloat_AsDouble(args[1]);
    return *lon == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *
index_insert(Index *self, PyObject *const *args, Py_ssize_t nargs)
{
    double lat, lon;
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "insert(id, lat, lon)");
    long long id = PyLong_AsLongLong(args[0]);
    if ((id == -1 && PyErr_Occurred()) || read_point(args + 1, &lat, &lon) < 0) return NULL;
    if (store_insert(&self->store, id, lat, lon) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *
index_remove(Index *self, PyObject *arg)
{
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    int done = store_remove(&self->store, id);
    if (done < 0) return PyErr_NoMemory();
    return PyBool_FromLong(done);
}

static PyObject *
index_position(Index *self, PyObject *arg)
{
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    Run *r;
    size_t i;
    if (!store_find(&self->store, id, &r, &i)) Py_RETURN_NONE;
    return Py_BuildValue("(dd)", r->lat[i], r->lon[i]);
}

static Py_ssize_t
index_len(Index *self)
{
    return (Py_ssize_t)store_len(&self->store);
}

/* load(ids, lats, lons): add the points of three C-contiguous buffers (int64, float64,
 * float64) in one merge, without the interpreter's lock. Returns None, or an id found twice
 * (in the buffers or already held: then nothing was added). */
static PyObject *
index_load(Index *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "load(ids, lats, lons)");
    Py_buffer b[3];
    int got = 0;
    PyObject *result = NULL;
    for (; got < 3; got++) {
        if (PyObject_GetBuffer(args[got], &b[got], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
        const char *f = b[got].format ? b[got].format : "B";
        if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
        int ok = b[got].itemsize == 8 && (got ? strcmp(f, "d") == 0 : strcmp(f, "q") == 0 || strcmp(f, "l") == 0);
        if (!ok) {
            got++;
            PyErr_SetString(PyExc_TypeError, "load() takes int64, float64 and float64 arrays");
            goto done;
        }
    }
    size_t n = (size_t)(b[0].len / 8);
    if (b[1].len / 8 != (Py_ssize_t)n || b[2].len / 8 != (Py_ssize_t)n) {
        PyErr_SetString(PyExc_ValueError, "load() takes arrays of one length");
        goto done;
    }
    Run extra;
    Merge m;
    if (store_merge_begin(&self->store, &m, &extra) < 0) {
        PyErr_SetString(PyExc_RuntimeError, "a merge is running or memory ran out; load() again later");
        goto done;
    }
    int built;
    Py_BEGIN_ALLOW_THREADS
    built = run_from_arrays(&extra, self->store.kind, b[0].buf, b[1].buf, b[2].buf, n);
    if (built == 0) merge_compute(self->store.kind, &m);
    else m.status = -1;
    run_free(&extra);
    Py_END_ALLOW_THREADS
    int64_t dup = m.dup;
    int status = m.status;
    store_merge_finish(&self->store, &m);
    if (status == -1) PyErr_NoMemory();
    else result = status == -2 ? PyLong_FromLongLong(dup) : Py_NewRef(Py_None);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&b[k]);
    return result;
}

/* merge(): fold the changes into the base without the interpreter's lock (so from a worker
 * thread, queries and changes go on meanwhile). False when another merge is running. */
static PyObject *
index_merge(Index *self, PyObject *unused)
{
    (void)unused;
    Merge m;
    if (self->store.merging) Py_RETURN_FALSE;
    if (store_merge_begin(&self->store, &m, NULL) < 0) return PyErr_NoMemory();
    Py_INCREF(self);
    Py_BEGIN_ALLOW_THREADS
    merge_compute(self->store.kind, &m);
    Py_END_ALLOW_THREADS
    int status = m.status;
    store_merge_finish(&self->store, &m);
    Py_DECREF(self);
    if (status < 0) return PyErr_NoMemory();
    Py_RETURN_TRUE;
}

static PyObject *
index_delta(Index *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->store.active.n + self->store.frozen.n);
}

static PyObject *
index_nbytes(Index *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(store_bytes(&self->store));
}

static PyMethodDef index_methods[] = {
    {"insert", (PyCFunction)(void (*)(void))index_insert, METH_FASTCALL, "insert(id, lat, lon): add a point"},
    {"remove", (PyCFunction)index_remove, METH_O, "remove(id) -> bool: drop a point if held"},
    {"position", (PyCFunction)index_position, METH_O, "position(id) -> (lat, lon) or None"},
    {"load", (PyCFunction)(void (*)(void))index_load, METH_FASTCALL, "load(ids, lats, lons) -> None or a repeated id"},
    {"merge", (PyCFunction)index_merge, METH_NOARGS, "merge() -> bool: fold the changes into the base"},
    {"delta", (PyCFunction)index_delta, METH_NOARGS, "delta() -> points held outside the base"},
    {"nbytes", (PyCFunction)index_nbytes, METH_NOARGS, "nbytes() -> bytes the store holds"},
    {"page", (PyCFunction)(void (*)(void))index_page, METH_FASTCALL, "page(lat, lon, radius_m, limit[, after[, t, v]])"},
    {"within", (PyCFunction)(void (*)(void))index_within, METH_FASTCALL, "within(lat, lon, radius_m, limit)"},
    {"ranges", (PyCFunction)(void (*)(void))index_ranges, METH_FASTCALL, "ranges(lat, lon, radius_m)"},
    {"geohash_choice", (PyCFunction)(void (*)(void))index_geohash_choice, METH_FASTCALL, "(bits, cells)"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods index_as_sequence = {.sq_length = (lenfunc)index_len};

PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "geo_index.native.Index",
    .tp_basicsize = sizeof(Index),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Index(kind, levels=None, max_cells=12, leaf_capacity=100, max_depth=32): a compact index",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)index_init,
    .tp_dealloc = (destructor)index_dealloc,
    .tp_methods = index_methods,
    .tp_as_sequence = &index_as_sequence,
};

/* geo_index.haversine_m: on the path of every friend's delivery, so a fast call. */
/* The four arguments of haversine and box_circle as floats: 0, or -1 with an exception set. */
static int
four_floats(const char *name, PyObject *const *args, Py_ssize_t nargs, double v[4])
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "%s() takes 4 arguments (%zd given)", name, nargs);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        v[i] = PyFloat_AsDouble(args[i]);
        if (v[i] == -1.0 && PyErr_Occurred()) return -1;
    }
    return 0;
}

static PyObject *
fn_haversine(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    double v[4];
    if (four_floats("haversine_m", args, nargs, v) < 0) return NULL;
    return PyFloat_FromDouble(haversine(v[0], v[1], v[2], v[3]));
}

static PyObject *
fn_box_circle(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    double v[4], lat, lon, reach;
    if (four_floats("box_circle", args, nargs, v) < 0) return NULL;
    GeoBox box = {v[0], v[1], v[2], v[3]};
    box_circle(&box, &lat, &lon, &reach);
    return Py_BuildValue("(ddd)", lat, lon, reach);
}

static PyObject *
fn_zorder_key(PyObject *m, PyObject *args)
{
    (void)m;
    double lat, lon;
    if (!PyArg_ParseTuple(args, "dd", &lat, &lon)) return NULL;
    return PyLong_FromUnsignedLongLong(zorder_key(lat, lon));
}

static PyObject *
fn_s2_leaf_id(PyObject *m, PyObject *args)
{
    (void)m;
    double lat, lon;
    if (!PyArg_ParseTuple(args, "dd", &lat, &lon)) return NULL;
    return PyLong_FromUnsignedLongLong(s2geom_leaf_id(lat, lon));
}

static PyObject *
fn_s2_cap_ranges(PyObject *m, PyObject *args)
{
    (void)m;
    double lat, lon, angle;
    int max_cells;
    if (!PyArg_ParseTuple(args, "dddi", &lat, &lon, &angle, &max_cells)) return NULL;
    if (!isfinite(lat) || !isfinite(lon) || max_cells < 1) {
        PyErr_SetString(PyExc_ValueError, "s2_cap_ranges takes a finite position and max_cells >= 1");
        return NULL;
    }
    int cap = 8 * max_cells + 64;
    uint64_t *lo = PyMem_Malloc((size_t)cap * sizeof *lo), *hi = PyMem_Malloc((size_t)cap * sizeof *hi);
    PyObject *list = NULL;
    int n = lo && hi ? s2geom_cap_ranges(lat, lon, angle, max_cells, lo, hi, cap) : -1;
    if (n < 0) PyErr_NoMemory();
    else list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        PyObject *pair = Py_BuildValue("(KK)", (unsigned long long)lo[i], (unsigned long long)hi[i]);
        if (!pair) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, pair);
    }
    PyMem_Free(lo);
    PyMem_Free(hi);
    return list;
}

static PyMethodDef module_methods[] = {
    {"haversine", (PyCFunction)(void (*)(void))fn_haversine, METH_FASTCALL,
     "haversine(lat1, lon1, lat2, lon2): great-circle distance, metres (geo_index.haversine_m)"},
    {"box_circle", (PyCFunction)(void (*)(void))fn_box_circle, METH_FASTCALL,
     "box_circle(west, south, east, north): (lat, lon, reach_m), a box's centre and farthest point's distance"},
    {"zorder_key", fn_zorder_key, METH_VARARGS, "zorder_key(lat, lon): a point's 64-bit geohash key"},
    {"s2_leaf_id", fn_s2_leaf_id, METH_VARARGS, "s2_leaf_id(lat, lon): a point's S2 leaf cell id"},
    {"s2_cap_ranges", fn_s2_cap_ranges, METH_VARARGS, "s2_cap_ranges(lat, lon, angle_rad, max_cells)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "geo_index.native", "The compact store, planners and exact scan of geo_index.", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

static GeoNativeAPI api = {GEO_NATIVE_API_VERSION, api_page, box_circle};

PyMODINIT_FUNC
PyInit_native(void)
{
    if (PyType_Ready(&IndexType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    PyObject *capsule = PyCapsule_New(&api, GEO_NATIVE_API_CAPSULE, NULL);
    int failed = !capsule || PyModule_AddObjectRef(m, "Index", (PyObject *)&IndexType) < 0
                 || PyModule_AddObjectRef(m, "_C_API", capsule) < 0;
    Py_XDECREF(capsule);
    if (failed) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
