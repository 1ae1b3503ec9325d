/* The 64-bit keys points are sorted by, and the geohash grid's rows and columns.
 *
 * A Z-order (geohash) key interleaves a point's grid column (32 bits of longitude) and row
 * (32 bits of latitude), column bit first, exactly as geohash does: the cell of ``b`` bits that
 * holds a point is the key's top ``b`` bits. Queries find the rows and columns of their box
 * with the same grid_row/grid_col, so a point and the box around it agree on every cell edge.
 * Latitude 90 falls in the top row, longitude 180 in the last column and -180 in the first
 * (the query boxes cover both spellings of the antimeridian). */
#ifndef GEO_KEYS_H
#define GEO_KEYS_H
#include <stdint.h>

static inline uint32_t
grid_cell(double v, double lo, double span)
{
    double t = (v - lo) * (4294967296.0 / span);
    if (!(t > 0.0)) return 0;
    if (t >= 4294967295.0) return 0xFFFFFFFFu;
    return (uint32_t)t;
}

static inline uint32_t grid_row(double lat) { return grid_cell(lat, -90.0, 180.0); }
static inline uint32_t grid_col(double lon) { return grid_cell(lon, -180.0, 360.0); }

/* Bit i of x at bit 2i. */
static inline uint64_t
spread32(uint32_t x)
{
    uint64_t v = x;
    v = (v | (v << 16)) & 0x0000FFFF0000FFFFULL;
    v = (v | (v << 8)) & 0x00FF00FF00FF00FFULL;
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0FULL;
    v = (v | (v << 2)) & 0x3333333333333333ULL;
    v = (v | (v << 1)) & 0x5555555555555555ULL;
    return v;
}

static inline uint64_t
zorder_key(double lat, double lon)
{
    return (spread32(grid_col(lon)) << 1) | spread32(grid_row(lat));
}

/* The even bits of v (bit 2i at bit i): the inverse of spread32. */
static inline uint32_t
compact32(uint64_t v)
{
    v &= 0x5555555555555555ULL;
    v = (v | (v >> 1)) & 0x3333333333333333ULL;
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FFULL;
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFULL;
    v = (v | (v >> 16)) & 0x00000000FFFFFFFFULL;
    return (uint32_t)v;
}

/* zorder_key(lat, lon) < x, without interleaving the point's row and column: given x's row
 * (compact32(x)) and column (compact32(x >> 1)), the keys first differ at the highest bit
 * where the columns (key bit 2i + 1) or the rows (key bit 2i) differ, the column's when its
 * highest differing bit is at least the row's. */
static inline int
zorder_below(double lat, double lon, uint32_t xrow, uint32_t xcol)
{
    uint32_t row = grid_row(lat), col = grid_col(lon);
    uint32_t dc = col ^ xcol, dr = row ^ xrow;
    if (dc < dr && dc < (dc ^ dr)) return row < xrow;   /* the row's highest differing bit is higher */
    return col < xcol;                                  /* equal keys: neither is below */
}

/* The code of the cell of ``bits`` bits (1..64) at grid row ``row`` and column ``col`` of
 * that level (row: bits/2 bits, col: bits - bits/2 bits). */
static inline uint64_t
zorder_code(int bits, uint32_t row, uint32_t col)
{
    return bits & 1 ? spread32(col) | (spread32(row) << 1) : (spread32(col) << 1) | spread32(row);
}
#endif
