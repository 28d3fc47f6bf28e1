/*
 * gguf.c - GGUF (versions 2 and 3) reader and writer.
 *
 * The reader walks a complete file image (memory-mapped by file.c) with a bounds-checked cursor:
 * every count is checked against the bytes that remain before anything is allocated, so a hostile
 * file can make us allocate at most a small multiple of its own size. Tensor data is not copied:
 * each tensor points into the image. Every error names what is wrong and the byte offset.
 *
 * Loom's own keys (see docs/formats.md): tensor types GGUF has no number for (u8, i4x2) are
 * stored as GGUF I8 rows of bytes plus a string key "loom.tensor_type.<tensor name>" naming the
 * Loom type; the reader restores the type and the element count of dimension 0.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAX_NAME 64        /* bytes of a tensor name */
#define GGUF_MAX_DEPTH 8        /* nesting of arrays */
#define GGUF_DEFAULT_ALIGN 32
#define LOOM_TYPE_KEY "loom.tensor_type."

/* ============================================================================================ */
/* Type numbers                                                                                 */
/* ============================================================================================ */

static const char *const gguf_type_names[] = {
    "f32",  "f16",  "q4_0", "q4_1", "q4_2", "q4_3", "q5_0", "q5_1", "q8_0", "q8_1", "q2_k",
    "q3_k", "q4_k", "q5_k", "q6_k", "q8_k", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
    "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m", "bf16", "q4_0_4_4", "q4_0_4_8", "q4_0_8_8",
    "tq1_0", "tq2_0", "iq4_nl_4_4", "iq4_nl_4_8", "iq4_nl_8_8", "mxfp4"};
#define GGUF_N_TYPE_NAMES (sizeof gguf_type_names / sizeof gguf_type_names[0])

uint32_t loom_gguf_type_to_loom(uint32_t g) {
    switch (g) {
    case 0: return LOOM_TYPE_F32;
    case 1: return LOOM_TYPE_F16;
    case 2: return LOOM_TYPE_Q4_0;
    case 3: return LOOM_TYPE_Q4_1;
    case 8: return LOOM_TYPE_Q8_0;
    case 12: return LOOM_TYPE_Q4_K;
    case 14: return LOOM_TYPE_Q6_K;
    case 24: return LOOM_TYPE_I8;
    case 25: return LOOM_TYPE_I16;
    case 26: return LOOM_TYPE_I32;
    case 27: return LOOM_TYPE_I64;
    case 28: return LOOM_TYPE_F64;
    case 30: return LOOM_TYPE_BF16;
    default: return UINT32_MAX;
    }
}

uint32_t loom_gguf_type_from_loom(uint32_t t) {
    switch (t) {
    case LOOM_TYPE_F32: return 0;
    case LOOM_TYPE_F16: return 1;
    case LOOM_TYPE_Q4_0: return 2;
    case LOOM_TYPE_Q4_1: return 3;
    case LOOM_TYPE_Q8_0: return 8;
    case LOOM_TYPE_Q4_K: return 12;
    case LOOM_TYPE_Q6_K: return 14;
    case LOOM_TYPE_I8: return 24;
    case LOOM_TYPE_I16: return 25;
    case LOOM_TYPE_I32: return 26;
    case LOOM_TYPE_I64: return 27;
    case LOOM_TYPE_F64: return 28;
    case LOOM_TYPE_BF16: return 30;
    default: return UINT32_MAX;
    }
}

/* ============================================================================================ */
/* Bounds-checked cursor                                                                        */
/* ============================================================================================ */

typedef struct cursor {
    const uint8_t *p;
    uint64_t size, pos;
    char *err;
    size_t err_size;
    loom_status status;
} cursor;

static bool fail(cursor *c, loom_status status, const char *fmt, ...) LOOM_PRINTF(3, 4);
static bool fail(cursor *c, loom_status status, const char *fmt, ...) {
    if (c->status) return false; /* keep the first message */
    c->status = status;
    if (c->err && c->err_size) {
        int n = snprintf(c->err, c->err_size, "gguf: ");
        if (n < 0 || (size_t)n >= c->err_size) n = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

static bool need(cursor *c, uint64_t n, const char *what) {
    if (n > remaining(c))
        return fail(c, LOOM_ERR_FORMAT, "truncated file: %s at byte %" PRIu64 " needs %" PRIu64 " bytes, %" PRIu64
                    " left", what, c->pos, n, remaining(c));
    return true;
}

static bool rd_u32(cursor *c, const char *what, uint32_t *out) {
    if (!need(c, 4, what)) return false;
    const uint8_t *p = c->p + c->pos;
    *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    c->pos += 4;
    return true;
}

static bool rd_u64(cursor *c, const char *what, uint64_t *out) {
    if (!need(c, 8, what)) return false;
    const uint8_t *p = c->p + c->pos;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    *out = v;
    c->pos += 8;
    return true;
}

/* A GGUF string: u64 length then bytes. Returns a pointer into the image (not terminated). */
static bool rd_str(cursor *c, const char *what, uint64_t max_len, const char **s, uint64_t *len) {
    uint64_t at = c->pos, n;
    if (!rd_u64(c, what, &n)) return false;
    if (n > max_len)
        return fail(c, LOOM_ERR_FORMAT, "%s at byte %" PRIu64 ": length %" PRIu64 " exceeds the limit of %" PRIu64,
                    what, at, n, max_len);
    if (n > remaining(c))
        return fail(c, LOOM_ERR_FORMAT, "%s at byte %" PRIu64 ": length %" PRIu64 " runs past the end of the file (%"
                    PRIu64 " bytes left)", what, at, n, remaining(c));
    *s = (const char *)(c->p + c->pos);
    *len = n;
    c->pos += n;
    return true;
}

static char *dup_n(const char *s, uint64_t n) {
    char *d = malloc((size_t)n + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)n);
    d[n] = 0;
    return d;
}

/* ============================================================================================ */
/* Metadata values                                                                              */
/* ============================================================================================ */

/* Bytes of a scalar in the file (0 for strings and arrays). */
static uint64_t scalar_file_size(uint32_t type) {
    switch (type) {
    case LOOM_META_U8:
    case LOOM_META_I8:
    case LOOM_META_BOOL: return 1;
    case LOOM_META_U16:
    case LOOM_META_I16: return 2;
    case LOOM_META_U32:
    case LOOM_META_I32:
    case LOOM_META_F32: return 4;
    case LOOM_META_U64:
    case LOOM_META_I64:
    case LOOM_META_F64: return 8;
    default: return 0;
    }
}

/* Bytes of one element of an array in memory. */
static size_t elem_mem_size(uint32_t type) {
    switch (type) {
    case LOOM_META_BOOL: return sizeof(bool);
    case LOOM_META_F32: return sizeof(float);
    case LOOM_META_F64: return sizeof(double);
    case LOOM_META_STRING: return sizeof(char *);
    case LOOM_META_ARRAY: return sizeof(loom_meta);
    default: return (size_t)scalar_file_size(type);
    }
}

static uint64_t le_bits(const uint8_t *p, uint64_t n) {
    uint64_t v = 0;
    for (uint64_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

/* Read a scalar of `type` (size checked by the caller) into a loom_meta value. */
static void scalar_to_meta(uint32_t type, const uint8_t *p, loom_meta *m) {
    uint64_t bits = le_bits(p, scalar_file_size(type));
    switch (type) {
    case LOOM_META_U8:
    case LOOM_META_U16:
    case LOOM_META_U32:
    case LOOM_META_U64: m->v.u64 = bits; break;
    case LOOM_META_I8: m->v.i64 = (int8_t)(uint8_t)bits; break;
    case LOOM_META_I16: m->v.i64 = (int16_t)(uint16_t)bits; break;
    case LOOM_META_I32: m->v.i64 = (int32_t)(uint32_t)bits; break;
    case LOOM_META_I64: m->v.i64 = (int64_t)bits; break;
    case LOOM_META_F32: {
        uint32_t u = (uint32_t)bits;
        float f;
        memcpy(&f, &u, 4);
        m->v.f64 = (double)f;
        break;
    }
    case LOOM_META_F64: memcpy(&m->v.f64, &bits, 8); break;
    case LOOM_META_BOOL: m->v.b = bits != 0; break;
    default: break;
    }
}

/* Store a scalar from the file into an array slot of its C type. */
static void scalar_to_slot(uint32_t type, const uint8_t *p, uint8_t *slot) {
    if (type == LOOM_META_BOOL) {
        *(bool *)(void *)slot = p[0] != 0;
    } else {
        memcpy(slot, p, (size_t)scalar_file_size(type)); /* little-endian host assumed */
    }
}

static bool read_array(cursor *c, loom_meta *m, int depth, const char *key);

static bool read_value(cursor *c, uint32_t type, loom_meta *m, int depth, const char *key) {
    m->type = type;
    if (type == LOOM_META_STRING) {
        const char *s;
        uint64_t n;
        if (!rd_str(c, "string value", UINT64_MAX, &s, &n)) return false;
        if (!(m->v.str = dup_n(s, n))) return fail(c, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
        return true;
    }
    if (type == LOOM_META_ARRAY) return read_array(c, m, depth + 1, key);
    uint64_t sz = scalar_file_size(type);
    if (!sz)
        return fail(c, LOOM_ERR_FORMAT, "key '%s': unknown value type %" PRIu32 " at byte %" PRIu64, key, type,
                    c->pos - 4);
    if (!need(c, sz, "metadata value")) return false;
    scalar_to_meta(type, c->p + c->pos, m);
    c->pos += sz;
    return true;
}

static bool read_array(cursor *c, loom_meta *m, int depth, const char *key) {
    uint64_t at = c->pos;
    m->type = LOOM_META_ARRAY;
    if (depth > GGUF_MAX_DEPTH)
        return fail(c, LOOM_ERR_FORMAT, "key '%s': arrays nested deeper than %d at byte %" PRIu64, key, GGUF_MAX_DEPTH,
                    at);
    uint32_t et;
    uint64_t count;
    if (!rd_u32(c, "array element type", &et) || !rd_u64(c, "array length", &count)) return false;
    uint64_t min_size = et == LOOM_META_STRING ? 8 : et == LOOM_META_ARRAY ? 12 : scalar_file_size(et);
    if (!min_size)
        return fail(c, LOOM_ERR_FORMAT, "key '%s': unknown array element type %" PRIu32 " at byte %" PRIu64, key, et,
                    at);
    if (count > remaining(c) / min_size)
        return fail(c, LOOM_ERR_FORMAT, "key '%s': array of %" PRIu64 " %s elements at byte %" PRIu64
                    " cannot fit in the %" PRIu64 " bytes left", key, count, loom_meta_type_name(et), at, remaining(c));
    m->elem_type = et;
    size_t es = elem_mem_size(et);
    if (et == LOOM_META_STRING) {
        /* pass 1: validate lengths and size the block; pass 2: copy */
        uint64_t start = c->pos, total = 0;
        for (uint64_t i = 0; i < count; i++) {
            const char *s;
            uint64_t n;
            if (!rd_str(c, "array string", UINT64_MAX, &s, &n)) return false;
            total += n + 1;
        }
        c->pos = start;
        char **arr = malloc((size_t)count * sizeof(char *) + (size_t)total + 1);
        if (!arr) return fail(c, LOOM_ERR_OUT_OF_MEMORY, "out of memory for array '%s'", key);
        char *bytes = (char *)(arr + count);
        for (uint64_t i = 0; i < count; i++) {
            const char *s;
            uint64_t n;
            rd_str(c, "array string", UINT64_MAX, &s, &n); /* validated above */
            memcpy(bytes, s, (size_t)n);
            bytes[n] = 0;
            arr[i] = bytes;
            bytes += n + 1;
        }
        m->v.arr = arr;
        m->count = count;
        return true;
    }
    void *arr = calloc(count ? (size_t)count : 1, es);
    if (!arr) return fail(c, LOOM_ERR_OUT_OF_MEMORY, "out of memory for array '%s'", key);
    m->v.arr = arr;
    if (et == LOOM_META_ARRAY) {
        loom_meta *sub = arr;
        for (uint64_t i = 0; i < count; i++) {
            m->count = i + 1; /* so that clearing frees what was read */
            if (!read_array(c, &sub[i], depth + 1, key)) return false;
        }
        m->count = count;
        return true;
    }
    uint64_t fs = scalar_file_size(et);
    const uint8_t *src = c->p + c->pos;
    for (uint64_t i = 0; i < count; i++) scalar_to_slot(et, src + i * fs, (uint8_t *)arr + i * es);
    c->pos += count * fs;
    m->count = count;
    return true;
}

/* ============================================================================================ */
/* Reader                                                                                       */
/* ============================================================================================ */

typedef struct span {
    uint64_t begin, end;
    uint32_t index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static bool has_nul(const char *s, uint64_t n) { return memchr(s, 0, (size_t)n) != NULL; }

/* A Loom type override from "loom.tensor_type.<name>", or UINT32_MAX when none. */
static uint32_t loom_type_override(loom_file *f, const char *name, cursor *c) {
    char key[sizeof LOOM_TYPE_KEY + GGUF_MAX_NAME + 1];
    snprintf(key, sizeof key, LOOM_TYPE_KEY "%s", name);
    const char *tn;
    loom_status s = loom_file_meta_string(f, key, &tn);
    if (s == LOOM_ERR_NOT_FOUND) return UINT32_MAX;
    if (s) {
        fail(c, LOOM_ERR_FORMAT, "key '%s' is not a string", key);
        return UINT32_MAX - 1;
    }
    for (uint32_t t = 0; t < LOOM_TYPE_COUNT; t++) {
        const loom_type_traits *tr = loom_type_get_traits(t);
        if (tr && !strcmp(tr->name, tn)) return t;
    }
    fail(c, LOOM_ERR_FORMAT, "key '%s' names an unknown type '%s'", key, tn);
    return UINT32_MAX - 1;
}

static bool read_tensor_info(cursor *c, loom_file *f, uint32_t index, uint32_t alignment, uint64_t *offset_out) {
    uint64_t at = c->pos;
    const char *s;
    uint64_t n;
    char what[64];
    snprintf(what, sizeof what, "tensor %" PRIu32 " name", index);
    if (!rd_str(c, what, GGUF_MAX_NAME, &s, &n)) return false;
    if (n == 0) return fail(c, LOOM_ERR_FORMAT, "tensor %" PRIu32 " at byte %" PRIu64 " has an empty name", index, at);
    if (has_nul(s, n))
        return fail(c, LOOM_ERR_FORMAT, "tensor %" PRIu32 " at byte %" PRIu64 ": name contains a NUL byte", index, at);
    loom_file_tensor t;
    memset(&t, 0, sizeof t);
    char name[GGUF_MAX_NAME + 1];
    memcpy(name, s, (size_t)n);
    name[n] = 0;
    uint64_t dims_at = c->pos;
    if (!rd_u32(c, "tensor dimension count", &t.n_dims)) return false;
    if (t.n_dims > 4)
        return fail(c, LOOM_ERR_FORMAT, "tensor '%s': %" PRIu32 " dimensions at byte %" PRIu64 " (at most 4)", name,
                    t.n_dims, dims_at);
    int64_t nelem = 1;
    for (uint32_t d = 0; d < 4; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < t.n_dims; d++) {
        uint64_t v, vat = c->pos;
        if (!rd_u64(c, "tensor dimension", &v)) return false;
        if (v > (uint64_t)INT64_MAX)
            return fail(c, LOOM_ERR_FORMAT, "tensor '%s': dimension %" PRIu32 " = %" PRIu64 " at byte %" PRIu64
                        " is negative or absurd", name, d, v, vat);
        t.ne[d] = (int64_t)v;
        if (v && (uint64_t)nelem > (uint64_t)INT64_MAX / v)
            return fail(c, LOOM_ERR_FORMAT, "tensor '%s': the product of its dimensions overflows (dimension %" PRIu32
                        " at byte %" PRIu64 ")", name, d, vat);
        nelem *= (int64_t)v;
    }
    uint32_t gtype;
    uint64_t type_at = c->pos;
    if (!rd_u32(c, "tensor type", &gtype)) return false;
    uint64_t off_at = c->pos;
    if (!rd_u64(c, "tensor data offset", &t.offset)) return false;
    t.type = loom_gguf_type_to_loom(gtype);
    if (t.type == UINT32_MAX) {
        if (gtype < GGUF_N_TYPE_NAMES)
            return fail(c, LOOM_ERR_UNSUPPORTED, "tensor '%s': type %s (GGUF type %" PRIu32 ", byte %" PRIu64
                        ") is not supported", name, gguf_type_names[gtype], gtype, type_at);
        return fail(c, LOOM_ERR_FORMAT, "tensor '%s': unknown type %" PRIu32 " at byte %" PRIu64, name, gtype,
                    type_at);
    }
    uint32_t over = loom_type_override(f, name, c);
    if (over == UINT32_MAX - 1) return false;
    if (over != UINT32_MAX) {
        const loom_type_traits *tr = loom_type_get_traits(over);
        if (t.type != LOOM_TYPE_I8 || t.n_dims < 1)
            return fail(c, LOOM_ERR_FORMAT, "tensor '%s': a Loom type override needs GGUF type i8 with dimensions",
                        name);
        /* stored as rows of bytes: ne[0] counts bytes */
        if (t.ne[0] % tr->block_bytes || t.ne[0] / tr->block_bytes > INT64_MAX / tr->block_size)
            return fail(c, LOOM_ERR_FORMAT, "tensor '%s': %" PRId64 " bytes per row do not fit type %s", name, t.ne[0],
                        tr->name);
        t.ne[0] = t.ne[0] / tr->block_bytes * tr->block_size;
        t.type = over;
    }
    const loom_type_traits *tr = loom_type_get_traits(t.type);
    if (t.ne[0] % tr->block_size)
        return fail(c, LOOM_ERR_FORMAT, "tensor '%s': dimension 0 (%" PRId64 ") at byte %" PRIu64
                    " is not a multiple of the %s block size %" PRIu32, name, t.ne[0], dims_at + 4, tr->name,
                    tr->block_size);
    if ((uint64_t)t.ne[0] / tr->block_size > UINT64_MAX / tr->block_bytes)
        return fail(c, LOOM_ERR_FORMAT, "tensor '%s': byte size overflows", name);
    uint64_t row = loom_type_row_bytes(t.type, t.ne[0]);
    uint64_t rows = 1;
    for (uint32_t d = 1; d < 4; d++) rows *= (uint64_t)t.ne[d]; /* bounded by nelem: no overflow */
    if (rows && row > UINT64_MAX / rows)
        return fail(c, LOOM_ERR_FORMAT, "tensor '%s': byte size overflows", name);
    t.size = row * rows;
    if (t.offset % alignment)
        return fail(c, LOOM_ERR_FORMAT, "tensor '%s': data offset %" PRIu64 " at byte %" PRIu64
                    " is not a multiple of the alignment %" PRIu32, name, t.offset, off_at, alignment);
    *offset_out = at;
    if (!(t.name = loom_strdup(name))) return fail(c, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    if (loom_file_push_tensor(f, &t)) return fail(c, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    return true;
}

loom_status loom_gguf_parse(loom_file *f, const uint8_t *image, uint64_t size, char *err, size_t err_size) {
    cursor c = {image, size, 0, err, err_size, LOOM_OK};
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    if (!need(&c, 4, "magic")) return c.status;
    if (memcmp(image, "GGUF", 4)) {
        fail(&c, LOOM_ERR_FORMAT, "bad magic at byte 0 (not a GGUF file)");
        return c.status;
    }
    rd_u32(&c, "magic", &magic);
    if (!rd_u32(&c, "version", &version)) return c.status;
    if (version == 0x02000000u || version == 0x03000000u) {
        fail(&c, LOOM_ERR_UNSUPPORTED, "big-endian GGUF files are not supported (version field at byte 4)");
        return c.status;
    }
    if (version != 2 && version != 3) {
        fail(&c, version == 1 ? LOOM_ERR_UNSUPPORTED : LOOM_ERR_FORMAT,
             "version %" PRIu32 " at byte 4 is not supported (only 2 and 3)", version);
        return c.status;
    }
    if (!rd_u64(&c, "tensor count", &n_tensors) || !rd_u64(&c, "metadata count", &n_kv)) return c.status;
    /* smallest metadata entry: 8 (key length) + 1 (key) + 4 (type) + 1 (u8); smallest tensor
     * info: 8 + 1 + 4 (n_dims 0) + 4 (type) + 8 (offset) */
    if (n_kv > remaining(&c) / 14) {
        fail(&c, LOOM_ERR_FORMAT, "metadata count %" PRIu64 " at byte 16 cannot fit in a %" PRIu64 "-byte file", n_kv,
             size);
        return c.status;
    }
    if (n_tensors > remaining(&c) / 25 || n_tensors > UINT32_MAX / 2) {
        fail(&c, LOOM_ERR_FORMAT, "tensor count %" PRIu64 " at byte 8 cannot fit in a %" PRIu64 "-byte file",
             n_tensors, size);
        return c.status;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t at = c.pos;
        const char *k;
        uint64_t kn;
        if (!rd_str(&c, "metadata key", 65535, &k, &kn)) return c.status;
        if (kn == 0 || has_nul(k, kn)) {
            fail(&c, LOOM_ERR_FORMAT, "metadata entry %" PRIu64 " at byte %" PRIu64 ": empty key or NUL in key", i,
                 at);
            return c.status;
        }
        loom_meta m;
        memset(&m, 0, sizeof m);
        if (!(m.key = dup_n(k, kn))) {
            fail(&c, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
            return c.status;
        }
        uint32_t type;
        if (!rd_u32(&c, "metadata value type", &type) || !read_value(&c, type, &m, 0, m.key) ||
            loom_file_push_meta(f, &m)) {
            loom_meta_clear(&m);
            if (!c.status) fail(&c, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
            return c.status;
        }
    }
    /* Duplicate keys, then alignment. */
    loom_status st = loom_file_finish(f, err, err_size);
    if (st) return st;
    uint32_t alignment = GGUF_DEFAULT_ALIGN;
    const loom_meta *am = loom_file_meta_find(f, "general.alignment");
    if (am) {
        if (am->type != LOOM_META_U32 || am->v.u64 == 0 || (am->v.u64 & (am->v.u64 - 1))) {
            fail(&c, LOOM_ERR_FORMAT, "general.alignment must be a u32 power of two");
            return c.status;
        }
        alignment = (uint32_t)am->v.u64;
    }
    uint64_t *info_at = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *info_at);
    if (!info_at) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (!read_tensor_info(&c, f, (uint32_t)i, alignment, &info_at[i])) {
            free(info_at);
            return c.status;
        }
    }
    uint64_t data_start = c.pos + (alignment - c.pos % alignment) % alignment;
    if (n_tensors && data_start > size) {
        free(info_at);
        fail(&c, LOOM_ERR_FORMAT, "truncated file: the data section starts at byte %" PRIu64 ", past the end (%" PRIu64
             " bytes)", data_start, size);
        return c.status;
    }
    uint64_t data_size = data_start <= size ? size - data_start : 0;
    span *spans = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *spans);
    if (!spans) {
        free(info_at);
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    uint32_t n_spans = 0;
    uint32_t first = loom_file_tensor_count(f) - (uint32_t)n_tensors;
    for (uint32_t i = 0; i < (uint32_t)n_tensors; i++) {
        loom_file_tensor *t = loom_file_tensor_mut(f, first + i);
        if (t->offset > data_size || t->size > data_size - t->offset) {
            fail(&c, LOOM_ERR_FORMAT, "tensor '%s' (info at byte %" PRIu64 "): data [%" PRIu64 ", %" PRIu64
                 ") lies outside the data section (%" PRIu64 " bytes from byte %" PRIu64 ")", t->name, info_at[i],
                 t->offset, t->offset + t->size, data_size, data_start);
            break;
        }
        t->data = image + data_start + t->offset;
        t->offset += data_start;
        if (t->size) spans[n_spans++] = (span){t->offset, t->offset + t->size, i};
    }
    if (!c.status && n_spans > 1) {
        qsort(spans, n_spans, sizeof *spans, span_cmp);
        for (uint32_t i = 1; i < n_spans; i++) {
            if (spans[i].begin < spans[i - 1].end) {
                const loom_file_tensor *a = loom_file_tensor_at(f, first + spans[i - 1].index);
                const loom_file_tensor *b = loom_file_tensor_at(f, first + spans[i].index);
                fail(&c, LOOM_ERR_FORMAT, "tensors '%s' and '%s' overlap at byte %" PRIu64, a->name, b->name,
                     spans[i].begin);
                break;
            }
        }
    }
    free(spans);
    free(info_at);
    return c.status;
}

/* ============================================================================================ */
/* Writer                                                                                       */
/* ============================================================================================ */

typedef struct writer_tensor {
    char *name;
    uint32_t gtype;
    uint32_t n_dims;
    int64_t ne[4]; /* as written (byte rows for Loom-only types) */
    void *data;
    uint64_t size;
} writer_tensor;

struct loom_gguf_writer {
    loom_meta *meta;
    uint32_t n_meta, cap_meta;
    writer_tensor *tensors;
    uint32_t n_tensors, cap_tensors;
};

loom_status loom_gguf_writer_create(loom_gguf_writer **out) {
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    return *out ? LOOM_OK : LOOM_ERR_OUT_OF_MEMORY;
}

void loom_gguf_writer_free(loom_gguf_writer *w) {
    if (!w) return;
    for (uint32_t i = 0; i < w->n_meta; i++) loom_meta_clear(&w->meta[i]);
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->meta);
    free(w->tensors);
    free(w);
}

/* Deep copy of a value (key included when `with_key`). */
static loom_status meta_copy(loom_meta *dst, const loom_meta *src, bool with_key) {
    memset(dst, 0, sizeof *dst);
    dst->type = src->type;
    dst->elem_type = src->elem_type;
    dst->count = src->count;
    dst->v = src->v;
    dst->key = NULL;
    if (with_key && !(dst->key = loom_strdup(src->key))) return LOOM_ERR_OUT_OF_MEMORY;
    if (src->type == LOOM_META_STRING) {
        if (!(dst->v.str = loom_strdup(src->v.str ? src->v.str : ""))) goto oom;
    } else if (src->type == LOOM_META_ARRAY) {
        dst->v.arr = NULL;
        dst->count = 0;
        size_t es = elem_mem_size(src->elem_type);
        if (!es || (src->count && !src->v.arr)) {
            loom_meta_clear(dst);
            return LOOM_ERR_INVALID_ARGUMENT;
        }
        if (src->elem_type == LOOM_META_STRING) {
            const char *const *ss = src->v.arr;
            size_t total = 0;
            for (uint64_t i = 0; i < src->count; i++) total += strlen(ss[i] ? ss[i] : "") + 1;
            char **arr = malloc((size_t)src->count * sizeof(char *) + total + 1);
            if (!arr) goto oom;
            char *bytes = (char *)(arr + src->count);
            for (uint64_t i = 0; i < src->count; i++) {
                size_t n = strlen(ss[i] ? ss[i] : "") + 1;
                memcpy(bytes, ss[i] ? ss[i] : "", n);
                arr[i] = bytes;
                bytes += n;
            }
            dst->v.arr = arr;
        } else if (src->elem_type == LOOM_META_ARRAY) {
            loom_meta *arr = calloc(src->count ? (size_t)src->count : 1, sizeof *arr);
            if (!arr) goto oom;
            dst->v.arr = arr;
            const loom_meta *sa = src->v.arr;
            for (uint64_t i = 0; i < src->count; i++) {
                dst->count = i + 1;
                if (sa[i].type != LOOM_META_ARRAY || meta_copy(&arr[i], &sa[i], false)) {
                    loom_meta_clear(dst);
                    return LOOM_ERR_INVALID_ARGUMENT;
                }
            }
        } else {
            void *arr = malloc(src->count ? (size_t)src->count * es : 1);
            if (!arr) goto oom;
            if (src->count) memcpy(arr, src->v.arr, (size_t)src->count * es);
            dst->v.arr = arr;
        }
        dst->count = src->count;
    } else if (!scalar_file_size(src->type)) {
        loom_meta_clear(dst);
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    return LOOM_OK;
oom:
    loom_meta_clear(dst);
    return LOOM_ERR_OUT_OF_MEMORY;
}

loom_status loom_gguf_writer_set_meta(loom_gguf_writer *w, const loom_meta *entry) {
    if (!w || !entry || !entry->key || !entry->key[0]) return LOOM_ERR_INVALID_ARGUMENT;
    if (!strcmp(entry->key, "general.alignment") &&
        (entry->type != LOOM_META_U32 || !entry->v.u64 || (entry->v.u64 & (entry->v.u64 - 1)) ||
         entry->v.u64 > 65536))
        return LOOM_ERR_INVALID_ARGUMENT;
    loom_meta copy;
    loom_status s = meta_copy(&copy, entry, true);
    if (s) return s;
    for (uint32_t i = 0; i < w->n_meta; i++) {
        if (!strcmp(w->meta[i].key, entry->key)) {
            loom_meta_clear(&w->meta[i]);
            w->meta[i] = copy;
            return LOOM_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        uint32_t nc = w->cap_meta ? w->cap_meta * 2 : 32;
        loom_meta *p = realloc(w->meta, nc * sizeof *p);
        if (!p) {
            loom_meta_clear(&copy);
            return LOOM_ERR_OUT_OF_MEMORY;
        }
        w->meta = p;
        w->cap_meta = nc;
    }
    w->meta[w->n_meta++] = copy;
    return LOOM_OK;
}

loom_status loom_gguf_writer_add_tensor(loom_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                        const int64_t *ne, const void *data, uint64_t size) {
    if (!w || !name || !name[0] || strlen(name) > GGUF_MAX_NAME || n_dims > 4 || (n_dims && !ne))
        return LOOM_ERR_INVALID_ARGUMENT;
    const loom_type_traits *tr = loom_type_get_traits(type);
    if (!tr) return LOOM_ERR_INVALID_ARGUMENT;
    writer_tensor t;
    memset(&t, 0, sizeof t);
    t.n_dims = n_dims;
    uint64_t rows = 1;
    for (uint32_t d = 0; d < 4; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0) return LOOM_ERR_INVALID_ARGUMENT;
        if (d > 0) {
            if (t.ne[d] && rows > UINT64_MAX / (uint64_t)t.ne[d]) return LOOM_ERR_INVALID_ARGUMENT;
            rows *= (uint64_t)t.ne[d];
        }
    }
    if (t.ne[0] % tr->block_size) return LOOM_ERR_INVALID_ARGUMENT;
    uint64_t row = loom_type_row_bytes(type, t.ne[0]);
    if (rows && row > UINT64_MAX / rows) return LOOM_ERR_INVALID_ARGUMENT;
    if (row * rows != size || (size && !data)) return LOOM_ERR_INVALID_ARGUMENT;
    for (uint32_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) return LOOM_ERR_INVALID_ARGUMENT;
    t.gtype = loom_gguf_type_from_loom(type);
    if (t.gtype == UINT32_MAX) {
        /* Loom-only type: rows of bytes as GGUF i8 plus "loom.tensor_type.<name>" */
        if (n_dims < 1) return LOOM_ERR_INVALID_ARGUMENT;
        t.gtype = loom_gguf_type_from_loom(LOOM_TYPE_I8);
        t.ne[0] = (int64_t)row;
        char key[sizeof LOOM_TYPE_KEY + GGUF_MAX_NAME + 1];
        snprintf(key, sizeof key, LOOM_TYPE_KEY "%s", name);
        loom_meta m;
        memset(&m, 0, sizeof m);
        m.key = key;
        m.type = LOOM_META_STRING;
        m.v.str = (char *)(uintptr_t)tr->name;
        loom_status s = loom_gguf_writer_set_meta(w, &m);
        if (s) return s;
    }
    if (w->n_tensors == w->cap_tensors) {
        uint32_t nc = w->cap_tensors ? w->cap_tensors * 2 : 32;
        writer_tensor *p = realloc(w->tensors, nc * sizeof *p);
        if (!p) return LOOM_ERR_OUT_OF_MEMORY;
        w->tensors = p;
        w->cap_tensors = nc;
    }
    t.name = loom_strdup(name);
    t.data = malloc(size ? (size_t)size : 1);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    if (size) memcpy(t.data, data, (size_t)size);
    t.size = size;
    w->tensors[w->n_tensors++] = t;
    return LOOM_OK;
}

/* ---- serialisation ---- */

typedef struct out {
    FILE *f;
    uint64_t pos;
    bool ok;
} out;

static void put(out *o, const void *p, size_t n) {
    if (o->ok && n && fwrite(p, 1, n, o->f) != n) o->ok = false;
    o->pos += n;
}

static void put_le(out *o, uint64_t v, unsigned n) {
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(o, b, n);
}

static void put_str(out *o, const char *s) {
    size_t n = strlen(s);
    put_le(o, n, 8);
    put(o, s, n);
}

static void put_zeros(out *o, uint64_t n) {
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        put(o, z, k);
        n -= k;
    }
}

static void put_scalar_slot(out *o, uint32_t type, const void *slot) {
    if (type == LOOM_META_BOOL) {
        put_le(o, *(const bool *)slot ? 1 : 0, 1);
    } else {
        put(o, slot, (size_t)scalar_file_size(type)); /* little-endian host */
    }
}

static void put_value(out *o, const loom_meta *m) {
    switch (m->type) {
    case LOOM_META_U8:
    case LOOM_META_U16:
    case LOOM_META_U32:
    case LOOM_META_U64: put_le(o, m->v.u64, (unsigned)scalar_file_size(m->type)); break;
    case LOOM_META_I8:
    case LOOM_META_I16:
    case LOOM_META_I32:
    case LOOM_META_I64: put_le(o, (uint64_t)m->v.i64, (unsigned)scalar_file_size(m->type)); break;
    case LOOM_META_BOOL: put_le(o, m->v.b ? 1 : 0, 1); break;
    case LOOM_META_F32: {
        float f = (float)m->v.f64;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_le(o, u, 4);
        break;
    }
    case LOOM_META_F64: {
        uint64_t u;
        memcpy(&u, &m->v.f64, 8);
        put_le(o, u, 8);
        break;
    }
    case LOOM_META_STRING: put_str(o, m->v.str); break;
    case LOOM_META_ARRAY: {
        put_le(o, m->elem_type, 4);
        put_le(o, m->count, 8);
        size_t es = elem_mem_size(m->elem_type);
        for (uint64_t i = 0; i < m->count; i++) {
            const uint8_t *slot = (const uint8_t *)m->v.arr + i * es;
            if (m->elem_type == LOOM_META_STRING) put_str(o, *(char *const *)(const void *)slot);
            else if (m->elem_type == LOOM_META_ARRAY) put_value(o, (const loom_meta *)(const void *)slot);
            else put_scalar_slot(o, m->elem_type, slot);
        }
        break;
    }
    default: o->ok = false; break;
    }
}

loom_status loom_gguf_writer_write(loom_gguf_writer *w, const char *path, char *err, size_t err_size) {
    if (!w || !path) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "no writer or path");
    uint64_t alignment = GGUF_DEFAULT_ALIGN;
    for (uint32_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[i].key, "general.alignment")) alignment = w->meta[i].v.u64;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    out o = {fopen(tmp, "wb"), 0, true};
    if (!o.f) {
        loom_status s = loom_err(err, err_size, LOOM_ERR_IO, "cannot create '%s'", tmp);
        free(tmp);
        return s;
    }
    put(&o, "GGUF", 4);
    put_le(&o, 3, 4);
    put_le(&o, w->n_tensors, 8);
    put_le(&o, w->n_meta, 8);
    for (uint32_t i = 0; i < w->n_meta; i++) {
        put_str(&o, w->meta[i].key);
        put_le(&o, w->meta[i].type, 4);
        put_value(&o, &w->meta[i]);
    }
    uint64_t offset = 0;
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        put_str(&o, t->name);
        put_le(&o, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) put_le(&o, (uint64_t)t->ne[d], 8);
        put_le(&o, t->gtype, 4);
        put_le(&o, offset, 8);
        offset += t->size + (alignment - t->size % alignment) % alignment;
    }
    put_zeros(&o, (alignment - o.pos % alignment) % alignment);
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        put(&o, t->data, (size_t)t->size);
        put_zeros(&o, (alignment - t->size % alignment) % alignment);
    }
    bool ok = o.ok && fflush(o.f) == 0;
    ok = (fclose(o.f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        loom_status s = loom_err(err, err_size, LOOM_ERR_IO, "cannot write '%s'", path);
        free(tmp);
        return s;
    }
    free(tmp);
    return LOOM_OK;
}
