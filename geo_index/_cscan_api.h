/* geo_index._cscan's C interface, for other extensions: GeohashIndex's page without Python
 * objects in between. It is published as a capsule, GEO_SCAN_API_CAPSULE, which a user takes
 * with PyCapsule_Import and checks for GEO_SCAN_API_VERSION.
 *
 * page_levels(levels, max_cells, lat, lon, radius_m, limit, out) is scan_levels(levels,
 * max_cells, lat, lon, radius_m, limit, None) with the page left in C: out->within and
 * out->following are the first two items of that call's result, out->hits[0..out->count) its
 * (id, distance_m) pairs, in order. The ids are new references and hits is PyMem memory: the
 * caller releases both (geo_page_release). Returns 0, or -1 with an exception set (and out
 * holds nothing to release). */
#ifndef GEO_CSCAN_API_H
#define GEO_CSCAN_API_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    double d;
    PyObject *id;
} GeoHit;

typedef struct {
    Py_ssize_t within, following, count;
    GeoHit *hits;
} GeoPage;

typedef struct {
    int version;
    int (*page_levels)(PyObject *levels, double max_cells, double lat, double lon, double radius_m,
                       Py_ssize_t limit, GeoPage *out);
} GeoScanAPI;

#define GEO_SCAN_API_CAPSULE "geo_index._cscan._C_API"
#define GEO_SCAN_API_VERSION 1

static inline void
geo_page_release(GeoPage *page)
{
    for (Py_ssize_t i = 0; i < page->count; i++) Py_DECREF(page->hits[i].id);
    PyMem_Free(page->hits);
    page->hits = NULL;
    page->count = 0;
}

#endif
