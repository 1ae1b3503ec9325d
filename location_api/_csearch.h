/* location_api._csearch: the searches' one compiled path, built from _cquery.c (the query
 * string), _crender.c (the response body), _cplain.c (the two, an index's page and the cursor
 * in one call) and _carea.c (the same for a box); _csearch.c holds the module. The tests hold
 * each part to its Python reference (tests/location_api/reference.py). */
#ifndef GEO_CSEARCH_H
#define GEO_CSEARCH_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "native.h"

PyObject *geo_plain_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_search_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_plain_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_area_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_area_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* The bounds a plain search is read within (location_api.search.plain_limits). */
typedef struct {
    double min_radius_m, max_radius_m, default_radius_m;
    long default_limit, max_limit;
} PlainLimits;

/* A plain search. */
typedef struct {
    double latitude, longitude, radius_m;
    long limit;
} PlainSearch;

/* A plain area search: a box (south <= north) and a page size. */
typedef struct {
    GeoBox box;
    long limit;
} AreaSearch;

/* limits from a tuple (min_radius_m, max_radius_m, default_radius_m, default_limit,
 * max_limit): 0, or -1 with an exception set. */
int geo_plain_limits(PyObject *tuple, PlainLimits *limits);

/* Read raw (a str) as a plain search: 1 and *out set when it is one, 0 when it is not, -1
 * with an exception set. */
int geo_read_plain(PyObject *raw, const PlainLimits *limits, PlainSearch *out);

/* Read raw (a str) as a plain area search (bbox, maybe limit, each once and plainly valid):
 * 1 and *out set when it is one, 0 when it is not, -1 with an exception set. */
int geo_read_area(PyObject *raw, const PlainLimits *limits, AreaSearch *out);

/* geo_index.native's C interface, imported on first use; NULL with an exception set. */
const GeoNativeAPI *geo_native_interface(void);

/* The arguments plain_body and area_body begin with: nargs is want (else usage is the
 * TypeError's message), *limits read from args[1] and *api the native interface: 0, or -1
 * with an exception set. */
int geo_body_args(const char *usage, Py_ssize_t nargs, Py_ssize_t want, PyObject *const *args, PlainLimits *limits,
                  const GeoNativeAPI **api);

/* The body of an index's first page within radius_m of (lat, lon), inside box when not NULL:
 * the page (api->page), the next page's cursor when one follows (encode_cursor(key, lat, lon,
 * radius_m, False, refinements, radius_m, distance_m, id), refinements None without a box,
 * else refinements_of(west, south, east, north)) and the body (geo_render_body). NULL with an
 * exception set. */
PyObject *geo_page_body(const GeoNativeAPI *api, PyObject *index, double lat, double lon, double radius_m,
                        long limit, const GeoBox *box, PyObject *prefixes, PyObject *key, PyObject *encode_cursor,
                        PyObject *refinements_of, PyObject *dumps);

/* Pages of at most this many hits have their floats written by one dumps call. */
#define GEO_BODY_BATCH 128

/* search_body from arrays: ids[i] and dists[i] (borrowed) are hit i's. */
PyObject *geo_render_body(PyObject *total, PyObject *radius, Py_ssize_t n, PyObject *const *ids,
                          PyObject *const *dists, PyObject *prefixes, PyObject *cursor, PyObject *dumps);

#endif
