/* location_api._csearch.plain_search: the common nearby-search query string, read in C.
 *
 * plain_search(raw, limits), limits being (min_radius_m, max_radius_m, default_radius_m,
 * default_limit, max_limit): what plain_body reads a query string with, exposed so that the
 * tests can hold it to their Python reference (tests/location_api/reference.py). For a raw (still percent-encoded) query string made only of latitude, longitude
 * and optionally radius and limit, each once, each plainly valid, it returns
 * (latitude, longitude, radius_m, limit); for any other string it returns None and the
 * caller runs the full parse, which names every problem.
 *
 * Numbers are read by PyOS_string_to_double, the function behind float(), after the
 * text has been checked against the decimal grammar float() accepts from these
 * characters, so every value is the float Python would make of it.
 */
#include "_csearch.h"
#include <string.h>

enum { LATITUDE, LONGITUDE, RADIUS, LIMIT, NPARAMS };

static const char *const names[NPARAMS] = {"latitude", "longitude", "radius", "limit"};

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Which parameter a name is, or -1. */
static int
param_of(const char *s, Py_ssize_t n)
{
    for (int p = 0; p < NPARAMS; p++) {
        if ((size_t)n == strlen(names[p]) && memcmp(s, names[p], (size_t)n) == 0) return p;
    }
    return -1;
}

/* True when s[0..n) is [+-]?(digits(.digits*)?|.digits)([eE][+-]?digits)? */
static int
is_decimal(const char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    Py_ssize_t whole = 0, frac = 0;
    while (i < n && is_digit(s[i])) { i++; whole++; }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i])) { i++; frac++; }
    }
    if (whole == 0 && frac == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        Py_ssize_t exp = 0;
        while (i < n && is_digit(s[i])) { i++; exp++; }
        if (exp == 0) return 0;
    }
    return i == n;
}

/* The number s[0..n) when it is decimal and within [lo, hi]: 1 and *out set; 0 when it is
 * not; -1 with an exception set on failure. */
static int
number_in(const char *s, Py_ssize_t n, double lo, double hi, double *out)
{
    if (!is_decimal(s, n)) return 0;
    char small[64];
    char *text = small;
    if (n >= (Py_ssize_t)sizeof(small)) {
        text = PyMem_Malloc((size_t)n + 1);
        if (text == NULL) { PyErr_NoMemory(); return -1; }
    }
    memcpy(text, s, (size_t)n);
    text[n] = '\0';
    char *end = NULL;
    double value = PyOS_string_to_double(text, &end, NULL);  /* overflow gives +-inf */
    int complete = end == text + n;
    if (text != small) PyMem_Free(text);
    if (value == -1.0 && PyErr_Occurred()) return -1;
    if (!complete || !(lo <= value && value <= hi)) return 0;  /* inf fails the range */
    *out = value;
    return 1;
}

int
geo_read_plain(PyObject *raw, const PlainLimits *limits, PlainSearch *out)
{
    if (!PyUnicode_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "raw must be a str");
        return -1;
    }
    /* Any other character makes the Python parse give None too: a name it does not know,
     * or a value that is not a plain number. */
    if (!PyUnicode_IS_ASCII(raw)) return 0;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(raw);
    Py_ssize_t len = PyUnicode_GET_LENGTH(raw);
    if (memchr(s, '%', (size_t)len) != NULL || memchr(s, '+', (size_t)len) != NULL) return 0;

    const char *value[NPARAMS] = {NULL, NULL, NULL, NULL};
    Py_ssize_t value_len[NPARAMS] = {0, 0, 0, 0};
    Py_ssize_t start = 0;
    for (;;) {
        const char *amp = memchr(s + start, '&', (size_t)(len - start));
        Py_ssize_t stop = amp == NULL ? len : amp - s;
        const char *pair = s + start;
        Py_ssize_t pair_len = stop - start;
        const char *eq = memchr(pair, '=', (size_t)pair_len);
        if (eq == NULL) return 0;
        int p = param_of(pair, eq - pair);
        if (p < 0 || value[p] != NULL) return 0;
        value[p] = eq + 1;
        value_len[p] = pair + pair_len - (eq + 1);
        if (amp == NULL) break;
        start = stop + 1;
    }

    int ok;
    out->radius_m = limits->default_radius_m;
    out->limit = limits->default_limit;
    if (value[LATITUDE] == NULL || value[LONGITUDE] == NULL) return 0;
    if ((ok = number_in(value[LATITUDE], value_len[LATITUDE], -90.0, 90.0, &out->latitude)) <= 0) return ok;
    if ((ok = number_in(value[LONGITUDE], value_len[LONGITUDE], -180.0, 180.0, &out->longitude)) <= 0) return ok;
    if (value[RADIUS] != NULL
        && (ok = number_in(value[RADIUS], value_len[RADIUS], limits->min_radius_m, limits->max_radius_m,
                           &out->radius_m)) <= 0)
        return ok;
    if (value[LIMIT] != NULL) {
        const char *t = value[LIMIT];
        Py_ssize_t n = value_len[LIMIT];
        if (n < 1 || n > 3) return 0;
        long limit = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!is_digit(t[i])) return 0;
            limit = limit * 10 + (t[i] - '0');
        }
        if (limit < 1 || limit > limits->max_limit) return 0;
        out->limit = limit;
    }
    return 1;
}

int
geo_plain_limits(PyObject *tuple, PlainLimits *limits)
{
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "limits must be (min_radius_m, max_radius_m, default_radius_m, default_limit, max_limit)");
        return -1;
    }
    limits->min_radius_m = PyFloat_AsDouble(PyTuple_GET_ITEM(tuple, 0));
    limits->max_radius_m = PyFloat_AsDouble(PyTuple_GET_ITEM(tuple, 1));
    limits->default_radius_m = PyFloat_AsDouble(PyTuple_GET_ITEM(tuple, 2));
    limits->default_limit = PyLong_AsLong(PyTuple_GET_ITEM(tuple, 3));
    limits->max_limit = PyLong_AsLong(PyTuple_GET_ITEM(tuple, 4));
    return PyErr_Occurred() ? -1 : 0;
}

PyObject *
geo_plain_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "plain_search(raw, limits)");
        return NULL;
    }
    PlainLimits limits;
    PlainSearch q;
    if (geo_plain_limits(args[1], &limits) < 0) return NULL;
    int plain = geo_read_plain(args[0], &limits, &q);
    if (plain < 0) return NULL;
    if (plain == 0) Py_RETURN_NONE;
    return Py_BuildValue("(dddl)", q.latitude, q.longitude, q.radius_m, q.limit);
}
