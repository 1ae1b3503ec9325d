/* location_api._csearch: the nearby search's hot path in C, one extension built from
 * _cquery.c (the query string), _crender.c (the response body), _ccursor.c (the paging
 * cursor) and _cplain.c (the three, and GeohashIndex's page, in one call); _csearch.c holds
 * the module. Each function has a Python twin it is held to by the tests. */
#ifndef GEO_CSEARCH_H
#define GEO_CSEARCH_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *geo_plain_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_search_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_make_cursor(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_plain_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* The bounds a plain search is read within (location_api.validate.plain_search's). */
typedef struct {
    double min_radius_m, max_radius_m, default_radius_m;
    long default_limit, max_limit;
} PlainLimits;

/* A plain search. */
typedef struct {
    double latitude, longitude, radius_m;
    long limit;
} PlainSearch;

/* limits from five objects (min_radius_m, max_radius_m, default_radius_m, default_limit,
 * max_limit): 0, or -1 with an exception set. */
int geo_plain_limits(PyObject *const *args, PlainLimits *limits);

/* Read raw (a str) as plain_search does: 1 and *out set when it is a plain search, 0 when it
 * is not, -1 with an exception set. */
int geo_read_plain(PyObject *raw, const PlainLimits *limits, PlainSearch *out);

/* The largest key a cursor is signed with, and the characters of a cursor. */
#define GEO_CURSOR_MAX_KEY 64
#define GEO_CURSOR_CHARS 68

/* make_cursor's text, written to text[0..GEO_CURSOR_CHARS); returns its length. key_len is
 * at most GEO_CURSOR_MAX_KEY; category is NULL for none. */
Py_ssize_t geo_cursor_text(const char *key, Py_ssize_t key_len, double lat, double lon, double qradius, int expand,
                           const char *category, Py_ssize_t category_len, double radius, double distance,
                           long long id, char *text);

/* Pages of at most this many hits have their floats written by one dumps call. */
#define GEO_BODY_BATCH 128

/* search_body from arrays: ids[i] and dists[i] (borrowed) are hit i's. */
PyObject *geo_render_body(PyObject *total, PyObject *radius, Py_ssize_t n, PyObject *const *ids,
                          PyObject *const *dists, PyObject *prefixes, PyObject *cursor, PyObject *dumps);

#endif
