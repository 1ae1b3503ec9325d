/* location_api._csearch: the nearby search's hot path in C, one extension built from
 * _cquery.c (the query string), _crender.c (the response body) and _ccursor.c (the paging
 * cursor); _csearch.c holds the module. Each function has a Python twin it is held to by the tests. */
#ifndef GEO_CSEARCH_H
#define GEO_CSEARCH_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *geo_plain_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_search_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *geo_make_cursor(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
