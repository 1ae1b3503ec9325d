/* Query plans: the key ranges of the store a radius query reads, one planner per decomposition.
 *
 * Every planner returns a superset: each point within the radius has its key inside one of
 * the ranges, because the ranges cover the cap's bounding box (or, for S2, a covering of the
 * cap), both padded by geo_index.distance's safety margin. The scan then decides exactly. */
#ifndef GEO_PLAN_H
#define GEO_PLAN_H
#include "_store.h"
#include <stddef.h>
#include <stdint.h>

/* Inclusive key ranges. For the Z-order planners each is a *node*: the geohash cell of
 * ``bits`` bits at grid ``row`` and ``col`` (a latitude/longitude rectangle, which the scan
 * bounds and may split); ``bits`` -1 marks a plain range (S2, or merged). */
typedef struct {
    uint64_t *lo, *hi;
    int8_t *bits;
    uint32_t *row, *col;
    size_t n, cap;
} Ranges;

/* The bounding box of a padded cap, as geo_index.distance.cap_bounds computes it. */
typedef struct {
    double lat_lo, lat_hi;
    int nlon;              /* 0: every longitude; else 1 or 2 ranges (split at the antimeridian) */
    double lon_lo[2], lon_hi[2];
} Box;

#define MAX_GEOHASH_LEVELS 32

typedef struct {
    int kind;                        /* PLAN_GEOHASH, PLAN_QUADTREE or PLAN_S2 */
    int nlevels;                     /* geohash: levels in bits, finest first */
    int levels[MAX_GEOHASH_LEVELS];
    int max_cells;                   /* geohash: cells a query may read; s2: covering size */
    int leaf_capacity;               /* quadtree: a node holding more points is split */
    int max_depth;                   /* quadtree: deepest split, 1..32 */
} Plan;

enum { PLAN_GEOHASH = 0, PLAN_QUADTREE = 1, PLAN_S2 = 2 };

double padded_angle_rad(double radius_m);
void cap_box(double lat, double lon, double radius_m, Box *box);
void ranges_free(Ranges *r);
/* The ranges of a query: 0, or -1 out of memory. */
int plan_ranges(const Plan *p, const Store *s, double lat, double lon, double radius_m, Ranges *out);
/* Sort by start and merge touching ranges (the result's nodes become plain ranges). */
void ranges_normalize(Ranges *r);
int ranges_add(Ranges *r, uint64_t lo, uint64_t hi, int bits, uint32_t row, uint32_t col);
/* Geohash only: the level a query reads (bits) and how many cells. */
void plan_geohash_choice(const Plan *p, double lat, double lon, double radius_m, int *bits, size_t *cells);
#endif
