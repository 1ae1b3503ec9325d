/* The paging cursor (location_api.cursor) made in C: BLAKE2b (RFC 7693) for the query
 * fingerprint and the keyed signature, then URL-safe base64 without padding. Held by the tests
 * to location_api.cursor._encode_cursor_python, which uses hashlib. */
#include "_csearch.h"

#include <stdint.h>
#include <string.h>

#define BLOCK 128
#define VERSION 2
#define FINGERPRINT 8
#define MAC 16

typedef struct {
    uint64_t h[8];
    uint64_t t;        /* bytes compressed so far (messages here are far below 2^64) */
    uint8_t buf[BLOCK];
    size_t fill;
    size_t out_len;
} Blake2b;

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t SIGMA[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define MIX(a, b, c, d, x, y)                 \
    do {                                      \
        v[a] = v[a] + v[b] + (x);             \
        v[d] = rotr(v[d] ^ v[a], 32);         \
        v[c] = v[c] + v[d];                   \
        v[b] = rotr(v[b] ^ v[c], 24);         \
        v[a] = v[a] + v[b] + (y);             \
        v[d] = rotr(v[d] ^ v[a], 16);         \
        v[c] = v[c] + v[d];                   \
        v[b] = rotr(v[b] ^ v[c], 63);         \
    } while (0)

static void compress(Blake2b *s, const uint8_t *block, int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++)
        m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= s->t;  /* the counter's high word stays 0 */
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const uint8_t *z = SIGMA[r % 10];
        MIX(0, 4, 8, 12, m[z[0]], m[z[1]]);
        MIX(1, 5, 9, 13, m[z[2]], m[z[3]]);
        MIX(2, 6, 10, 14, m[z[4]], m[z[5]]);
        MIX(3, 7, 11, 15, m[z[6]], m[z[7]]);
        MIX(0, 5, 10, 15, m[z[8]], m[z[9]]);
        MIX(1, 6, 11, 12, m[z[10]], m[z[11]]);
        MIX(2, 7, 8, 13, m[z[12]], m[z[13]]);
        MIX(3, 4, 9, 14, m[z[14]], m[z[15]]);
    }
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
}

static void update(Blake2b *s, const uint8_t *data, size_t len)
{
    while (len > 0) {
        if (s->fill == BLOCK) {  /* a full block is compressed only once more data follows */
            s->t += BLOCK;
            compress(s, s->buf, 0);
            s->fill = 0;
        }
        size_t take = BLOCK - s->fill < len ? BLOCK - s->fill : len;
        memcpy(s->buf + s->fill, data, take);
        s->fill += take;
        data += take;
        len -= take;
    }
}

/* out_len 1..64, key_len 0..64 (0: unkeyed) */
static void init(Blake2b *s, size_t out_len, const uint8_t *key, size_t key_len)
{
    memcpy(s->h, IV, sizeof IV);
    s->h[0] ^= 0x01010000ULL ^ ((uint64_t)key_len << 8) ^ (uint64_t)out_len;
    s->t = 0;
    s->fill = 0;
    s->out_len = out_len;
    if (key_len) {
        uint8_t block[BLOCK] = {0};
        memcpy(block, key, key_len);
        update(s, block, BLOCK);
    }
}

static void finish(Blake2b *s, uint8_t *out)
{
    s->t += s->fill;
    memset(s->buf + s->fill, 0, BLOCK - s->fill);
    compress(s, s->buf, 1);
    for (size_t i = 0; i < s->out_len; i++)
        out[i] = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
}

/* The signing state after the key's block: the key is the same for every cursor a process
 * makes, so its block is compressed once, not per cursor (the GIL serialises callers). */
static struct {
    int ready;
    size_t key_len;
    uint8_t key[64];
    Blake2b state;
} last_key;

static void keyed(Blake2b *s, const uint8_t *key, size_t key_len)
{
    if (!last_key.ready || last_key.key_len != key_len || memcmp(last_key.key, key, key_len) != 0) {
        init(&last_key.state, MAC, key, key_len);
        if (last_key.state.fill == BLOCK) {  /* compress the key block now: data always follows */
            last_key.state.t += BLOCK;
            compress(&last_key.state, last_key.state.buf, 0);
            last_key.state.fill = 0;
        }
        memcpy(last_key.key, key, key_len);
        last_key.key_len = key_len;
        last_key.ready = 1;
    }
    *s = last_key.state;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_double(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put64(p, bits);
}

#define QUERY_BYTES 25                       /* "<ddd?" */
#define PAYLOAD (1 + FINGERPRINT + 8 + 8 + 8)  /* "<B8sddq" */
#define RAW (PAYLOAD + MAC)                  /* 49 bytes: 66 base64 characters, no padding */
_Static_assert((RAW + 2) / 3 * 4 <= GEO_CURSOR_CHARS, "GEO_CURSOR_CHARS holds a cursor");

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static Py_ssize_t base64url(const uint8_t *in, size_t len, char *out)
{
    Py_ssize_t n = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[n++] = B64URL[w >> 18];
        out[n++] = B64URL[(w >> 12) & 63];
        out[n++] = B64URL[(w >> 6) & 63];
        out[n++] = B64URL[w & 63];
    }
    if (len - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[n++] = B64URL[w >> 18];
        out[n++] = B64URL[(w >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[n++] = B64URL[w >> 18];
        out[n++] = B64URL[(w >> 12) & 63];
        out[n++] = B64URL[(w >> 6) & 63];
    }
    return n;
}

Py_ssize_t
geo_cursor_text(const char *key, Py_ssize_t key_len, double lat, double lon, double qradius, int expand,
                const char *category, Py_ssize_t category_len, double radius, double distance, long long id,
                char *text)
{
    uint8_t query[QUERY_BYTES];
    put_double(query, lat);
    put_double(query + 8, lon);
    put_double(query + 16, qradius);
    query[24] = expand ? 1 : 0;

    uint8_t raw[RAW];
    Blake2b s;
    init(&s, FINGERPRINT, NULL, 0);
    update(&s, query, QUERY_BYTES);
    if (category != NULL) {  /* marked, so that no category and an empty one differ */
        static const uint8_t mark = 1;
        update(&s, &mark, 1);
        update(&s, (const uint8_t *)category, (size_t)category_len);
    }
    raw[0] = VERSION;
    finish(&s, raw + 1);
    put_double(raw + 1 + FINGERPRINT, radius);
    put_double(raw + 1 + FINGERPRINT + 8, distance);
    put64(raw + 1 + FINGERPRINT + 16, (uint64_t)id);

    keyed(&s, (const uint8_t *)key, (size_t)key_len);
    update(&s, raw, PAYLOAD);
    finish(&s, raw + PAYLOAD);
    return base64url(raw, RAW, text);
}

/* make_cursor(key, latitude, longitude, query_radius_m, expand, category, radius_m, distance_m,
 * business_id) -> str */
PyObject *geo_make_cursor(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "make_cursor takes 9 arguments");
        return NULL;
    }
    char *key;
    Py_ssize_t key_len;
    if (PyBytes_AsStringAndSize(args[0], &key, &key_len) < 0)
        return NULL;
    if (key_len > GEO_CURSOR_MAX_KEY) {
        PyErr_SetString(PyExc_ValueError, "the key must be at most 64 bytes");
        return NULL;
    }
    double lat = PyFloat_AsDouble(args[1]), lon = PyFloat_AsDouble(args[2]), qradius = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred())
        return NULL;
    int expand = PyObject_IsTrue(args[4]);
    if (expand < 0)
        return NULL;
    const char *category = NULL;
    Py_ssize_t category_len = 0;
    if (args[5] != Py_None) {
        category = PyUnicode_AsUTF8AndSize(args[5], &category_len);
        if (category == NULL)
            return NULL;
    }
    double radius = PyFloat_AsDouble(args[6]), distance = PyFloat_AsDouble(args[7]);
    if (PyErr_Occurred())
        return NULL;
    long long id = PyLong_AsLongLong(args[8]);
    if (id == -1 && PyErr_Occurred())
        return NULL;
    char text[GEO_CURSOR_CHARS];
    Py_ssize_t n = geo_cursor_text(key, key_len, lat, lon, qradius, expand, category, category_len, radius, distance,
                                   id, text);
    return PyUnicode_FromStringAndSize(text, n);
}
