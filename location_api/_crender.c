/* location_api._csearch.search_body: the nearby-search response body, assembled in C.
 *
 * search_body(total, radius_m, hits, prefixes, next_cursor, dumps) is
 * location_api.render._search_body_python compiled: the same arguments, the same bytes.
 *   - hits: a list of (id, distance_m) pairs, nearest first;
 *   - prefixes: a list indexed by id, or a dict, holding each hit's JSON prefix
 *     (location_api.render.hit_prefix): bytes that end with "distance_m":;
 *   - dumps: orjson.dumps. It writes every float (orjson's shortest round-trip digits,
 *     several times faster than repr's), ints beyond 64 bits, cursors with any character
 *     outside the URL-safe base64 alphabet, and any value of another type; the rest is
 *     copied. The tests hold the result to orjson's body of the same values as dicts.
 */
#include "_csearch.h"
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int
buf_put(Buf *b, const char *s, Py_ssize_t n)
{
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        char *data = PyMem_Realloc(b->data, (size_t)cap);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

#define PUT_LITERAL(b, s) buf_put((b), (s), (Py_ssize_t)(sizeof(s) - 1))

/* Append what dumps(value) makes of it (bytes). */
static int
put_dumped(Buf *b, PyObject *dumps, PyObject *value)
{
    PyObject *out = PyObject_CallOneArg(dumps, value);
    if (out == NULL) return -1;
    if (!PyBytes_Check(out)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "dumps must return bytes");
        return -1;
    }
    int rc = buf_put(b, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out));
    Py_DECREF(out);
    return rc;
}

static int
put_int(Buf *b, PyObject *dumps, PyObject *value)
{
    if (!PyLong_CheckExact(value)) return put_dumped(b, dumps, value);
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow) return put_dumped(b, dumps, value);
    char s[32];
    int n = PyOS_snprintf(s, sizeof s, "%lld", v);
    return buf_put(b, s, n);
}

static int
url_safe(const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static int
put_cursor(Buf *b, PyObject *dumps, PyObject *cursor)
{
    if (cursor == Py_None) return PUT_LITERAL(b, "null");
    if (PyUnicode_Check(cursor) && PyUnicode_IS_ASCII(cursor)) {
        const char *s = (const char *)PyUnicode_DATA(cursor);
        Py_ssize_t n = PyUnicode_GET_LENGTH(cursor);
        if (url_safe(s, n))
            return PUT_LITERAL(b, "\"") < 0 || buf_put(b, s, n) < 0 || PUT_LITERAL(b, "\"") < 0 ? -1 : 0;
    }
    return put_dumped(b, dumps, cursor);
}

/* The prefix of one id (borrowed), as prefixes[id] finds it; NULL with KeyError if absent. */
static PyObject *
prefix_of(PyObject *prefixes, PyObject *id)
{
    PyObject *found = NULL;
    if (PyList_CheckExact(prefixes)) {
        Py_ssize_t i = PyLong_Check(id) ? PyLong_AsSsize_t(id) : -1;
        if (i == -1 && PyErr_Occurred()) PyErr_Clear();
        if (i >= 0 && i < PyList_GET_SIZE(prefixes)) found = PyList_GET_ITEM(prefixes, i);
        if (found == Py_None) found = NULL;
    } else {
        found = PyDict_GetItemWithError(prefixes, id);
        if (found == NULL && PyErr_Occurred()) return NULL;
    }
    if (found == NULL) {
        PyErr_SetObject(PyExc_KeyError, id);
        return NULL;
    }
    if (!PyBytes_Check(found)) {
        PyErr_SetString(PyExc_TypeError, "a hit prefix must be bytes");
        return NULL;
    }
    return found;
}

/* The index of a hit's prefix in a list of prefixes, or -1 (a malformed hit or id: the
 * assembly proper reports it). Clears any error. */
static Py_ssize_t
slot_of(PyObject *hit, Py_ssize_t size)
{
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(hit, 0)))
        return -1;
    Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 0));
    if (i == -1 && PyErr_Occurred()) PyErr_Clear();
    return i >= 0 && i < size ? i : -1;
}

/* Start fetching every hit's list slot, then every prefix, before any is used. At a million
 * businesses each is a cache miss far from the others; the assembly loop, which calls
 * dumps between them, would otherwise wait for them one at a time. Changes nothing. */
static void
prefetch_prefixes(PyObject *hits, PyObject *prefixes)
{
    if (!PyList_CheckExact(hits) || !PyList_CheckExact(prefixes)) return;
    Py_ssize_t n = PyList_GET_SIZE(hits), size = PyList_GET_SIZE(prefixes);
    PyObject **slots = ((PyListObject *)prefixes)->ob_item;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = slot_of(PyList_GET_ITEM(hits, i), size);
        if (k >= 0) __builtin_prefetch(&slots[k]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = slot_of(PyList_GET_ITEM(hits, i), size);
        if (k < 0) continue;
        const char *p = (const char *)slots[k];
        /* the object's head and the first lines of its bytes (a prefix is a few lines long) */
        for (int line = 0; line < 4; line++) __builtin_prefetch(p + 64 * line);
    }
}

PyObject *
geo_search_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "search_body(total, radius_m, hits, prefixes, next_cursor, dumps)");
        return NULL;
    }
    PyObject *total = args[0], *radius = args[1], *hits = args[2], *prefixes = args[3], *cursor = args[4];
    PyObject *dumps = args[5];
    if (!PyList_Check(hits)) {
        PyErr_SetString(PyExc_TypeError, "hits must be a list of (id, distance_m)");
        return NULL;
    }
    if (!PyList_CheckExact(prefixes) && !PyDict_CheckExact(prefixes)) {
        PyErr_SetString(PyExc_TypeError, "prefixes must be a list or a dict");
        return NULL;
    }
    prefetch_prefixes(hits, prefixes);
    Buf b = {NULL, 0, 0};
    PyObject *result = NULL;
    if (PUT_LITERAL(&b, "{\"total\":") < 0 || put_int(&b, dumps, total) < 0
        || PUT_LITERAL(&b, ",\"radius_m\":") < 0 || put_dumped(&b, dumps, radius) < 0
        || PUT_LITERAL(&b, ",\"businesses\":[") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hits); i++) {
        PyObject *hit = PyList_GET_ITEM(hits, i);
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 2) {
            PyErr_SetString(PyExc_TypeError, "a hit must be a tuple (id, distance_m)");
            goto done;
        }
        PyObject *prefix = prefix_of(prefixes, PyTuple_GET_ITEM(hit, 0));
        if (prefix == NULL) goto done;
        if ((i > 0 && PUT_LITERAL(&b, ",") < 0) || buf_put(&b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix)) < 0
            || put_dumped(&b, dumps, PyTuple_GET_ITEM(hit, 1)) < 0 || PUT_LITERAL(&b, "}") < 0)
            goto done;
    }
    if (PUT_LITERAL(&b, "],\"next_cursor\":") < 0 || put_cursor(&b, dumps, cursor) < 0 || PUT_LITERAL(&b, "}") < 0)
        goto done;
    result = PyBytes_FromStringAndSize(b.data, b.len);
done:
    PyMem_Free(b.data);
    return result;
}
