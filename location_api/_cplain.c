/* location_api._csearch.plain_body: the plain nearby search answered in one call.
 *
 * plain_body(raw, limits, index, prefixes, key, encode_cursor, dumps) -> bytes or None
 *
 * For an index's compiled part (``index``: a geo_index.native.Index, the index's ``native``):
 * the query string read as _cquery.c reads it (None when it is not a plain search), the
 * index's first page through geo_index.native's C interface (native.h), the next page's
 * cursor made by encode_cursor (location_api.cursor.encode_fields: hashlib signs it) and
 * the body assembled as _crender.c assembles it. No Python object is made in between but
 * the page's floats, which dumps writes, and the cursor's arguments. The tests hold it to
 * the general path's answer of the same request (tests/location_api/test_plain_body.py).
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

/* encode_fields(key, latitude, longitude, query_radius_m, expand, refinements, radius_m,
 * distance_m, business_id) for the page of a plain search (one radius, no expand, no
 * filter: refinements None) that ended at (distance, id). */
static PyObject *
next_cursor(PyObject *encode, PyObject *key, const PlainSearch *q, PyObject *radius, PyObject *distance,
            PyObject *id)
{
    PyObject *lat = PyFloat_FromDouble(q->latitude), *lon = PyFloat_FromDouble(q->longitude), *cursor = NULL;
    if (lat != NULL && lon != NULL) {
        PyObject *argv[] = {key, lat, lon, radius, Py_False, Py_None, radius, distance, id};
        cursor = PyObject_Vectorcall(encode, argv, 9, NULL);
    }
    Py_XDECREF(lat);
    Py_XDECREF(lon);
    return cursor;
}

PyObject *
geo_plain_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "plain_body(raw, limits, index, prefixes, key, encode_cursor, dumps)");
        return NULL;
    }
    PlainLimits limits;
    if (geo_plain_limits(args[1], &limits) < 0) return NULL;
    const GeoNativeAPI *api = native_interface();
    if (api == NULL) return NULL;
    PlainSearch q;
    int plain = geo_read_plain(args[0], &limits, &q);
    if (plain <= 0) return plain < 0 ? NULL : Py_NewRef(Py_None);

    GeoPage page;
    if (api->page(args[2], q.latitude, q.longitude, q.radius_m, q.limit, &page) < 0) return NULL;
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
        cursor = next_cursor(args[5], args[4], &q, radius, dists[n - 1], page.hits[n - 1].id);
        if (cursor == NULL) goto done;
    } else {
        cursor = Py_NewRef(Py_None);
    }
    result = geo_render_body(total, radius, n, ids, dists, args[3], cursor, args[6]);
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
