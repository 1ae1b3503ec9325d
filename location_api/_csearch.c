/* location_api._csearch: the module of the nearby search's compiled parts (see _csearch.h). */
#include "_csearch.h"

static PyMethodDef methods[] = {
    {"plain_search", (PyCFunction)(void (*)(void))geo_plain_search, METH_FASTCALL,
     "plain_search(raw, min_radius_m, max_radius_m, default_radius_m, default_limit, max_limit)\n"
     "-> (latitude, longitude, radius_m, limit) or None\n\n"
     "location_api.validate._plain_search_python compiled: same arguments, same result."},
    {"search_body", (PyCFunction)(void (*)(void))geo_search_body, METH_FASTCALL,
     "search_body(total, radius_m, hits, prefixes, next_cursor, dumps) -> bytes\n\n"
     "location_api.render._search_body_python compiled: the same arguments, the same bytes."},
    {"make_cursor", (PyCFunction)(void (*)(void))geo_make_cursor, METH_FASTCALL,
     "make_cursor(key, latitude, longitude, query_radius_m, expand, category, radius_m, distance_m, business_id)\n"
     "-> str\n\n"
     "location_api.cursor._encode_cursor_python compiled: the same cursor."},
    {"plain_body", (PyCFunction)(void (*)(void))geo_plain_body, METH_FASTCALL,
     "plain_body(raw, min_radius_m, max_radius_m, default_radius_m, default_limit, max_limit, index,\n"
     "           prefixes, key, dumps) -> bytes or None\n\n"
     "plain_search, an index's first page (index: its geo_index.native.Index), the cursor and\n"
     "the body in one call: location_api.search.plain_search_body's bytes, or None when raw is not a\n"
     "plain search."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "location_api._csearch",
    "The nearby search's hot path in C: the query string read, the response body assembled, the cursor signed.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__csearch(void)
{
    return PyModule_Create(&module);
}
