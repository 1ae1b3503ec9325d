/* location_api._csearch.search_body: the nearby-search response body, assembled in C.
 *
 * search_body(total, radius_m, hits, prefixes, next_cursor, dumps): the body of every
 * search answer (location_api.render.search_body), held by the tests to their Python
 * reference (tests/location_api/reference.py).
 *   - hits: a list of (id, distance_m) pairs, nearest first;
 *   - prefixes: a list indexed by id, or a dict, holding each hit's JSON prefix
 *     (location_api.render.hit_prefix): bytes that end with "distance_m":;
 *   - dumps: orjson.dumps. It writes every float (orjson's shortest round-trip digits,
 *     several times faster than repr's; a page's radius and distances in one call, as a
 *     list), ints beyond 64 bits, cursors with any character outside the URL-safe base64
 *     alphabet, and any value of another type; the rest is copied. The tests hold the
 *     result to orjson's body of the same values as dicts.
 *
 * geo_render_body (_csearch.h) is the same assembly from arrays of ids and distances, for
 * a page that never became a list (_cplain.c).
 */
#include "_csearch.h"
#include <string.h>

/* The body is built in `data`: first the caller's stack buffer (a page of 20 hits fits),
 * then, only when it outgrows it, memory of its own (`heap`). */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
    int heap;
} Buf;

static int
buf_put(Buf *b, const char *s, Py_ssize_t n)
{
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap * 2;
        while (cap < b->len + n) cap *= 2;
        char *data = b->heap ? PyMem_Realloc(b->data, (size_t)cap) : PyMem_Malloc((size_t)cap);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (!b->heap) memcpy(data, b->data, (size_t)b->len);
        b->data = data;
        b->cap = cap;
        b->heap = 1;
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
    char s[24];
    int n = sizeof s;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        s[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) s[--n] = '-';
    return buf_put(b, s + n, (Py_ssize_t)sizeof s - n);
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

/* The radius and every hit's distance as dumps writes them, from one call: dumps of the list
 * [radius, d1, ..., dn] is "[" + each one's own dumps + "," ... + "]", and a float's never
 * holds a comma. `starts[i]`, `lens[i]` locate value i in the returned bytes. Returns NULL
 * (no error set) when a value is not a float, and the caller dumps each value on its own;
 * NULL with an error set when dumps fails. */
static PyObject *
dump_floats(PyObject *dumps, PyObject *radius, Py_ssize_t n, PyObject *const *dists, Py_ssize_t *starts,
            Py_ssize_t *lens)
{
    if (!PyFloat_CheckExact(radius)) return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyFloat_CheckExact(dists[i])) return NULL;
    PyObject *values = PyList_New(n + 1);
    if (values == NULL) return NULL;
    PyList_SET_ITEM(values, 0, Py_NewRef(radius));
    for (Py_ssize_t i = 0; i < n; i++) PyList_SET_ITEM(values, i + 1, Py_NewRef(dists[i]));
    PyObject *out = PyObject_CallOneArg(dumps, values);
    Py_DECREF(values);
    if (out == NULL) return NULL;
    const char *s = PyBytes_Check(out) ? PyBytes_AS_STRING(out) : NULL;
    Py_ssize_t size = s ? PyBytes_GET_SIZE(out) : 0, at = 1, k = 0;
    if (s == NULL || size < 2 || s[0] != '[' || s[size - 1] != ']') {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "dumps must return a JSON array as bytes");
        return NULL;
    }
    for (Py_ssize_t i = 1; i < size && k <= n; i++) {
        if (s[i] == ',' || i == size - 1) {
            starts[k] = at;
            lens[k] = i - at;
            k++;
            at = i + 1;
        }
    }
    if (k != n + 1) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, "dumps wrote an unexpected array of floats");
        return NULL;
    }
    return out;
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

/* The index of an id's prefix in a list of prefixes, or -1 (not an int, or out of range: the
 * assembly proper reports it). Clears any error. */
static Py_ssize_t
slot_of(PyObject *id, Py_ssize_t size)
{
    if (!PyLong_CheckExact(id)) return -1;
    Py_ssize_t i = PyLong_AsSsize_t(id);
    if (i == -1 && PyErr_Occurred()) PyErr_Clear();
    return i >= 0 && i < size ? i : -1;
}

/* Start fetching every hit's list slot, then every prefix, before any is used. At a million
 * businesses each is a cache miss far from the others; the assembly loop, which calls
 * dumps between them, would otherwise wait for them one at a time. Changes nothing. */
static void
prefetch_prefixes(Py_ssize_t n, PyObject *const *ids, PyObject *prefixes)
{
    if (!PyList_CheckExact(prefixes)) return;
    Py_ssize_t size = PyList_GET_SIZE(prefixes);
    PyObject **slots = ((PyListObject *)prefixes)->ob_item;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = slot_of(ids[i], size);
        if (k >= 0) __builtin_prefetch(&slots[k]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = slot_of(ids[i], size);
        if (k < 0) continue;
        const char *p = (const char *)slots[k];
        /* the object's head and the first lines of its bytes (a prefix is a few lines long) */
        for (int line = 0; line < 4; line++) __builtin_prefetch(p + 64 * line);
    }
}

PyObject *
geo_render_body(PyObject *total, PyObject *radius, Py_ssize_t n, PyObject *const *ids, PyObject *const *dists,
                PyObject *prefixes, PyObject *cursor, PyObject *dumps)
{
    if (!PyList_CheckExact(prefixes) && !PyDict_CheckExact(prefixes)) {
        PyErr_SetString(PyExc_TypeError, "prefixes must be a list or a dict");
        return NULL;
    }
    prefetch_prefixes(n, ids, prefixes);
    char stack[8192];
    Buf b = {stack, 0, (Py_ssize_t)sizeof stack, 0};
    PyObject *result = NULL, *numbers = NULL;
    /* the radius and the distances, written by one dumps call when the page is small */
    Py_ssize_t starts[GEO_BODY_BATCH + 1], lens[GEO_BODY_BATCH + 1];
    if (n <= GEO_BODY_BATCH) {
        numbers = dump_floats(dumps, radius, n, dists, starts, lens);
        if (numbers == NULL && PyErr_Occurred()) goto done;
    }
    const char *text = numbers ? PyBytes_AS_STRING(numbers) : NULL;
    if (PUT_LITERAL(&b, "{\"total\":") < 0 || put_int(&b, dumps, total) < 0 || PUT_LITERAL(&b, ",\"radius_m\":") < 0
        || (text ? buf_put(&b, text + starts[0], lens[0]) : put_dumped(&b, dumps, radius)) < 0
        || PUT_LITERAL(&b, ",\"businesses\":[") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *prefix = prefix_of(prefixes, ids[i]);
        if (prefix == NULL) goto done;
        if ((i > 0 && PUT_LITERAL(&b, ",") < 0) || buf_put(&b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix)) < 0
            || (text ? buf_put(&b, text + starts[i + 1], lens[i + 1]) : put_dumped(&b, dumps, dists[i])) < 0
            || PUT_LITERAL(&b, "}") < 0)
            goto done;
    }
    if (PUT_LITERAL(&b, "],\"next_cursor\":") < 0 || put_cursor(&b, dumps, cursor) < 0 || PUT_LITERAL(&b, "}") < 0)
        goto done;
    result = PyBytes_FromStringAndSize(b.data, b.len);
done:
    Py_XDECREF(numbers);
    if (b.heap) PyMem_Free(b.data);
    return result;
}

PyObject *
geo_search_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "search_body(total, radius_m, hits, prefixes, next_cursor, dumps)");
        return NULL;
    }
    PyObject *hits = args[2];
    if (!PyList_Check(hits)) {
        PyErr_SetString(PyExc_TypeError, "hits must be a list of (id, distance_m)");
        return NULL;
    }
    /* A tuple of the hits keeps every pair, and so its id and distance, alive whatever a
     * dict lookup of an id or a dumps of a value might do to the list. */
    PyObject *held = PyList_AsTuple(hits);
    if (held == NULL) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(held);
    PyObject *small[2 * GEO_BODY_BATCH];
    PyObject **pairs = n <= GEO_BODY_BATCH ? small : PyMem_Malloc((size_t)n * 2 * sizeof(PyObject *));
    if (pairs == NULL) {
        Py_DECREF(held);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *hit = PyTuple_GET_ITEM(held, i);
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 2) {
            PyErr_SetString(PyExc_TypeError, "a hit must be a tuple (id, distance_m)");
            goto done;
        }
        pairs[i] = PyTuple_GET_ITEM(hit, 0);
        pairs[n + i] = PyTuple_GET_ITEM(hit, 1);
    }
    result = geo_render_body(args[0], args[1], n, pairs, pairs + n, args[3], args[4], args[5]);
done:
    if (pairs != small) PyMem_Free(pairs);
    Py_DECREF(held);
    return result;
}
