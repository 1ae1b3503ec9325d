/* The compact store (see _store.h): runs sorted by key, ids found by hashing, merges. */
#include "_store.h"
#include "_keys.h"
#include "_s2geom.h"
#include <stdlib.h>
#include <string.h>

uint64_t
store_key(int kind, double lat, double lon)
{
    return kind == KEY_S2 ? s2geom_leaf_id(lat, lon) : zorder_key(lat, lon);
}

uint64_t
run_key(const Run *r, int kind, size_t i)
{
    return r->key ? r->key[i] : store_key(kind, r->lat[i], r->lon[i]);
}

/* The first position in [lo, hi) whose key is at least x (hi if none). A base run's keys are
 * not stored: a Z-order one compares the point's grid row and column with x's, which costs
 * half of interleaving them into its key. */
static size_t
lower_in(const Run *r, int kind, uint64_t x, size_t lo, size_t hi)
{
    if (!r->key && kind == KEY_ZORDER) {
        uint32_t xrow = compact32(x), xcol = compact32(x >> 1);
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (zorder_below(r->lat[mid], r->lon[mid], xrow, xcol)) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (run_key(r, kind, mid) < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

size_t
run_lower(const Run *r, int kind, uint64_t x)
{
    size_t lo = 0, hi = r->n;
    if (!r->key) {
        /* The directory first (the entries sharing x's top bits, found in ``top``): the last
         * entry below x starts the block x's position is in. */
        size_t m = (r->n + DIR_STEP - 1) / DIR_STEP, a = 0, b = m;
        if (r->top) {
            uint64_t p = r->topbits ? x >> (64 - r->topbits) : 0;
            a = r->top[p];
            b = r->top[p + 1];
        }
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (r->dir[mid] < x) a = mid + 1;
            else b = mid;
        }
        if (a == 0) return 0;
        lo = (a - 1) * DIR_STEP + 1;
        hi = a * DIR_STEP < r->n ? a * DIR_STEP : r->n;
    }
    return lower_in(r, kind, x, lo, hi);
}

size_t
run_lower_in(const Run *r, int kind, uint64_t x, size_t lo, size_t hi)
{
    if (!r->key && hi - lo > DIR_STEP) {
        /* The directory's entries at positions in [lo, hi) first (entry j is position
         * j * DIR_STEP's key): the first one at or above x ends the search, the one before it
         * starts it. */
        size_t first = (lo + DIR_STEP - 1) / DIR_STEP, end = (hi + DIR_STEP - 1) / DIR_STEP, a = first, b = end;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (r->dir[mid] < x) a = mid + 1;
            else b = mid;
        }
        if (a < end) hi = a * DIR_STEP;
        if (a > first) lo = (a - 1) * DIR_STEP + 1;
    }
    return lower_in(r, kind, x, lo, hi);
}

/* ---------------------------------------------------------------- ids */
static inline size_t
slot_of(int64_t id, size_t size)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)(((unsigned __int128)x * size) >> 64);
}

int
idmap_build(IdMap *m, const int64_t *ids, size_t n, int64_t *dup)
{
    m->size = n + n / 2 + 8;
    m->slot = calloc(m->size, sizeof(uint32_t));
    if (!m->slot) return -1;
    for (size_t p = 0; p < n; p++) {
        size_t h = slot_of(ids[p], m->size);
        while (m->slot[h]) {
            if (ids[m->slot[h] - 1] == ids[p]) { *dup = ids[p]; free(m->slot); m->slot = NULL; return -2; }
            if (++h == m->size) h = 0;
        }
        m->slot[h] = (uint32_t)(p + 1);
    }
    return 0;
}

size_t
idmap_find(const IdMap *m, const int64_t *ids, int64_t id)
{
    if (!m->size) return SIZE_MAX;
    for (size_t h = slot_of(id, m->size); m->slot[h]; h = h + 1 == m->size ? 0 : h + 1)
        if (ids[m->slot[h] - 1] == id) return m->slot[h] - 1;
    return SIZE_MAX;
}

/* ---------------------------------------------------------------- runs */
void
run_free(Run *r)
{
    free(r->lat); free(r->lon); free(r->id); free(r->key); free(r->dir); free(r->top); free(r->dead);
    memset(r, 0, sizeof *r);
}

int
run_reserve(Run *r, size_t cap)
{
    if (cap <= r->cap) return 0;
    if (cap < 2 * r->cap) cap = 2 * r->cap;
    if (cap < 16) cap = 16;
    double *lat = realloc(r->lat, cap * sizeof *lat);
    if (!lat) return -1;
    r->lat = lat;
    double *lon = realloc(r->lon, cap * sizeof *lon);
    if (!lon) return -1;
    r->lon = lon;
    int64_t *id = realloc(r->id, cap * sizeof *id);
    if (!id) return -1;
    r->id = id;
    uint64_t *key = realloc(r->key, cap * sizeof *key);
    if (!key) return -1;
    r->key = key;
    r->cap = cap;
    return 0;
}

int
run_kill(Run *r, size_t i)
{
    if (!r->dead && !(r->dead = calloc((r->n + 7) / 8, 1))) return -1;
    r->dead[i >> 3] |= (uint8_t)(1u << (i & 7));
    r->ndead++;
    return 0;
}

typedef struct {
    uint64_t key;
    uint64_t at;
} Pair;

/* Sort pairs by key: least significant 16-bit digit first, skipping digits all pairs share. */
static int
radix_sort(Pair *a, size_t n)
{
    Pair *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return -1;
    size_t *count = malloc(65536 * sizeof *count);
    if (!count) { free(tmp); return -1; }
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof *count);
        for (size_t i = 0; i < n; i++) count[(a[i].key >> shift) & 0xFFFF]++;
        if (count[(a[0].key >> shift) & 0xFFFF] == n) continue;
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) { size_t c = count[d]; count[d] = sum; sum += c; }
        for (size_t i = 0; i < n; i++) tmp[count[(a[i].key >> shift) & 0xFFFF]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
    free(count);
    free(tmp);
    return 0;
}

int
run_from_arrays(Run *out, int kind, const int64_t *id, const double *lat, const double *lon, size_t n)
{
    memset(out, 0, sizeof *out);
    if (n == 0) return 0;
    Pair *p = malloc(n * sizeof *p);
    if (!p) return -1;
    for (size_t i = 0; i < n; i++) { p[i].key = store_key(kind, lat[i], lon[i]); p[i].at = i; }
    if (radix_sort(p, n) < 0 || run_reserve(out, n) < 0) { free(p); run_free(out); return -1; }
    for (size_t i = 0; i < n; i++) {
        size_t j = p[i].at;
        out->key[i] = p[i].key; out->lat[i] = lat[j]; out->lon[i] = lon[j]; out->id[i] = id[j];
    }
    out->n = n;
    free(p);
    return 0;
}

/* ---------------------------------------------------------------- the store */
void
store_init(Store *s, int kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
}

void
store_free(Store *s)
{
    run_free(&s->base); run_free(&s->frozen); run_free(&s->active);
    free(s->ids.slot); free(s->log);
    memset(s, 0, sizeof *s);
}

size_t
store_len(const Store *s)
{
    return s->base.n - s->base.ndead + s->frozen.n - s->frozen.ndead + s->active.n;
}

static size_t
run_bytes(const Run *r)
{
    size_t per = r->key ? 32 : 24, dir = r->key ? 0 : (r->n + DIR_STEP - 1) / DIR_STEP * 8;
    size_t top = r->top ? ((size_t)1 << r->topbits) * 4 + 4 : 0;
    return (r->key ? r->cap : r->n) * per + dir + top + (r->dead ? (r->n + 7) / 8 : 0);
}

size_t
store_bytes(const Store *s)
{
    return run_bytes(&s->base) + run_bytes(&s->frozen) + run_bytes(&s->active) + s->ids.size * sizeof(uint32_t);
}

int
store_find(Store *s, int64_t id, Run **run, size_t *pos)
{
    Run *r = &s->active;
    for (size_t i = 0; i < r->n; i++)
        if (r->id[i] == id) { *run = r; *pos = i; return 1; }
    r = &s->frozen;
    for (size_t i = 0; i < r->n; i++)
        if (r->id[i] == id && !run_is_dead(r, i)) { *run = r; *pos = i; return 1; }
    size_t i = idmap_find(&s->ids, s->base.id, id);
    if (i != SIZE_MAX && !run_is_dead(&s->base, i)) { *run = &s->base; *pos = i; return 1; }
    return 0;
}

int
store_insert(Store *s, int64_t id, double lat, double lon)
{
    Run *r = &s->active;
    if (run_reserve(r, r->n + 1) < 0) return -1;
    uint64_t key = store_key(s->kind, lat, lon);
    size_t at = key == UINT64_MAX ? r->n : run_lower(r, s->kind, key + 1);
    size_t tail = r->n - at;
    memmove(r->lat + at + 1, r->lat + at, tail * sizeof *r->lat);
    memmove(r->lon + at + 1, r->lon + at, tail * sizeof *r->lon);
    memmove(r->id + at + 1, r->id + at, tail * sizeof *r->id);
    memmove(r->key + at + 1, r->key + at, tail * sizeof *r->key);
    r->lat[at] = lat; r->lon[at] = lon; r->id[at] = id; r->key[at] = key;
    r->n++;
    return 0;
}

int
store_remove(Store *s, int64_t id)
{
    Run *r;
    size_t i;
    if (!store_find(s, id, &r, &i)) return 0;
    if (r == &s->active) {
        size_t tail = r->n - i - 1;
        memmove(r->lat + i, r->lat + i + 1, tail * sizeof *r->lat);
        memmove(r->lon + i, r->lon + i + 1, tail * sizeof *r->lon);
        memmove(r->id + i, r->id + i + 1, tail * sizeof *r->id);
        memmove(r->key + i, r->key + i + 1, tail * sizeof *r->key);
        r->n--;
        return 1;
    }
    if (s->merging) {
        if (s->nlog == s->caplog) {
            size_t cap = s->caplog ? 2 * s->caplog : 64;
            int64_t *log = realloc(s->log, cap * sizeof *log);
            if (!log) return -1;
            s->log = log;
            s->caplog = cap;
        }
        s->log[s->nlog++] = id;
    }
    return run_kill(r, i) < 0 ? -1 : 1;
}
