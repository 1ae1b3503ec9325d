/* location_api._csearch.plain_body: the plain nearby search answered in one call, and the page's
 * body both compiled searches make (geo_page_body, _csearch.h).
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

static const GeoNativeAPI *native_api;

const GeoNativeAPI *
geo_native_interface(void)
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

/* The next page's cursor: encode_fields(key, latitude, longitude, query_radius_m, expand,
 * refinements, radius_m, distance_m, business_id) for a first page (one radius, no expand)
 * that ended at (distance, id); refinements None for a plain search, a box's otherwise. */
static PyObject *
next_cursor(PyObject *encode, PyObject *key, double latitude, double longitude, PyObject *radius,
            const GeoBox *box, PyObject *refinements_of, PyObject *distance, PyObject *id)
{
    PyObject *lat = PyFloat_FromDouble(latitude), *lon = PyFloat_FromDouble(longitude), *cursor = NULL;
    PyObject *refinements = box == NULL ? Py_NewRef(Py_None)
                                        : PyObject_CallFunction(refinements_of, "dddd", box->west, box->south,
                                                                box->east, box->north);
    if (lat != NULL && lon != NULL && refinements != NULL) {
        PyObject *argv[] = {key, lat, lon, radius, Py_False, refinements, radius, distance, id};
        cursor = PyObject_Vectorcall(encode, argv, 9, NULL);
    }
    Py_XDECREF(lat);
    Py_XDECREF(lon);
    Py_XDECREF(refinements);
    return cursor;
}

PyObject *
geo_page_body(const GeoNativeAPI *api, PyObject *index, double lat, double lon, double radius_m, long limit,
              const GeoBox *box, PyObject *prefixes, PyObject *key, PyObject *encode_cursor, PyObject *refinements_of,
              PyObject *dumps)
{
    GeoPage page;
    if (api->page(index, lat, lon, radius_m, limit, box, &page) < 0) return NULL;
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
    radius = PyFloat_FromDouble(radius_m);
    if (total == NULL || radius == NULL) goto done;
    if (page.following > n && n > 0) {  /* a next page: the cursor after this one's last hit */
        cursor = next_cursor(encode_cursor, key, lat, lon, radius, box, refinements_of, dists[n - 1],
                             page.hits[n - 1].id);
        if (cursor == NULL) goto done;
    } else {
        cursor = Py_NewRef(Py_None);
    }
    result = geo_render_body(total, radius, n, ids, dists, prefixes, cursor, dumps);
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

int
geo_body_args(const char *usage, Py_ssize_t nargs, Py_ssize_t want, PyObject *const *args, PlainLimits *limits,
              const GeoNativeAPI **api)
{
    if (nargs != want) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (geo_plain_limits(args[1], limits) < 0) return -1;
    *api = geo_native_interface();
    return *api == NULL ? -1 : 0;
}

PyObject *
geo_plain_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PlainLimits limits;
    const GeoNativeAPI *api;
    PlainSearch q;
    if (geo_body_args("plain_body(raw, limits, index, prefixes, key, encode_cursor, dumps)", nargs, 7, args, &limits,
                      &api) < 0)
        return NULL;
    int plain = geo_read_plain(args[0], &limits, &q);
    if (plain <= 0) return plain < 0 ? NULL : Py_NewRef(Py_None);
    return geo_page_body(api, args[2], q.latitude, q.longitude, q.radius_m, q.limit, NULL, args[3], args[4], args[5],
                         NULL, args[6]);
}
