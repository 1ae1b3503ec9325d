/* geo_index._cscan.CellMap: GeohashIndex's map of cell code -> cell when the scan is compiled.
 *
 * A dict of int keys costs a query a chain of dependent cache misses per cell it looks up
 * (index slot, entry, key object, value), one cell after the other. A CellMap keeps each code
 * next to its cell in one open-addressing table (linear probing, at most half full), so
 * scan_levels can prefetch the slots of every cell a query needs before it reads any. */
#ifndef GEO_CCELLS_H
#define GEO_CCELLS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    unsigned long long code;
    PyObject *cell; /* NULL: an empty slot */
} CellSlot;

typedef struct {
    PyObject_HEAD
    CellSlot *slots;
    Py_ssize_t used;
    int bits; /* 1 << bits slots */
} CellMapObject;

extern PyTypeObject CellMap_Type;

#define CellMap_Check(o) Py_IS_TYPE((o), &CellMap_Type)

/* The slot a code's probe starts at (Fibonacci hashing: the top bits of code * 2^64/phi). */
static inline Py_ssize_t
cellmap_home(const CellMapObject *m, unsigned long long code)
{
    return (Py_ssize_t)((code * 0x9E3779B97F4A7C15ULL) >> (64 - m->bits));
}

/* The cell filed under code (borrowed), or NULL; sets no error. */
static inline PyObject *
cellmap_find(const CellMapObject *m, unsigned long long code)
{
    Py_ssize_t mask = ((Py_ssize_t)1 << m->bits) - 1;
    for (Py_ssize_t i = cellmap_home(m, code);; i = (i + 1) & mask) {
        const CellSlot *s = &m->slots[i];
        if (s->cell == NULL) return NULL;
        if (s->code == code) return s->cell;
    }
}

#endif
