/* location_api._csearch: the nearby search's one compiled path, built from _cquery.c (the
 * query string), _crender.c (the response body) and _cplain.c (the two, an index's page and
 * the cursor in one call); _csearch.c holds the module. The tests hold each part to its Python
 * reference (tests/location_api/reference.py). */
#ifndef GEO_CSEARCH_H
#define GEO_CSEARCH_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *geo_plain_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_search_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_plain_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

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

/* limits from a tuple (min_radius_m, max_radius_m, default_radius_m, default_limit,
 * max_limit): 0, or -1 with an exception set. */
int geo_plain_limits(PyObject *tuple, PlainLimits *limits);

/* Read raw (a str) as a plain search: 1 and *out set when it is one, 0 when it is not, -1
 * with an exception set. */
int geo_read_plain(PyObject *raw, const PlainLimits *limits, PlainSearch *out);

/* Pages of at most this many hits have their floats written by one dumps call. */
#define GEO_BODY_BATCH 128

/* search_body from arrays: ids[i] and dists[i] (borrowed) are hit i's. */
PyObject *geo_render_body(PyObject *total, PyObject *radius, Py_ssize_t n, PyObject *const *ids,
                          PyObject *const *dists, PyObject *prefixes, PyObject *cursor, PyObject *dumps);

#endif
