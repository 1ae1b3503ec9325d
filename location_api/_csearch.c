/* location_api._csearch: the module of the searches' compiled path (see _csearch.h). */
#include "_csearch.h"

static PyMethodDef methods[] = {
    {"plain_body", (PyCFunction)(void (*)(void))geo_plain_body, METH_FASTCALL,
     "plain_body(raw, limits, index, prefixes, key, encode_cursor, dumps) -> bytes or None\n\n"
     "The response body of a plain search (position, maybe radius and limit, each once and plainly\n"
     "valid) read from the raw query string, or None for any other string: the query read, an\n"
     "index's first page (index: its geo_index.native.Index), the next page's cursor\n"
     "(encode_cursor: location_api.cursor.encode_fields, given key) and the body in one call."},
    {"area_body", (PyCFunction)(void (*)(void))geo_area_body, METH_FASTCALL,
     "area_body(raw, limits, index, prefixes, key, encode_cursor, dumps, refinements_of) -> bytes or None\n\n"
     "The response body of a plain area search (bbox, maybe limit, each once and plainly valid) read\n"
     "from the raw query string, or None for any other string or a box too large: as plain_body, for\n"
     "the box's circle (geo_index.box_circle) and the points inside the box; the cursor's refinements\n"
     "are refinements_of(west, south, east, north) (location_api.cursor.area_refinements)."},
    {"search_body", (PyCFunction)(void (*)(void))geo_search_body, METH_FASTCALL,
     "search_body(total, radius_m, hits, prefixes, next_cursor, dumps) -> bytes\n\n"
     "The body of a search answer (location_api.render.search_body)."},
    {"plain_search", (PyCFunction)(void (*)(void))geo_plain_search, METH_FASTCALL,
     "plain_search(raw, limits) -> (latitude, longitude, radius_m, limit) or None\n\n"
     "How plain_body reads a query string, on its own (for the tests)."},
    {"area_search", (PyCFunction)(void (*)(void))geo_area_search, METH_FASTCALL,
     "area_search(raw, limits) -> (west, south, east, north, limit) or None\n\n"
     "How area_body reads a query string, on its own (for the tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "location_api._csearch",
    "The searches' compiled path: the query string read, the index's page, the response body.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__csearch(void)
{
    return PyModule_Create(&module);
}
