/* Exact distances and the page's cut (see _exact.h). */
#include "_exact.h"
#include <stdlib.h>

double
haversine(double lat1, double lon1, double lat2, double lon2)
{
    if (lon1 == -180.0) lon1 = 180.0;
    if (lon2 == -180.0) lon2 = 180.0;
    double phi1 = lat1 * RAD, phi2 = lat2 * RAD;
    double s_phi = sin((phi2 - phi1) * 0.5);
    double s_lam = sin((lon2 * RAD - lon1 * RAD) * 0.5);
    double a = s_phi * s_phi + cos(phi1) * cos(phi2) * s_lam * s_lam;
    if (a > 1.0) a = 1.0;
    return TWO_R * asin(sqrt(a));
}

static int
hit_order(const void *pa, const void *pb)
{
    const Cand *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The k-th smallest (0-based) of v[0..n), reordering v. */
static double
select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        for (;;) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i >= j) break;
            double t = v[i]; v[i] = v[j]; v[j] = t;
            i++; j--;
        }
        if (k <= j) hi = j;
        else lo = j + 1;
    }
    return v[k];
}

int
cut_page(const Q *q, Cand *c, size_t n, long limit, QPage *out)
{
    if (limit >= 0 && n > (size_t)limit && limit > 0) {
        double hi_buf[STACK_CANDS];
        double *hi = n <= STACK_CANDS ? hi_buf : malloc(n * sizeof *hi);
        if (!hi) return -1;
        for (size_t i = 0; i < n; i++) hi[i] = c[i].hi;
        double cut = select_kth(hi, n, (size_t)limit - 1) * (1.0 + BAND);
        if (hi != hi_buf) free(hi);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (c[i].lo <= cut) c[k++] = c[i];
        n = k;
    }
    for (size_t i = 0; i < n; i++) make_exact(q, &c[i]);
    if (n <= 32) {   /* a page's few candidates: insertion sort, no allocation */
        for (size_t i = 1; i < n; i++) {
            Cand x = c[i];
            size_t j = i;
            for (; j > 0 && hit_order(&c[j - 1], &x) > 0; j--) c[j] = c[j - 1];
            c[j] = x;
        }
    } else {
        qsort(c, n, sizeof *c, hit_order);
    }
    size_t count = limit >= 0 && n > (size_t)limit ? (size_t)limit : n;
    out->hits = malloc((count ? count : 1) * sizeof *out->hits);
    if (!out->hits) return -1;
    for (size_t i = 0; i < count; i++) { out->hits[i].d = c[i].d; out->hits[i].id = c[i].id; }
    out->count = count;
    return 0;
}
