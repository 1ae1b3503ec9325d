/* geo_index.native's C interface, for other extensions: an index's page without Python calls.
 *
 * The module publishes a capsule, GEO_NATIVE_API_CAPSULE, which a user takes with
 * PyCapsule_Import and checks for GEO_NATIVE_API_VERSION.
 *
 * page(index, lat, lon, radius_m, limit, box, out) is ``index.page(lat, lon, radius_m, limit,
 * box=box)`` for a geo_index.native.Index (the ``native`` attribute of a GeohashIndex, QuadTree
 * or S2Index), box NULL for none, skipping the argument checks, which are the caller's to make
 * (coordinates in range, 0 < radius_m <= the index's max_radius_m, limit >= 1, a box's south
 * <= north): out->within and out->following are the page's total and following counts,
 * out->hits[0..out->count) its (distance_m, id) pairs, in order. The ids are new references
 * and hits is PyMem memory: the caller releases both (geo_page_release). Returns 0, or -1 with
 * an exception set (and out holds nothing to release).
 *
 * box_circle(box, &lat, &lon, &reach_m) is geo_index.box_circle: the point a box's results are
 * ranked from and the distance from it to the box's farthest point. */
#ifndef GEO_NATIVE_H
#define GEO_NATIVE_H
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

/* A box of latitudes and longitudes, degrees; west > east crosses the 180th meridian. */
typedef struct {
    double west, south, east, north;
} GeoBox;

typedef struct {
    int version;
    int (*page)(PyObject *index, double lat, double lon, double radius_m, Py_ssize_t limit, const GeoBox *box,
                GeoPage *out);
    void (*box_circle)(const GeoBox *box, double *lat, double *lon, double *reach_m);
} GeoNativeAPI;

#define GEO_NATIVE_API_CAPSULE "geo_index.native._C_API"
#define GEO_NATIVE_API_VERSION 3

static inline void
geo_page_release(GeoPage *page)
{
    for (Py_ssize_t i = 0; i < page->count; i++) Py_DECREF(page->hits[i].id);
    PyMem_Free(page->hits);
    page->hits = NULL;
    page->count = 0;
}
#endif
