/* Merging a store's runs into a new base (see store_merge_* in _store.h). */
#include "_store.h"
#include <stdlib.h>
#include <string.h>

static uint8_t *
copy_bits(const Run *r, int *failed)
{
    if (!r->dead) return NULL;
    uint8_t *bits = malloc((r->n + 7) / 8);
    if (!bits) { *failed = 1; return NULL; }
    return memcpy(bits, r->dead, (r->n + 7) / 8);
}

int
store_merge_begin(Store *s, Merge *m, const Run *extra)
{
    if (s->merging) return -1;
    memset(m, 0, sizeof *m);
    if (s->frozen.n == 0) {   /* else a failed merge left it: fold it in now */
        run_free(&s->frozen);
        s->frozen = s->active;
        memset(&s->active, 0, sizeof s->active);
    }
    int failed = 0;
    m->base = s->base;
    m->frozen = s->frozen;
    m->base.dead = copy_bits(&s->base, &failed);
    m->frozen.dead = copy_bits(&s->frozen, &failed);
    if (failed) { free(m->base.dead); free(m->frozen.dead); return -1; }
    m->extra = extra;
    s->merging = 1;
    s->nlog = 0;
    return 0;
}

/* The base's ``top`` table: one entry per value of the directory keys' top bits (about one
 * per directory entry, 0.25 byte a point), so a search starts among the few entries sharing
 * the key's top bits instead of halving the whole directory. */
static int
build_top(Run *r)
{
    size_t m = (r->n + DIR_STEP - 1) / DIR_STEP;
    int bits = 0;
    while (bits < 24 && ((size_t)1 << (bits + 1)) <= m) bits++;
    size_t size = ((size_t)1 << bits) + 1;
    r->top = malloc(size * sizeof *r->top);
    if (!r->top) return -1;
    r->topbits = bits;
    size_t j = 0;
    for (size_t p = 0; p < size; p++) {
        while (j < m && (bits ? r->dir[j] >> (64 - bits) : 0) < p) j++;
        r->top[p] = (uint32_t)j;
    }
    return 0;
}

/* The next live position of r at or after i. */
static size_t
next_live(const Run *r, size_t i)
{
    while (i < r->n && run_is_dead(r, i)) i++;
    return i;
}

void
merge_compute(int kind, Merge *m)
{
    const Run *in[3] = {&m->base, &m->frozen, m->extra};
    size_t at[3] = {0, 0, 0}, total = 0;
    uint64_t head[3];
    for (int k = 0; k < 3; k++) {
        if (!in[k]) continue;
        total += in[k]->n - in[k]->ndead;
        at[k] = next_live(in[k], 0);
        if (at[k] < in[k]->n) head[k] = run_key(in[k], kind, at[k]);
    }
    Run *out = &m->out;
    memset(out, 0, sizeof *out);
    size_t cap = total ? total : 1;
    out->lat = malloc(cap * sizeof *out->lat);
    out->lon = malloc(cap * sizeof *out->lon);
    out->id = malloc(cap * sizeof *out->id);
    out->dir = malloc(((cap + DIR_STEP - 1) / DIR_STEP) * sizeof *out->dir);
    if (!out->lat || !out->lon || !out->id || !out->dir) { run_free(out); m->status = -1; return; }
    for (size_t o = 0; o < total; o++) {
        int best = -1;
        for (int k = 0; k < 3; k++)
            if (in[k] && at[k] < in[k]->n && (best < 0 || head[k] < head[best])) best = k;
        const Run *r = in[best];
        size_t i = at[best];
        out->lat[o] = r->lat[i]; out->lon[o] = r->lon[i]; out->id[o] = r->id[i];
        if (o % DIR_STEP == 0) out->dir[o / DIR_STEP] = head[best];
        at[best] = next_live(r, i + 1);
        if (at[best] < r->n) head[best] = run_key(r, kind, at[best]);
    }
    out->n = out->cap = total;
    m->status = build_top(out);
    if (m->status == 0) m->status = idmap_build(&m->ids, out->id, total, &m->dup);
    if (m->status < 0) run_free(out);
}

/* After a failed merge: the frozen run's live points back into the active run (both small). */
static void
unfreeze(Store *s)
{
    Run *f = &s->frozen, *a = &s->active, both;
    memset(&both, 0, sizeof both);
    if (run_reserve(&both, f->n - f->ndead + a->n) < 0) { run_free(&both); return; }  /* stays frozen */
    size_t i = next_live(f, 0), j = 0;
    while (i < f->n || j < a->n) {
        int from_f = j >= a->n || (i < f->n && f->key[i] <= a->key[j]);
        const Run *r = from_f ? f : a;
        size_t k = from_f ? i : j;
        both.lat[both.n] = r->lat[k]; both.lon[both.n] = r->lon[k];
        both.id[both.n] = r->id[k]; both.key[both.n] = r->key[k];
        both.n++;
        if (from_f) i = next_live(f, i + 1);
        else j++;
    }
    run_free(f);
    run_free(a);
    *a = both;
}

void
store_merge_finish(Store *s, Merge *m)
{
    free(m->base.dead);
    free(m->frozen.dead);
    s->merging = 0;
    if (m->status < 0) {
        unfreeze(s);
        return;
    }
    run_free(&s->base);
    run_free(&s->frozen);
    free(s->ids.slot);
    s->base = m->out;
    s->ids = m->ids;
    for (size_t k = 0; k < s->nlog; k++) {
        size_t i = idmap_find(&s->ids, s->base.id, s->log[k]);
        if (i != SIZE_MAX && !run_is_dead(&s->base, i) && run_kill(&s->base, i) < 0) m->status = -1;
    }
    s->nlog = 0;
}
