/* geo_index._cscan.CellMap (see _ccells.h): a mapping of int cell codes in [0, 2**64) to
 * cells, with the part of dict's interface GeohashIndex uses: m[code], m[code] = cell,
 * del m[code], code in m, len(m), get, keys, values, items, clear and iteration over the
 * codes. Anything that is not an int in that range is simply never a key of it. */
#include "_ccells.h"

#define MIN_BITS 3

static int
code_of(PyObject *key, unsigned long long *code)
{
    /* 1: a code; 0: not a code (no error set); -1: an error */
    if (!PyLong_Check(key)) return 0;
    *code = PyLong_AsUnsignedLongLong(key);
    if (*code == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static int
resize(CellMapObject *m, int bits)
{
    CellSlot *slots = PyMem_Calloc((size_t)1 << bits, sizeof(CellSlot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    CellSlot *old = m->slots;
    Py_ssize_t old_size = old ? (Py_ssize_t)1 << m->bits : 0;
    m->slots = slots;
    m->bits = bits;
    Py_ssize_t mask = ((Py_ssize_t)1 << bits) - 1;
    for (Py_ssize_t k = 0; k < old_size; k++) {
        if (old[k].cell == NULL) continue;
        Py_ssize_t i = cellmap_home(m, old[k].code);
        while (slots[i].cell != NULL) i = (i + 1) & mask;
        slots[i] = old[k];
    }
    PyMem_Free(old);
    return 0;
}

static int
put(CellMapObject *m, unsigned long long code, PyObject *cell)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << m->bits) - 1, i = cellmap_home(m, code);
    for (; m->slots[i].cell != NULL; i = (i + 1) & mask) {
        if (m->slots[i].code == code) {
            PyObject *was = m->slots[i].cell;
            Py_INCREF(cell);
            m->slots[i].cell = cell;
            Py_DECREF(was);
            return 0;
        }
    }
    if (2 * (m->used + 1) > ((Py_ssize_t)1 << m->bits)) {  /* keep it at most half full */
        if (resize(m, m->bits + 1) < 0) return -1;
        return put(m, code, cell);
    }
    Py_INCREF(cell);
    m->slots[i].code = code;
    m->slots[i].cell = cell;
    m->used++;
    return 0;
}

/* Remove code's slot; 0 when absent. Backward-shift deletion: no tombstones, so a probe
 * always ends at the first empty slot. */
static int
drop(CellMapObject *m, unsigned long long code)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << m->bits) - 1, i = cellmap_home(m, code);
    for (;; i = (i + 1) & mask) {
        if (m->slots[i].cell == NULL) return 0;
        if (m->slots[i].code == code) break;
    }
    PyObject *was = m->slots[i].cell;
    for (Py_ssize_t j = (i + 1) & mask; m->slots[j].cell != NULL; j = (j + 1) & mask) {
        Py_ssize_t home = cellmap_home(m, m->slots[j].code);
        /* slot j may move back to the hole at i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].cell = NULL;
    m->used--;
    Py_DECREF(was);
    return 1;
}

static void
empty(CellMapObject *m)
{
    CellSlot *slots = m->slots;
    Py_ssize_t size = slots ? (Py_ssize_t)1 << m->bits : 0;
    m->slots = NULL;
    m->used = 0;
    for (Py_ssize_t k = 0; k < size; k++) Py_XDECREF(slots[k].cell);
    PyMem_Free(slots);
}

static PyObject *
cellmap_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "CellMap() takes no arguments");
        return NULL;
    }
    CellMapObject *m = (CellMapObject *)type->tp_alloc(type, 0);
    if (m == NULL) return NULL;
    if (resize(m, MIN_BITS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

static int
cellmap_traverse(CellMapObject *m, visitproc visit, void *arg)
{
    Py_ssize_t size = m->slots ? (Py_ssize_t)1 << m->bits : 0;
    for (Py_ssize_t k = 0; k < size; k++) Py_VISIT(m->slots[k].cell);
    return 0;
}

static int
cellmap_clear_refs(CellMapObject *m)
{
    empty(m);
    return 0;
}

static void
cellmap_dealloc(CellMapObject *m)
{
    PyObject_GC_UnTrack(m);
    empty(m);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int
ensure_slots(CellMapObject *m)
{
    return m->slots == NULL ? resize(m, MIN_BITS) : 0;
}

static PyObject *
lookup(CellMapObject *m, PyObject *key)
{
    unsigned long long code;
    int ok = code_of(key, &code);
    if (ok <= 0 || m->slots == NULL) return NULL;  /* an error (ok < 0) stays set */
    return cellmap_find(m, code);
}

static Py_ssize_t
cellmap_length(CellMapObject *m)
{
    return m->used;
}

static PyObject *
cellmap_subscript(CellMapObject *m, PyObject *key)
{
    PyObject *cell = lookup(m, key);
    if (cell == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return Py_NewRef(cell);
}

static int
cellmap_ass_subscript(CellMapObject *m, PyObject *key, PyObject *cell)
{
    unsigned long long code;
    int ok = code_of(key, &code);
    if (ok < 0) return -1;
    if (cell == NULL) {  /* del m[key] */
        if (ok == 1 && m->slots != NULL && drop(m, code)) return 0;
        PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    if (ok == 0) {
        PyErr_Format(PyExc_TypeError, "a cell code must be an int in [0, 2**64), not %R", key);
        return -1;
    }
    if (ensure_slots(m) < 0) return -1;
    return put(m, code, cell);
}

static int
cellmap_contains(CellMapObject *m, PyObject *key)
{
    PyObject *cell = lookup(m, key);
    return cell != NULL ? 1 : (PyErr_Occurred() ? -1 : 0);
}

static PyObject *
cellmap_get(CellMapObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(code[, default])");
        return NULL;
    }
    PyObject *cell = lookup(m, args[0]);
    if (cell == NULL && PyErr_Occurred()) return NULL;
    return Py_NewRef(cell != NULL ? cell : (nargs == 2 ? args[1] : Py_None));
}

/* 0: codes, 1: cells, 2: (code, cell) pairs; in slot order */
static PyObject *
listing(CellMapObject *m, int what)
{
    PyObject *out = PyList_New(m->used);
    if (out == NULL) return NULL;
    Py_ssize_t size = m->slots ? (Py_ssize_t)1 << m->bits : 0, n = 0;
    for (Py_ssize_t k = 0; k < size && n < m->used; k++) {
        CellSlot *s = &m->slots[k];
        if (s->cell == NULL) continue;
        PyObject *item;
        if (what == 1) {
            item = Py_NewRef(s->cell);
        } else {
            PyObject *code = PyLong_FromUnsignedLongLong(s->code);
            if (code == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            item = what == 0 ? code : PyTuple_Pack(2, code, s->cell);
            if (what == 2) Py_DECREF(code);
            if (item == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        PyList_SET_ITEM(out, n++, item);
    }
    return out;
}

static PyObject *
cellmap_keys(CellMapObject *m, PyObject *Py_UNUSED(ignored))
{
    return listing(m, 0);
}

static PyObject *
cellmap_values(CellMapObject *m, PyObject *Py_UNUSED(ignored))
{
    return listing(m, 1);
}

static PyObject *
cellmap_items(CellMapObject *m, PyObject *Py_UNUSED(ignored))
{
    return listing(m, 2);
}

static PyObject *
cellmap_clear(CellMapObject *m, PyObject *Py_UNUSED(ignored))
{
    empty(m);
    if (resize(m, MIN_BITS) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *
cellmap_iter(CellMapObject *m)
{
    PyObject *codes = listing(m, 0);
    if (codes == NULL) return NULL;
    PyObject *it = PyObject_GetIter(codes);
    Py_DECREF(codes);
    return it;
}

static PyObject *
cellmap_repr(CellMapObject *m)
{
    return PyUnicode_FromFormat("<CellMap of %zd cells>", m->used);
}

static PyMappingMethods cellmap_as_mapping = {
    (lenfunc)cellmap_length,
    (binaryfunc)cellmap_subscript,
    (objobjargproc)cellmap_ass_subscript,
};

static PySequenceMethods cellmap_as_sequence = {
    .sq_contains = (objobjproc)cellmap_contains,
};

static PyMethodDef cellmap_methods[] = {
    {"get", (PyCFunction)(void (*)(void))cellmap_get, METH_FASTCALL, "get(code[, default]): the cell, or default (None)"},
    {"keys", (PyCFunction)cellmap_keys, METH_NOARGS, "keys() -> list of the codes"},
    {"values", (PyCFunction)cellmap_values, METH_NOARGS, "values() -> list of the cells"},
    {"items", (PyCFunction)cellmap_items, METH_NOARGS, "items() -> list of (code, cell)"},
    {"clear", (PyCFunction)cellmap_clear, METH_NOARGS, "clear(): remove every cell"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject CellMap_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "geo_index._cscan.CellMap",
    .tp_doc = "CellMap(): int cell codes in [0, 2**64) -> cells, in one open-addressing table.",
    .tp_basicsize = sizeof(CellMapObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = cellmap_new,
    .tp_dealloc = (destructor)cellmap_dealloc,
    .tp_traverse = (traverseproc)cellmap_traverse,
    .tp_clear = (inquiry)cellmap_clear_refs,
    .tp_repr = (reprfunc)cellmap_repr,
    .tp_iter = (getiterfunc)cellmap_iter,
    .tp_as_mapping = &cellmap_as_mapping,
    .tp_as_sequence = &cellmap_as_sequence,
    .tp_methods = cellmap_methods,
};
