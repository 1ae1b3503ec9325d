/* location_api._csearch.area_body: the plain area search ("search this area") answered in one
 * call.
 *
 * area_body(raw, limits, index, prefixes, key, encode_cursor, dumps, refinements_of)
 *     -> bytes or None
 *
 * As plain_body (_cplain.c) for a query string of a box and maybe a page size, each once and
 * plainly valid (_cquery.c): the box's circle (geo_index.box_circle through native.h: its
 * centre, and its farthest point's distance plus the metre location_api.search_params adds),
 * the index's first page of the circle inside the box, the next page's cursor
 * (encode_cursor, with the box's refinements_of(west, south, east, north):
 * location_api.cursor.area_refinements) and the body. None for any other string, and for a
 * box too large for limits' largest radius (the general path names the problem). The tests
 * hold it to the general path's answer of the same request
 * (tests/location_api/test_area_body.py).
 */
#include "_csearch.h"

/* What location_api.search_params.parse_area adds to the reach, metres. */
#define REACH_PAD_M 1.0

PyObject *
geo_area_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PlainLimits limits;
    const GeoNativeAPI *api;
    AreaSearch q;
    if (geo_body_args("area_body(raw, limits, index, prefixes, key, encode_cursor, dumps, refinements_of)", nargs, 8,
                      args, &limits, &api) < 0)
        return NULL;
    int plain = geo_read_area(args[0], &limits, &q);
    if (plain <= 0) return plain < 0 ? NULL : Py_NewRef(Py_None);
    double lat, lon, reach;
    api->box_circle(&q.box, &lat, &lon, &reach);
    double radius = reach + REACH_PAD_M;
    if (!(radius <= limits.max_radius_m)) Py_RETURN_NONE;
    return geo_page_body(api, args[2], lat, lon, radius, q.limit, &q.box, args[3], args[4], args[5], args[7], args[6]);
}
