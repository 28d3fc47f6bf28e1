/*
 * test_corrupt.c - hostile and corrupt files: truncation at every byte (so at every header field)
 * of a GGUF and a safetensors file, every field overwritten with absurd values, and targeted
 * cases (absurd counts, offsets, dimensions, nesting, overlapping and holey safetensors entries,
 * bad JSON, huge header lengths, bad shard indexes). Each must fail with LOOM_ERR_FORMAT (or the
 * status named) and a message, never crash, hang or allocate absurdly. Run it under ASan+UBSan.
 */
#include "internal.h"

#include "bytes.h"
#include "check.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* Open an image and expect `want` (LOOM_OK allowed when want < 0: "anything but a crash"). */
static void expect(const bytes *img, const char *format, loom_status want, const char *needle, const char *label) {
    char err[512] = "";
    loom_file *f = (loom_file *)&err; /* must be reset to NULL on failure */
    loom_status st = loom_file_open_memory(img->p, img->n, format, &f, err, sizeof err);
    if (want >= 0) {
        CHECK_MSG(st == want, "%s: status %d (%s), wanted %d", label, st, err, want);
    }
    if (st) {
        CHECK_MSG(f == NULL, "%s: out not cleared", label);
        CHECK_MSG(err[0] != 0, "%s: no message", label);
        if (needle) CHECK_MSG(strstr(err, needle) != NULL, "%s: message '%s' lacks '%s'", label, err, needle);
    } else {
        /* a file that opened must be fully usable */
        for (uint32_t i = 0; i < loom_file_tensor_count(f); i++) {
            const loom_file_tensor *t = loom_file_tensor_at(f, i);
            CHECK(t->data && (const uint8_t *)t->data + t->size <= img->p + img->n);
            CHECK((const uint8_t *)t->data >= img->p);
        }
        for (uint32_t i = 0; i < loom_file_meta_count(f); i++) {
            char text[256];
            loom_meta_format(loom_file_meta_at(f, i), 4, text, sizeof text);
        }
        loom_file_close(f);
    }
}

/* ============================================================================================ */
/* GGUF                                                                                         */
/* ============================================================================================ */

typedef struct tinfo {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
} tinfo;

typedef struct field {
    size_t at, width;
} field;

static field fields[256];
static size_t n_fields;

static void mark(const bytes *b, size_t width) {
    if (n_fields < 256) fields[n_fields++] = (field){b->n, width};
}

/* The kv section of the good file: a string, an array of strings, a nested array, a u32. */
static void good_kvs(bytes *b) {
    mark(b, 8);
    bb_str(b, "general.architecture");
    mark(b, 4);
    bb_u32(b, LOOM_META_STRING);
    mark(b, 8);
    bb_str(b, "llama");
    bb_str(b, "tok");
    bb_u32(b, LOOM_META_ARRAY);
    mark(b, 4);
    bb_u32(b, LOOM_META_STRING);
    mark(b, 8);
    bb_u64(b, 2);
    mark(b, 8);
    bb_str(b, "ab");
    bb_str(b, "c");
    bb_str(b, "nest");
    bb_u32(b, LOOM_META_ARRAY);
    bb_u32(b, LOOM_META_ARRAY);
    mark(b, 8);
    bb_u64(b, 1);
    mark(b, 4);
    bb_u32(b, LOOM_META_U16);
    mark(b, 8);
    bb_u64(b, 2);
    bb_le(b, 1, 2);
    bb_le(b, 2, 2);
    bb_str(b, "n");
    bb_u32(b, LOOM_META_U32);
    mark(b, 4);
    bb_u32(b, 5);
}
#define GOOD_KVS 4

/* version, kvs (n_kv entries), tensors; data: `data_len` bytes after alignment (no trailing pad). */
static bytes gguf_build(uint32_t version, void (*kvs)(bytes *), uint64_t n_kv, const tinfo *ts, uint64_t n_ts,
                        uint64_t n_ts_declared, size_t data_len, size_t align) {
    bytes b = {0};
    n_fields = 0;
    mark(&b, 4);
    bb_put(&b, "GGUF", 4);
    mark(&b, 4);
    bb_u32(&b, version);
    mark(&b, 8);
    bb_u64(&b, n_ts_declared);
    mark(&b, 8);
    bb_u64(&b, n_kv);
    if (kvs) kvs(&b);
    for (uint64_t i = 0; i < n_ts; i++) {
        mark(&b, 8);
        bb_str(&b, ts[i].name);
        mark(&b, 4);
        bb_u32(&b, ts[i].n_dims);
        for (uint32_t d = 0; d < ts[i].n_dims && d < 4; d++) {
            mark(&b, 8);
            bb_u64(&b, ts[i].ne[d]);
        }
        mark(&b, 4);
        bb_u32(&b, ts[i].type);
        mark(&b, 8);
        bb_u64(&b, ts[i].offset);
    }
    bb_align(&b, align);
    for (size_t i = 0; i < data_len; i++) bb_u8(&b, (uint8_t)i);
    return b;
}

/* two tensors: q4_0 [32, 2] at 0 (36 bytes), f32 [3] at 64 (12 bytes) -> 76 bytes of data */
static const tinfo good_ts[2] = {{"w", 2, {32, 2, 1, 1}, 2, 0}, {"b", 1, {3, 1, 1, 1}, 0, 64}};

static bytes good_gguf(void) { return gguf_build(3, good_kvs, GOOD_KVS, good_ts, 2, 2, 76, 32); }

static void test_gguf_truncation_and_fields(void) {
    bytes good = good_gguf();
    expect(&good, "gguf", LOOM_OK, NULL, "good gguf");
    /* every truncation fails: the last tensor ends exactly at the end of the file */
    for (size_t n = 0; n < good.n; n++) {
        bytes cut = {good.p, n, n};
        char label[64];
        snprintf(label, sizeof label, "gguf truncated to %zu bytes", n);
        expect(&cut, "gguf", LOOM_ERR_FORMAT, NULL, label);
    }
    /* every header field overwritten with absurd values: anything but a crash */
    field saved[256];
    size_t n_saved = n_fields;
    memcpy(saved, fields, sizeof saved);
    static const uint64_t absurd[] = {0, 1, 5, 63, 64, 65, 0x7f, 0xff, 0xffff, 0x7fffffff, 0xffffffffu,
                                      0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX};
    for (size_t i = 0; i < n_saved; i++) {
        for (size_t k = 0; k < sizeof absurd / sizeof absurd[0]; k++) {
            bytes mod = {0};
            bb_put(&mod, good.p, good.n);
            for (size_t j = 0; j < saved[i].width; j++) mod.p[saved[i].at + j] = (uint8_t)(absurd[k] >> (8 * j));
            char label[96];
            snprintf(label, sizeof label, "field at byte %zu = %llu", saved[i].at, (unsigned long long)absurd[k]);
            expect(&mod, "gguf", -1, NULL, label);
            bb_free(&mod);
        }
    }
    /* and every single byte flipped */
    for (size_t i = 0; i < good.n; i++) {
        bytes mod = {0};
        bb_put(&mod, good.p, good.n);
        mod.p[i] ^= 0xff;
        expect(&mod, "gguf", -1, NULL, "flipped byte");
        bb_free(&mod);
    }
    bb_free(&good);
}

static void kv_huge_key(bytes *b) {
    bb_u64(b, 1ull << 40);
    bb_put(b, "abc", 3);
}
static void kv_huge_string(bytes *b) {
    bb_str(b, "k");
    bb_u32(b, LOOM_META_STRING);
    bb_u64(b, UINT64_MAX);
}
static void kv_huge_array(bytes *b) {
    bb_str(b, "k");
    bb_u32(b, LOOM_META_ARRAY);
    bb_u32(b, LOOM_META_U32);
    bb_u64(b, 1ull << 40);
}
static void kv_huge_string_array(bytes *b) {
    bb_str(b, "k");
    bb_u32(b, LOOM_META_ARRAY);
    bb_u32(b, LOOM_META_STRING);
    bb_u64(b, 1ull << 61);
}
static void kv_deep(bytes *b) {
    bb_str(b, "k");
    bb_u32(b, LOOM_META_ARRAY);
    for (int i = 0; i < 40; i++) {
        bb_u32(b, LOOM_META_ARRAY);
        bb_u64(b, 1);
    }
    bb_u32(b, LOOM_META_U8);
    bb_u64(b, 1);
    bb_u8(b, 0);
}
static void kv_bad_type(bytes *b) {
    bb_str(b, "k");
    bb_u32(b, 13);
    bb_u32(b, 0);
}
static void kv_bad_elem(bytes *b) {
    bb_str(b, "k");
    bb_u32(b, LOOM_META_ARRAY);
    bb_u32(b, 99);
    bb_u64(b, 1);
    bb_u32(b, 0);
}
static void kv_dup(bytes *b) {
    for (int i = 0; i < 2; i++) {
        bb_str(b, "same");
        bb_u32(b, LOOM_META_U8);
        bb_u8(b, 1);
    }
}
static void kv_empty_key(bytes *b) {
    bb_str(b, "");
    bb_u32(b, LOOM_META_U8);
    bb_u8(b, 1);
}
static void kv_nul_key(bytes *b) {
    bb_u64(b, 3);
    bb_put(b, "a\0b", 3);
    bb_u32(b, LOOM_META_U8);
    bb_u8(b, 1);
}
static void kv_align0(bytes *b) {
    bb_str(b, "general.alignment");
    bb_u32(b, LOOM_META_U32);
    bb_u32(b, 0);
}
static void kv_align3(bytes *b) {
    bb_str(b, "general.alignment");
    bb_u32(b, LOOM_META_U32);
    bb_u32(b, 3);
}
static void kv_align_u64(bytes *b) {
    bb_str(b, "general.alignment");
    bb_u32(b, LOOM_META_U64);
    bb_u64(b, 32);
}
static void kv_override_unknown(bytes *b) {
    bb_str(b, "loom.tensor_type.w");
    bb_u32(b, LOOM_META_STRING);
    bb_str(b, "q9_9");
}
static void kv_override_u8(bytes *b) {
    bb_str(b, "loom.tensor_type.w");
    bb_u32(b, LOOM_META_STRING);
    bb_str(b, "u8");
}
static void kv_override_int(bytes *b) {
    bb_str(b, "loom.tensor_type.w");
    bb_u32(b, LOOM_META_U32);
    bb_u32(b, 3);
}

static void test_gguf_targeted(void) {
    const tinfo one[1] = {{"w", 1, {4, 1, 1, 1}, 0, 0}}; /* f32 [4] = 16 bytes */
    struct {
        const char *label;
        uint32_t version;
        void (*kvs)(bytes *);
        uint64_t n_kv;
        tinfo t[2];
        uint64_t n_t, n_t_declared;
        size_t data;
        loom_status want;
        const char *needle;
    } cases[] = {
        {"tensor count 2^63", 3, NULL, 0, {{0}}, 0, 1ull << 63, 0, LOOM_ERR_FORMAT, "tensor count"},
        {"metadata count 2^62", 3, NULL, 1ull << 62, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "metadata count"},
        {"key length 2^40", 3, kv_huge_key, 1, {{0}}, 0, 0, 64, LOOM_ERR_FORMAT, "metadata key"},
        {"string length 2^64-1", 3, kv_huge_string, 1, {{0}}, 0, 0, 64, LOOM_ERR_FORMAT, "string value"},
        {"array of 2^40 u32", 3, kv_huge_array, 1, {{0}}, 0, 0, 64, LOOM_ERR_FORMAT, "cannot fit"},
        {"array of 2^61 strings", 3, kv_huge_string_array, 1, {{0}}, 0, 0, 64, LOOM_ERR_FORMAT, "cannot fit"},
        {"arrays nested 40 deep", 3, kv_deep, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "nested"},
        {"unknown value type", 3, kv_bad_type, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "unknown value type"},
        {"unknown element type", 3, kv_bad_elem, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "element type"},
        {"duplicate key", 3, kv_dup, 2, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "duplicate metadata key"},
        {"empty key", 3, kv_empty_key, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "key"},
        {"NUL in key", 3, kv_nul_key, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "key"},
        {"alignment 0", 3, kv_align0, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "alignment"},
        {"alignment 3", 3, kv_align3, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "alignment"},
        {"alignment as u64", 3, kv_align_u64, 1, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "alignment"},
        {"version 99", 99, NULL, 0, {{0}}, 0, 0, 0, LOOM_ERR_FORMAT, "version"},
        {"version 1", 1, NULL, 0, {{0}}, 0, 0, 0, LOOM_ERR_UNSUPPORTED, "version"},
        {"big-endian", 0x03000000u, NULL, 0, {{0}}, 0, 0, 0, LOOM_ERR_UNSUPPORTED, "big-endian"},
        {"5 dimensions", 3, NULL, 0, {{"w", 5, {1, 1, 1, 1}, 0, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "dimensions"},
        {"dims overflow", 3, NULL, 0, {{"w", 3, {1ull << 32, 1ull << 32, 1ull << 32, 1}, 0, 0}}, 1, 1, 64,
         LOOM_ERR_FORMAT, "overflow"},
        {"negative dim", 3, NULL, 0, {{"w", 1, {UINT64_MAX, 1, 1, 1}, 0, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "dimension"},
        {"bytes overflow", 3, NULL, 0, {{"w", 2, {1ull << 62, 4, 1, 1}, 0, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "overflow"},
        {"row bytes overflow", 3, NULL, 0, {{"w", 1, {0x6000000000000004ull, 1, 1, 1}, 0, 0}}, 1, 1, 64,
         LOOM_ERR_FORMAT, "overflow"},
        {"ne0 % 32", 3, NULL, 0, {{"w", 1, {33, 1, 1, 1}, 2, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "block size"},
        {"type 9999", 3, NULL, 0, {{"w", 1, {4, 1, 1, 1}, 9999, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "unknown type"},
        {"type q5_0", 3, NULL, 0, {{"w", 1, {32, 1, 1, 1}, 6, 0}}, 1, 1, 64, LOOM_ERR_UNSUPPORTED, "q5_0"},
        {"offset unaligned", 3, NULL, 0, {{"w", 1, {4, 1, 1, 1}, 0, 4}}, 1, 1, 64, LOOM_ERR_FORMAT, "alignment"},
        {"offset 2^40", 3, NULL, 0, {{"w", 1, {4, 1, 1, 1}, 0, 1ull << 40}}, 1, 1, 64, LOOM_ERR_FORMAT, "outside"},
        {"offset 2^64-32", 3, NULL, 0, {{"w", 1, {4, 1, 1, 1}, 0, UINT64_MAX - 31}}, 1, 1, 64, LOOM_ERR_FORMAT,
         "outside"},
        {"size past end", 3, NULL, 0, {{"w", 1, {1024, 1, 1, 1}, 0, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "outside"},
        {"overlap", 3, NULL, 0, {{"w", 1, {16, 1, 1, 1}, 0, 0}, {"v", 1, {16, 1, 1, 1}, 0, 32}}, 2, 2, 96,
         LOOM_ERR_FORMAT, "overlap"},
        {"duplicate tensor", 3, NULL, 0, {{"w", 1, {4, 1, 1, 1}, 0, 0}, {"w", 1, {4, 1, 1, 1}, 0, 32}}, 2, 2, 64,
         LOOM_ERR_FORMAT, "duplicate tensor"},
        {"name of 65 bytes", 3, NULL, 0,
         {{"a12345678901234567890123456789012345678901234567890123456789012345", 1, {4, 1, 1, 1}, 0, 0}}, 1, 1, 64,
         LOOM_ERR_FORMAT, "limit"},
        {"empty name", 3, NULL, 0, {{"", 1, {4, 1, 1, 1}, 0, 0}}, 1, 1, 64, LOOM_ERR_FORMAT, "empty name"},
        {"declared 3 tensors, 1 written", 3, NULL, 0, {{"w", 1, {4, 1, 1, 1}, 0, 0}}, 1, 3, 64, LOOM_ERR_FORMAT,
         NULL},
        {"override unknown type", 3, kv_override_unknown, 1, {{"w", 1, {4, 1, 1, 1}, 24, 0}}, 1, 1, 64,
         LOOM_ERR_FORMAT, "unknown type"},
        {"override not a string", 3, kv_override_int, 1, {{"w", 1, {4, 1, 1, 1}, 24, 0}}, 1, 1, 64, LOOM_ERR_FORMAT,
         "not a string"},
        {"override on f32", 3, kv_override_u8, 1, {{"w", 1, {4, 1, 1, 1}, 0, 0}}, 1, 1, 64, LOOM_ERR_FORMAT,
         "needs GGUF type i8"},
        {"good override", 3, kv_override_u8, 1, {{"w", 1, {4, 1, 1, 1}, 24, 0}}, 1, 1, 64, LOOM_OK, NULL},
    };
    (void)one;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = gguf_build(cases[i].version, cases[i].kvs, cases[i].n_kv, cases[i].t, cases[i].n_t,
                             cases[i].n_t_declared, cases[i].data, 32);
        expect(&b, "gguf", cases[i].want, cases[i].needle, cases[i].label);
        bb_free(&b);
    }
    /* a zero-size tensor whose data section would start past the end of the file */
    const tinfo zero[1] = {{"z", 1, {0, 1, 1, 1}, 0, 0}};
    bytes zb = gguf_build(3, NULL, 0, zero, 1, 1, 0, 1);
    expect(&zb, "gguf", LOOM_ERR_FORMAT, "past the end", "data section past the end");
    while (zb.n % 32) bb_u8(&zb, 0);
    expect(&zb, "gguf", LOOM_OK, NULL, "zero-size tensor at the end");
    bb_free(&zb);
    /* not a GGUF at all; an empty image */
    bytes junk = {(uint8_t *)"GGUX\3\0\0\0", 8, 8};
    expect(&junk, "gguf", LOOM_ERR_FORMAT, "magic", "bad magic");
    bytes empty = {(uint8_t *)"", 0, 0};
    expect(&empty, "gguf", LOOM_ERR_FORMAT, NULL, "empty gguf");
}

/* ============================================================================================ */
/* safetensors                                                                                  */
/* ============================================================================================ */

static void test_safetensors_hostile(void) {
    const char *good_h = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}}";
    bytes good = st_image(good_h, 8, 32);
    expect(&good, "safetensors", LOOM_OK, NULL, "good safetensors");
    for (size_t n = 0; n < good.n; n++) {
        bytes cut = {good.p, n, n};
        char label[64];
        snprintf(label, sizeof label, "safetensors truncated to %zu", n);
        expect(&cut, "safetensors", LOOM_ERR_FORMAT, NULL, label);
    }
    for (size_t i = 0; i < good.n; i++) { /* flip each byte: anything but a crash */
        bytes mod = {0};
        bb_put(&mod, good.p, good.n);
        mod.p[i] ^= 0x5a;
        expect(&mod, "safetensors", -1, NULL, "flipped byte");
        bb_free(&mod);
    }
    bb_free(&good);

    struct {
        const char *label, *header;
        size_t buf;
        loom_status want;
        const char *needle;
    } cases[] = {
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, LOOM_ERR_FORMAT, "overlap"},
        {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, LOOM_ERR_FORMAT, "hole"},
        {"hole at start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, LOOM_ERR_FORMAT,
         "hole"},
        {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, LOOM_ERR_FORMAT,
         "belong to no tensor"},
        {"past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, LOOM_ERR_FORMAT,
         "outside"},
        {"begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, LOOM_ERR_FORMAT,
         "outside"},
        {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, LOOM_ERR_FORMAT,
         "shape needs"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LOOM_ERR_FORMAT,
         "unknown dtype"},
        {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LOOM_ERR_FORMAT,
         "dtype"},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, LOOM_ERR_FORMAT,
         "dimension"},
        {"float dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, LOOM_ERR_FORMAT,
         "dimension"},
        {"shape overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                           "\"data_offsets\":[0,4]}}", 4, LOOM_ERR_FORMAT, "overflow"},
        {"bytes overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4,
         LOOM_ERR_FORMAT, "absurd"},
        {"huge offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[18446744073709551612,"
                         "18446744073709551615]}}", 4, LOOM_ERR_FORMAT, NULL},
        {"negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, LOOM_ERR_FORMAT,
         "data_offsets"},
        {"three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, LOOM_ERR_FORMAT,
         "data_offsets"},
        {"no shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, LOOM_ERR_FORMAT, "shape"},
        {"entry not an object", "{\"a\":[1,2]}", 0, LOOM_ERR_FORMAT, "needs an object"},
        {"metadata not strings", "{\"__metadata__\":{\"x\":1}}", 0, LOOM_ERR_FORMAT, "__metadata__"},
        {"metadata not an object", "{\"__metadata__\":[]}", 0, LOOM_ERR_FORMAT, "__metadata__"},
        {"top-level array", "[{\"a\":1}]", 0, LOOM_ERR_FORMAT, "'{'"},
        {"truncated JSON", "{\"a\":{\"dtype\":\"F32\",", 0, LOOM_ERR_FORMAT, "JSON"},
        {"bad JSON", "{\"a\" 1}", 0, LOOM_ERR_FORMAT, "JSON"},
        {"single quotes", "{'a':1}", 0, LOOM_ERR_FORMAT, NULL}, /* json-c accepts the quotes; the entry fails */
        {"trailing garbage", "{}xyz", 0, LOOM_ERR_FORMAT, "after the JSON"},
        {"two objects", "{}{}", 0, LOOM_ERR_FORMAT, "after the JSON"},
        {"deep nesting", "{\"__metadata__\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", 0,
         LOOM_ERR_FORMAT, "JSON"},
        {"unsupported dtype", "{\"a\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         LOOM_ERR_UNSUPPORTED, "'a'"},
        {"5 dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, LOOM_ERR_UNSUPPORTED,
         "'a'"},
        {"empty object, no buffer", "{}", 0, LOOM_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = st_image(cases[i].header, 8, cases[i].buf);
        expect(&b, "safetensors", cases[i].want, cases[i].needle, cases[i].label);
        bb_free(&b);
    }
    /* header lengths: over 100 MB, past the end, too small; a NUL inside the JSON */
    bytes b = {0};
    bb_u64(&b, 100000001);
    bb_put(&b, "{}", 2);
    expect(&b, "safetensors", LOOM_ERR_FORMAT, "100 MB", "header over 100 MB");
    b.n = 0;
    bb_u64(&b, UINT64_MAX);
    bb_put(&b, "{}", 2);
    expect(&b, "safetensors", LOOM_ERR_FORMAT, "100 MB", "header length 2^64-1");
    b.n = 0;
    bb_u64(&b, 1000);
    bb_put(&b, "{}", 2);
    expect(&b, "safetensors", LOOM_ERR_FORMAT, "past the end", "header past the end");
    b.n = 0;
    bb_u64(&b, 0);
    expect(&b, "safetensors", LOOM_ERR_FORMAT, NULL, "header length 0");
    b.n = 0;
    bb_u64(&b, 4);
    bb_put(&b, "{\0}}", 4);
    expect(&b, "safetensors", LOOM_ERR_FORMAT, "NUL", "NUL in header");
    bb_free(&b);
}

/* ============================================================================================ */
/* Files, folders and shard indexes                                                             */
/* ============================================================================================ */

static void put_file(const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    CHECK(write_file(path, p, n) == 0);
}

static void expect_path(const char *name, loom_status want, const char *needle, const char *label) {
    char path[512], err[512] = "";
    if (name) snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    else snprintf(path, sizeof path, "%s", tmpdir);
    loom_file *f = NULL;
    loom_status st = loom_file_open(path, &f, err, sizeof err);
    CHECK_MSG(st == want, "%s: status %d (%s), wanted %d", label, st, err, want);
    CHECK_MSG(st == LOOM_OK || (f == NULL && err[0]), "%s: no message", label);
    if (needle && st) CHECK_MSG(strstr(err, needle) != NULL, "%s: message '%s' lacks '%s'", label, err, needle);
    loom_file_close(f);
}

static void rm(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    unlink(path);
}

static void test_files(void) {
    expect_path("missing.gguf", LOOM_ERR_IO, "cannot open", "missing file");
    put_file("empty.gguf", "", 0);
    expect_path("empty.gguf", LOOM_ERR_FORMAT, "empty", "empty file");
    put_file("text.bin", "hello world, not a model", 24);
    expect_path("text.bin", LOOM_ERR_FORMAT, "neither", "text file");
    expect_path(NULL, LOOM_ERR_NOT_FOUND, "no .safetensors", "empty folder");
    rm("empty.gguf");
    rm("text.bin");

    bytes shard = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, 4);
    put_file("s1.safetensors", shard.p, shard.n);
    put_file("s2.safetensors", shard.p, shard.n);
    expect_path(NULL, LOOM_ERR_FORMAT, "several", "two shards, no index");
    const char *idx_dup = "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}";
    put_file("i.json", idx_dup, strlen(idx_dup));
    expect_path("i.json", LOOM_ERR_FORMAT, "duplicate tensor", "same tensor in two shards");
    const char *idx_trav = "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}";
    put_file("i.json", idx_trav, strlen(idx_trav));
    expect_path("i.json", LOOM_ERR_FORMAT, "not a file beside", "path traversal");
    const char *idx_missing = "{\"weight_map\":{\"a\":\"s1.safetensors\",\"zz\":\"s1.safetensors\"}}";
    put_file("i.json", idx_missing, strlen(idx_missing));
    expect_path("i.json", LOOM_ERR_FORMAT, "'zz' is not in shard", "listed tensor missing");
    const char *idx_absent = "{\"weight_map\":{\"a\":\"nope.safetensors\"}}";
    put_file("i.json", idx_absent, strlen(idx_absent));
    expect_path("i.json", LOOM_ERR_IO, "cannot open", "shard file missing");
    const char *idx_nomap = "{\"metadata\":{}}";
    put_file("i.json", idx_nomap, strlen(idx_nomap));
    expect_path("i.json", LOOM_ERR_FORMAT, "weight_map", "no weight_map");
    const char *idx_notstr = "{\"weight_map\":{\"a\":5}}";
    put_file("i.json", idx_notstr, strlen(idx_notstr));
    expect_path("i.json", LOOM_ERR_FORMAT, "not a file name", "weight_map value not a string");
    put_file("i.json", "{\"weight_map\":", 14);
    expect_path("i.json", LOOM_ERR_FORMAT, "JSON", "truncated index");
    const char *idx_ok = "{\"weight_map\":{\"a\":\"s1.safetensors\"}}";
    put_file("i.json", idx_ok, strlen(idx_ok));
    expect_path("i.json", LOOM_OK, NULL, "good index");
    /* one shard lists less than it holds */
    bytes two = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 8);
    put_file("s1.safetensors", two.p, two.n);
    expect_path("i.json", LOOM_ERR_FORMAT, "index lists", "unlisted tensor in a shard");
    rm("s2.safetensors");
    rm("i.json");
    /* a folder with model.safetensors and a broken config.json */
    put_file("model.safetensors", shard.p, shard.n);
    put_file("config.json", "{\"hidden_size\": 4,", 18);
    expect_path(NULL, LOOM_ERR_FORMAT, "config.json", "broken config.json");
    put_file("config.json", "[1]", 3);
    expect_path(NULL, LOOM_ERR_FORMAT, "not a JSON object", "config.json not an object");
    put_file("config.json", "{\"a\":{\"b\":1},\"a.b\":2}", 21);
    expect_path(NULL, LOOM_ERR_FORMAT, "duplicate", "config keys that flatten to the same name");
    put_file("config.json", "{\"hidden_size\":4}", 17);
    expect_path(NULL, LOOM_OK, NULL, "good folder");
    rm("config.json");
    rm("model.safetensors");
    rm("s1.safetensors");
    bb_free(&shard);
    bb_free(&two);
}

int main(void) {
    /* a hostile file must not make us allocate much: cap the address space at 1 GiB (not under
     * ASan, which reserves far more) */
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit rl = {1ul << 30, 1ul << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_test_corrupt_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_gguf_truncation_and_fields();
    test_gguf_targeted();
    test_safetensors_hostile();
    test_files();
    rmdir(tmpdir);
    CHECK_DONE();
}
