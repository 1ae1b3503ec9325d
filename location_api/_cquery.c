/* location_api._csearch.plain_search and area_search: the common search query strings, read
 * in C.
 *
 * plain_search(raw, limits), limits being (min_radius_m, max_radius_m, default_radius_m,
 * default_limit, max_limit): what plain_body reads a query string with, exposed so that the
 * tests can hold it to their Python reference (tests/location_api/reference.py). For a raw
 * (still percent-encoded) query string made only of latitude, longitude and optionally radius
 * and limit, each once, each plainly valid, it returns (latitude, longitude, radius_m, limit);
 * for any other string it returns None and the caller runs the full parse, which names every
 * problem. area_search(raw, limits) is the same for area_body: bbox (four plain numbers,
 * separated by "," or "%2C", south not north of north) and optionally limit give (west,
 * south, east, north, limit).
 *
 * Numbers are read by PyOS_string_to_double, the function behind float(), after the
 * text has been checked against the decimal grammar float() accepts from these
 * characters, so every value is the float Python would make of it.
 */
#include "_csearch.h"
#include <string.h>

enum { LATITUDE, LONGITUDE, RADIUS, LIMIT, NPARAMS };
static const char *const names[NPARAMS] = {"latitude", "longitude", "radius", "limit"};

enum { BBOX, AREA_LIMIT, NAREA };
static const char *const area_names[NAREA] = {"bbox", "limit"};

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Which of known[0..n_known) a name is, or -1. */
static int
param_of(const char *const *known, int n_known, const char *s, Py_ssize_t n)
{
    for (int p = 0; p < n_known; p++) {
        if ((size_t)n == strlen(known[p]) && memcmp(s, known[p], (size_t)n) == 0) return p;
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

/* A query string's values by parameter: value[p] (NULL: not given) and len[p]. */
typedef struct {
    const char *value[4];
    Py_ssize_t len[4];
} Pairs;
_Static_assert(NPARAMS <= 4 && NAREA <= 4, "Pairs holds four parameters");

/* Split raw (a str) into its name=value pairs, each name one of known[0..n_known) (at most
 * 4) and given once: 1 with *out set; 0 when raw is anything else (a name not known,
 * repeated or without "=", a character outside ASCII, "+" or, unless escapes, "%": the full
 * parse decodes them); -1 with an exception set. With escapes, the caller decodes the
 * values' "%". */
static int
read_pairs(PyObject *raw, int escapes, const char *const *known, int n_known, Pairs *out)
{
    if (!PyUnicode_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "raw must be a str");
        return -1;
    }
    if (!PyUnicode_IS_ASCII(raw)) return 0;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(raw);
    Py_ssize_t len = PyUnicode_GET_LENGTH(raw);
    if ((!escapes && memchr(s, '%', (size_t)len) != NULL) || memchr(s, '+', (size_t)len) != NULL) return 0;
    for (int p = 0; p < n_known; p++) {
        out->value[p] = NULL;
        out->len[p] = 0;
    }
    Py_ssize_t start = 0;
    for (;;) {
        const char *amp = memchr(s + start, '&', (size_t)(len - start));
        Py_ssize_t stop = amp == NULL ? len : amp - s;
        const char *pair = s + start;
        Py_ssize_t pair_len = stop - start;
        const char *eq = memchr(pair, '=', (size_t)pair_len);
        if (eq == NULL) return 0;
        int p = param_of(known, n_known, pair, eq - pair);
        if (p < 0 || out->value[p] != NULL) return 0;
        out->value[p] = eq + 1;
        out->len[p] = pair + pair_len - (eq + 1);
        if (amp == NULL) break;
        start = stop + 1;
    }
    return 1;
}

/* A page size t[0..n) (1 to 3 digits, 1 to max_limit): 1 and *out; else 0. */
static int
limit_in(const char *t, Py_ssize_t n, long max_limit, long *out)
{
    if (n < 1 || n > 3) return 0;
    long limit = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_digit(t[i])) return 0;
        limit = limit * 10 + (t[i] - '0');
    }
    if (limit < 1 || limit > max_limit) return 0;
    *out = limit;
    return 1;
}

/* read_pairs, then the page size, parameter limit_at (the default when not given): as
 * read_pairs. */
static int
read_query(PyObject *raw, int escapes, const char *const *known, int n_known, int limit_at,
           const PlainLimits *limits, Pairs *out, long *limit)
{
    int ok = read_pairs(raw, escapes, known, n_known, out);
    if (ok <= 0) return ok;
    *limit = limits->default_limit;
    return out->value[limit_at] == NULL || limit_in(out->value[limit_at], out->len[limit_at], limits->max_limit, limit);
}

int
geo_read_plain(PyObject *raw, const PlainLimits *limits, PlainSearch *out)
{
    Pairs q;
    int ok = read_query(raw, 0, names, NPARAMS, LIMIT, limits, &q, &out->limit);
    if (ok <= 0) return ok;
    out->radius_m = limits->default_radius_m;
    if (q.value[LATITUDE] == NULL || q.value[LONGITUDE] == NULL) return 0;
    if ((ok = number_in(q.value[LATITUDE], q.len[LATITUDE], -90.0, 90.0, &out->latitude)) <= 0) return ok;
    if ((ok = number_in(q.value[LONGITUDE], q.len[LONGITUDE], -180.0, 180.0, &out->longitude)) <= 0) return ok;
    if (q.value[RADIUS] == NULL) return 1;
    return number_in(q.value[RADIUS], q.len[RADIUS], limits->min_radius_m, limits->max_radius_m, &out->radius_m);
}

int
geo_read_area(PyObject *raw, const PlainLimits *limits, AreaSearch *out)
{
    Pairs q;
    int ok = read_query(raw, 1, area_names, NAREA, AREA_LIMIT, limits, &q, &out->limit);
    if (ok <= 0) return ok;
    if (q.value[BBOX] == NULL) return 0;
    /* west,south,east,north: four numbers, three commas, each "," or "%2C" (as browsers'
     * URLSearchParams sends it); any other "%" fails the number it is in. */
    double *corner[4] = {&out->box.west, &out->box.south, &out->box.east, &out->box.north};
    const char *t = q.value[BBOX], *end = q.value[BBOX] + q.len[BBOX];
    for (int i = 0; i < 4; i++) {
        const char *stop = t;
        Py_ssize_t comma = 0;
        for (; stop < end; stop++) {
            if (*stop == ',') comma = 1;
            else if (*stop == '%' && end - stop >= 3 && stop[1] == '2' && (stop[2] == 'C' || stop[2] == 'c')) comma = 3;
            if (comma) break;
        }
        if ((comma == 0) != (i == 3)) return 0;
        double bound = i % 2 ? 90.0 : 180.0;
        if ((ok = number_in(t, stop - t, -bound, bound, corner[i])) <= 0) return ok;
        t = stop + comma;
    }
    return out->box.south <= out->box.north;
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

/* plain_search (area 0) or area_search (area 1): the reader's answer as a tuple, or None. */
static PyObject *
read_search(PyObject *const *args, Py_ssize_t nargs, int area)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, area ? "area_search(raw, limits)" : "plain_search(raw, limits)");
        return NULL;
    }
    PlainLimits limits;
    PlainSearch p;
    AreaSearch a;
    if (geo_plain_limits(args[1], &limits) < 0) return NULL;
    int found = area ? geo_read_area(args[0], &limits, &a) : geo_read_plain(args[0], &limits, &p);
    if (found < 0) return NULL;
    if (!found) Py_RETURN_NONE;
    if (area) return Py_BuildValue("(ddddl)", a.box.west, a.box.south, a.box.east, a.box.north, a.limit);
    return Py_BuildValue("(dddl)", p.latitude, p.longitude, p.radius_m, p.limit);
}

PyObject *
geo_plain_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return read_search(args, nargs, 0);
}

PyObject *
geo_area_search(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return read_search(args, nargs, 1);
}
