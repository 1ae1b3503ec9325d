/* location_api._csearch.plain_body: the plain nearby search answered in one call.
 *
 * plain_body(raw, min_radius_m, max_radius_m, default_radius_m, default_limit, max_limit,
 *            index, prefixes, key, dumps) -> bytes or None
 *
 * For an index's compiled part (``index``: a geo_index.native.Index, the index's ``native``),
 * it is location_api.search.plain_search_body(catalog, strategy, *plain, key) where plain is
 * plain_search(raw, ...) with the same bounds, or None when raw is not a plain search: the
 * query string read as _cquery.c reads it, the index's first page through geo_index.native's
 * C interface (native.h), the cursor signed as _ccursor.c signs it and the body assembled
 * as _crender.c assembles it. No Python object is made in between but the page's floats,
 * which dumps writes. The tests hold it to plain_search and plain_search_body.
 */
#include "_csearch.h"
#include "native.h"

static const GeoNativeAPI *native_api;

/* geo_index.native's C interface, imported on first use. */
static const GeoNativeAPI *
native_interface(void)
{
    if (native_api == NULL) {
        const GeoNativeAPI *api = PyCapsule_Import(GEO_NATIVE_API_CAPSULE, 0);
        if (api == NULL) return NULL;
        if (api->version != GEO_NATIVE_API_VERSION) {
            PyErr_Format(PyExc_ImportError, "geo_index.native's C interface is version %d, not %d", api->version,
                         GEO_NATIVE_API_VERSION);
            return NULL;
        }
        native_api = api;
    }
    return native_api;
}

PyObject *
geo_plain_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError,
                        "plain_body(raw, min_radius_m, max_radius_m, default_radius_m, default_limit, max_limit, "
                        "index, prefixes, key, dumps)");
        return NULL;
    }
    PlainLimits limits;
    if (geo_plain_limits(args + 1, &limits) < 0) return NULL;
    char *key;
    Py_ssize_t key_len;
    if (PyBytes_AsStringAndSize(args[8], &key, &key_len) < 0) return NULL;
    if (key_len > GEO_CURSOR_MAX_KEY) {
        PyErr_SetString(PyExc_ValueError, "the key must be at most 64 bytes");
        return NULL;
    }
    const GeoNativeAPI *api = native_interface();
    if (api == NULL) return NULL;
    PlainSearch q;
    int plain = geo_read_plain(args[0], &limits, &q);
    if (plain <= 0) return plain < 0 ? NULL : Py_NewRef(Py_None);

    GeoPage page;
    if (api->page(args[6], q.latitude, q.longitude, q.radius_m, q.limit, &page) < 0) return NULL;
    PyObject *result = NULL, *total = NULL, *radius = NULL, *cursor = NULL;
    PyObject *small[2 * GEO_BODY_BATCH];
    Py_ssize_t n = page.count, made = 0;
    PyObject **ids = n <= GEO_BODY_BATCH ? small : PyMem_Malloc((size_t)n * 2 * sizeof(PyObject *));
    if (ids == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject **dists = ids + n;
    for (; made < n; made++) {
        ids[made] = page.hits[made].id;
        dists[made] = PyFloat_FromDouble(page.hits[made].d);
        if (dists[made] == NULL) goto done;
    }
    total = PyLong_FromSsize_t(page.within);
    radius = PyFloat_FromDouble(q.radius_m);
    if (total == NULL || radius == NULL) goto done;
    if (page.following > n && n > 0) {  /* a next page: the cursor after this one's last hit */
        const GeoHit *last = &page.hits[n - 1];
        long long id = PyLong_AsLongLong(last->id);
        if (id == -1 && PyErr_Occurred()) goto done;
        char text[GEO_CURSOR_CHARS];
        Py_ssize_t len = geo_cursor_text(key, key_len, q.latitude, q.longitude, q.radius_m, 0, NULL, 0, q.radius_m,
                                         last->d, id, text);
        cursor = PyUnicode_DecodeASCII(text, len, NULL);
        if (cursor == NULL) goto done;
    } else {
        cursor = Py_NewRef(Py_None);
    }
    result = geo_render_body(total, radius, n, ids, dists, args[7], cursor, args[9]);
done:
    if (ids != NULL) {
        for (Py_ssize_t i = 0; i < made; i++) Py_DECREF(ids[n + i]);
        if (ids != small) PyMem_Free(ids);
    }
    Py_XDECREF(total);
    Py_XDECREF(radius);
    Py_XDECREF(cursor);
    geo_page_release(&page);
    return result;
}
