/* The compact store every geo_index index keeps its points in (no Python objects).
 *
 * Points are (id, lat, lon): a signed 64-bit id and the coordinates exactly as given. They are
 * held in *runs*, parallel arrays sorted by a 64-bit key computed from the coordinates (the
 * geohash Z-order key, or the S2 leaf cell id on the Hilbert curve), so the points of any cell
 * of the decomposition are one slice of a run, found by two binary searches.
 *
 *   base    the bulk of the points: lat, lon and id only (24 bytes a point); its keys are not
 *           stored but recomputed where a binary search needs them, guided by a directory
 *           holding the key of every DIR_STEP-th point (0.5 byte a point). An open-addressing
 *           table of 32-bit positions finds a point by id (6 bytes a point at load 2/3).
 *   active  the changes since the last merge: inserted and moved points, sorted by key, with
 *           their keys stored; small (a merge folds it into the base).
 *   frozen  during a merge only: the active run being folded in, while new changes go to a
 *           new active run.
 *
 * A removal from the base (or the frozen run) sets a tombstone bit; from the active run it
 * deletes the point. A merge writes a new base from the live points of the base, frozen and
 * active runs, in key order, without the interpreter's lock (see store_merge_*).
 */
#ifndef GEO_STORE_H
#define GEO_STORE_H
#include <stddef.h>
#include <stdint.h>

enum { KEY_ZORDER = 0, KEY_S2 = 1 };

#define DIR_STEP 16

typedef struct {
    size_t n, cap;
    double *lat, *lon;
    int64_t *id;
    uint64_t *key;  /* active and frozen runs: each point's key; NULL in the base */
    uint64_t *dir;  /* base: dir[j] = key of point j * DIR_STEP */
    uint32_t *top;  /* base: top[p] = the first j whose dir[j] has top ``topbits`` bits >= p */
    int topbits;
    uint8_t *dead;  /* tombstones, one bit a point; NULL while none */
    size_t ndead;
} Run;

typedef struct {
    uint32_t *slot; /* 1 + the base position of the id hashed there; 0: empty */
    size_t size;
} IdMap;

/* A merge: store_merge_begin (with the interpreter's lock) freezes the active run and copies
 * the inputs' descriptions and tombstones; merge_compute (without it) writes the new base from
 * them and ``extra`` (a run of new points, or NULL); store_merge_finish (with it again) swaps it
 * in and replays the removals made meanwhile, or, when memory ran out, puts everything back. */
typedef struct {
    Run base, frozen;        /* the inputs as they were at begin; their tombstones are copies */
    const Run *extra;
    Run out;
    IdMap ids;
    int64_t dup;             /* status -2: an id found twice */
    int status;              /* 0 done, -1 out of memory, -2 a repeated id */
} Merge;

typedef struct {
    int kind;
    Run base, frozen, active;
    IdMap ids;
    int merging;
    int64_t *log;   /* ids removed from the base or the frozen run while merging */
    size_t nlog, caplog;
} Store;

uint64_t store_key(int kind, double lat, double lon);
uint64_t run_key(const Run *r, int kind, size_t i);
size_t run_lower(const Run *r, int kind, uint64_t x);
/* run_lower within positions [lo, hi) (the caller knows the answer is there). */
size_t run_lower_in(const Run *r, int kind, uint64_t x, size_t lo, size_t hi);
static inline int run_is_dead(const Run *r, size_t i) { return r->dead && (r->dead[i >> 3] >> (i & 7)) & 1; }

void store_init(Store *s, int kind);
void store_free(Store *s);
size_t store_len(const Store *s);
size_t store_bytes(const Store *s);
/* 1 and the run and position of a live id, or 0. */
int store_find(Store *s, int64_t id, Run **run, size_t *pos);
/* 0, or -1 out of memory; the id must not be held. */
int store_insert(Store *s, int64_t id, double lat, double lon);
/* 1 removed, 0 not held, -1 out of memory. */
int store_remove(Store *s, int64_t id);

/* Shared by the store's files (_store.c, _merge.c). */
/* A table of ids[0..n): 0, -1 out of memory, -2 (*dup) a repeated id. */
int idmap_build(IdMap *m, const int64_t *ids, size_t n, int64_t *dup);
/* The position of id in ids (by the table m), or SIZE_MAX. */
size_t idmap_find(const IdMap *m, const int64_t *ids, int64_t id);
/* Room for cap points (keys stored): 0, or -1 out of memory. */
int run_reserve(Run *r, size_t cap);
/* The tombstone of point i: 0, or -1 out of memory. */
int run_kill(Run *r, size_t i);

/* A run of n new points sorted by key (keys stored): 0, or -1 out of memory. */
int run_from_arrays(Run *out, int kind, const int64_t *id, const double *lat, const double *lon, size_t n);
void run_free(Run *r);

/* 0, or -1 when a merge is already running or memory ran out. */
int store_merge_begin(Store *s, Merge *m, const Run *extra);
void merge_compute(int kind, Merge *m);
void store_merge_finish(Store *s, Merge *m);
#endif
