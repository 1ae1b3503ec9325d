/* geo_index.native.Index, shared by its storage (native.c) and its queries (_index_query.c). */
#ifndef GEO_INDEX_H
#define GEO_INDEX_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "native.h"
#include "_plan.h"
#include "_query.h"
#include "_store.h"

typedef struct {
    PyObject_HEAD
    Store store;
    Plan plan;
    Ranges ranges;
} Index;

extern PyTypeObject IndexType;

/* The first two of args as a latitude and a longitude: 0, or -1 with an exception. */
int read_point(PyObject *const *args, double *lat, double *lon);

/* page(lat, lon, radius_m, limit[, after[, box[, table, value | where]]]) -> (total, following, hits). */
PyObject *index_page(Index *self, PyObject *const *args, Py_ssize_t nargs);
/* within(lat, lon, radius_m, limit) -> hits. */
PyObject *index_within(Index *self, PyObject *const *args, Py_ssize_t nargs);
/* ranges(lat, lon, radius_m) -> [(lo, hi), ...]. */
PyObject *index_ranges(Index *self, PyObject *const *args, Py_ssize_t nargs);
/* geohash_choice(lat, lon, radius_m) -> (bits, cells). */
PyObject *index_geohash_choice(Index *self, PyObject *const *args, Py_ssize_t nargs);
/* native.h's page. */
int api_page(PyObject *index, double lat, double lon, double radius, Py_ssize_t limit, const GeoBox *box,
             GeoPage *out);

/* native.h's box_circle (_box.c). */
void box_circle(const GeoBox *box, double *lat, double *lon, double *reach_m);
#endif
