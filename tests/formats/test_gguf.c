/*
 * test_gguf.c - the GGUF reader on hand-built files (v2 and v3, nested arrays, alignment) and the
 * writer: exact bytes of a tiny file worked out by hand, and a round trip of every metadata type
 * and every tensor type (including Loom's own keys for u8 / i4x2).
 */
#include "internal.h"

#include "bytes.h"
#include "check.h"

#include <math.h>
#include <unistd.h>

static char tmpdir[256];

static void test_hand_v2(void) {
    bytes b = {0};
    bb_put(&b, "GGUF", 4);
    bb_u32(&b, 2);
    bb_u64(&b, 2); /* tensors */
    bb_u64(&b, 4); /* kv */
    bb_str(&b, "general.architecture");
    bb_u32(&b, LOOM_META_STRING);
    bb_str(&b, "llama");
    bb_str(&b, "a.nested");
    bb_u32(&b, LOOM_META_ARRAY);
    bb_u32(&b, LOOM_META_ARRAY);
    bb_u64(&b, 2);
    bb_u32(&b, LOOM_META_I32); /* [7, -7] */
    bb_u64(&b, 2);
    bb_u32(&b, 7);
    bb_u32(&b, (uint32_t)-7);
    bb_u32(&b, LOOM_META_STRING); /* ["x"] */
    bb_u64(&b, 1);
    bb_str(&b, "x");
    bb_str(&b, "a.f");
    bb_u32(&b, LOOM_META_F32);
    bb_u32(&b, 0x3E800000u); /* 0.25 */
    bb_str(&b, "a.bools");
    bb_u32(&b, LOOM_META_ARRAY);
    bb_u32(&b, LOOM_META_BOOL);
    bb_u64(&b, 3);
    bb_u8(&b, 1);
    bb_u8(&b, 0);
    bb_u8(&b, 1);
    /* tensor infos */
    bb_str(&b, "w");
    bb_u32(&b, 2);
    bb_u64(&b, 32);
    bb_u64(&b, 2);
    bb_u32(&b, 2); /* GGUF Q4_0 */
    bb_u64(&b, 0);
    bb_str(&b, "b");
    bb_u32(&b, 1);
    bb_u64(&b, 3);
    bb_u32(&b, 0); /* F32 */
    bb_u64(&b, 64);
    bb_align(&b, 32);
    size_t data_start = b.n;
    for (int blk = 0; blk < 2; blk++) { /* d = 1.0 (then 2.0), nibble byte j = j | (15-j) << 4 */
        bb_le(&b, blk ? 0x4000 : 0x3C00, 2);
        for (int j = 0; j < 16; j++) bb_u8(&b, (uint8_t)(j | ((15 - j) << 4)));
    }
    bb_zeros(&b, 28);
    const float fv[3] = {1.0f, -2.5f, 3.0f};
    bb_put(&b, fv, sizeof fv);

    char err[256] = "";
    loom_file *f = NULL;
    loom_status st = loom_file_open_memory(b.p, b.n, "gguf", &f, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "%s", err);
    if (!f) {
        bb_free(&b);
        return;
    }
    CHECK(loom_file_meta_count(f) == 4 && loom_file_tensor_count(f) == 2);
    const char *s;
    CHECK(loom_file_meta_string(f, "general.architecture", &s) == LOOM_OK && !strcmp(s, "llama"));
    double d;
    CHECK(loom_file_meta_float(f, "a.f", &d) == LOOM_OK && d == 0.25);
    const loom_meta *m = loom_file_meta_find(f, "a.nested");
    CHECK(m && m->type == LOOM_META_ARRAY && m->elem_type == LOOM_META_ARRAY && m->count == 2);
    if (m && m->count == 2) {
        const loom_meta *sub = m->v.arr;
        CHECK(sub[0].elem_type == LOOM_META_I32 && sub[0].count == 2);
        CHECK(((const int32_t *)sub[0].v.arr)[0] == 7 && ((const int32_t *)sub[0].v.arr)[1] == -7);
        CHECK(sub[1].elem_type == LOOM_META_STRING && sub[1].count == 1 && !strcmp(((char **)sub[1].v.arr)[0], "x"));
        char text[256];
        loom_meta_format(m, 8, text, sizeof text);
        CHECK_MSG(!strcmp(text, "[array; 2] [i32; 2] 7, -7, [string; 1] \"x\""), "%s", text);
    }
    m = loom_file_meta_find(f, "a.bools");
    CHECK(m && m->count == 3 && ((const bool *)m->v.arr)[0] && !((const bool *)m->v.arr)[1]);
    const loom_file_tensor *w = loom_file_tensor_find(f, "w");
    CHECK(w && w->type == LOOM_TYPE_Q4_0 && w->n_dims == 2 && w->ne[0] == 32 && w->ne[1] == 2 && w->ne[2] == 1);
    CHECK(w && w->size == 36 && w->offset == data_start && w->data == b.p + data_start);
    float y[64];
    if (w) {
        CHECK(loom_dequantize_row(w->type, w->data, y, 64) == LOOM_OK);
        CHECK(y[0] == -8.0f && y[31] == -8.0f && y[32] == -16.0f && y[32 + 15] == 14.0f);
    }
    const loom_file_tensor *bt = loom_file_tensor_find(f, "b");
    CHECK(bt && bt->type == LOOM_TYPE_F32 && bt->offset == data_start + 64 && bt->size == 12);
    if (bt) CHECK(!memcmp(bt->data, fv, 12));
    loom_file_close(f);

    /* the same bytes as version 3 read the same; version 1 is refused */
    b.p[4] = 3;
    CHECK(loom_file_open_memory(b.p, b.n, "gguf", &f, err, sizeof err) == LOOM_OK);
    loom_file_close(f);
    b.p[4] = 1;
    CHECK(loom_file_open_memory(b.p, b.n, "gguf", &f, err, sizeof err) == LOOM_ERR_UNSUPPORTED && !f);
    bb_free(&b);
}

static void test_writer_bytes(void) {
    /* one u32 key and one 2-element f32 tensor, alignment 32:
     * 24 header + 17 kv ("k": 8+1, type 4, value 4) + 33 info ("t": 8+1, n_dims 4, ne 8, type 4,
     * offset 8) = 74 -> padding to 96, 8 bytes of data, padding to 128 */
    loom_gguf_writer *w = NULL;
    CHECK(loom_gguf_writer_create(&w) == LOOM_OK);
    loom_meta m = {.key = "k", .type = LOOM_META_U32, .v.u64 = 7};
    CHECK(loom_gguf_writer_set_meta(w, &m) == LOOM_OK);
    const float v[2] = {1.0f, 2.0f};
    const int64_t ne[1] = {2};
    CHECK(loom_gguf_writer_add_tensor(w, "t", LOOM_TYPE_F32, 1, ne, v, 8) == LOOM_OK);
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/tiny.gguf", tmpdir);
    CHECK_MSG(loom_gguf_writer_write(w, path, err, sizeof err) == LOOM_OK, "%s", err);
    loom_gguf_writer_free(w);
    bytes got = {0}, want = {0};
    CHECK(read_file(path, &got) == 0);
    bb_put(&want, "GGUF", 4);
    bb_u32(&want, 3);
    bb_u64(&want, 1);
    bb_u64(&want, 1);
    bb_str(&want, "k");
    bb_u32(&want, 4);
    bb_u32(&want, 7);
    bb_str(&want, "t");
    bb_u32(&want, 1);
    bb_u64(&want, 2);
    bb_u32(&want, 0);
    bb_u64(&want, 0);
    CHECK(want.n == 74);
    bb_zeros(&want, 96 - 74);
    bb_put(&want, v, 8);
    bb_zeros(&want, 128 - 104);
    CHECK(got.n == 128 && got.n == want.n && !memcmp(got.p, want.p, want.n));
    bb_free(&got);
    bb_free(&want);
    unlink(path);
}

static void fill(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void test_round_trip(uint32_t alignment) {
    loom_gguf_writer *w = NULL;
    CHECK(loom_gguf_writer_create(&w) == LOOM_OK);
    if (alignment) {
        loom_meta a = {.key = "general.alignment", .type = LOOM_META_U32, .v.u64 = alignment};
        CHECK(loom_gguf_writer_set_meta(w, &a) == LOOM_OK);
    }
    loom_meta bad = {.key = "general.alignment", .type = LOOM_META_U32, .v.u64 = 24};
    CHECK(loom_gguf_writer_set_meta(w, &bad) == LOOM_ERR_INVALID_ARGUMENT);
    /* one of every scalar type */
    loom_meta sc[] = {
        {.key = "t.u8", .type = LOOM_META_U8, .v.u64 = 200},
        {.key = "t.i8", .type = LOOM_META_I8, .v.i64 = -100},
        {.key = "t.u16", .type = LOOM_META_U16, .v.u64 = 65000},
        {.key = "t.i16", .type = LOOM_META_I16, .v.i64 = -30000},
        {.key = "t.u32", .type = LOOM_META_U32, .v.u64 = 4000000000u},
        {.key = "t.i32", .type = LOOM_META_I32, .v.i64 = -2000000000},
        {.key = "t.f32", .type = LOOM_META_F32, .v.f64 = 1.5},
        {.key = "t.bool", .type = LOOM_META_BOOL, .v.b = true},
        {.key = "t.str", .type = LOOM_META_STRING, .v.str = "héllo \"world\""},
        {.key = "t.u64", .type = LOOM_META_U64, .v.u64 = UINT64_MAX},
        {.key = "t.i64", .type = LOOM_META_I64, .v.i64 = INT64_MIN},
        {.key = "t.f64", .type = LOOM_META_F64, .v.f64 = 1e-300},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) CHECK(loom_gguf_writer_set_meta(w, &sc[i]) == LOOM_OK);
    /* setting a key again replaces it */
    loom_meta again = {.key = "t.u8", .type = LOOM_META_U8, .v.u64 = 201};
    CHECK(loom_gguf_writer_set_meta(w, &again) == LOOM_OK);
    /* arrays of every element type, an empty one and nested ones */
    uint8_t a_u8[3] = {1, 2, 255};
    int16_t a_i16[2] = {-1, 300};
    float a_f32[2] = {0.5f, -0.25f};
    double a_f64[2] = {1.0 / 3.0, -7.0};
    bool a_b[2] = {false, true};
    uint64_t a_u64[1] = {123456789012345ull};
    const char *a_str[3] = {"a", "", "ccc"};
    int32_t inner1[2] = {5, 6};
    const char *inner2[1] = {"deep"};
    loom_meta inner[2] = {{.type = LOOM_META_ARRAY, .elem_type = LOOM_META_I32, .count = 2, .v.arr = inner1},
                          {.type = LOOM_META_ARRAY, .elem_type = LOOM_META_STRING, .count = 1, .v.arr = inner2}};
    loom_meta arrs[] = {
        {.key = "a.u8", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_U8, .count = 3, .v.arr = a_u8},
        {.key = "a.i16", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_I16, .count = 2, .v.arr = a_i16},
        {.key = "a.f32", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_F32, .count = 2, .v.arr = a_f32},
        {.key = "a.f64", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_F64, .count = 2, .v.arr = a_f64},
        {.key = "a.bool", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_BOOL, .count = 2, .v.arr = a_b},
        {.key = "a.u64", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_U64, .count = 1, .v.arr = a_u64},
        {.key = "a.str", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_STRING, .count = 3, .v.arr = (void *)a_str},
        {.key = "a.empty", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_I32, .count = 0, .v.arr = NULL},
        {.key = "a.nested", .type = LOOM_META_ARRAY, .elem_type = LOOM_META_ARRAY, .count = 2, .v.arr = inner},
    };
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) CHECK(loom_gguf_writer_set_meta(w, &arrs[i]) == LOOM_OK);

    /* a tensor of every type */
    struct {
        const char *name;
        uint32_t type;
        uint32_t n_dims;
        int64_t ne[4];
    } ts[] = {
        {"f32", LOOM_TYPE_F32, 2, {3, 5, 1, 1}},        {"f16", LOOM_TYPE_F16, 1, {7, 1, 1, 1}},
        {"bf16", LOOM_TYPE_BF16, 3, {2, 3, 4, 1}},      {"q8_0", LOOM_TYPE_Q8_0, 2, {64, 3, 1, 1}},
        {"q4_0", LOOM_TYPE_Q4_0, 2, {32, 2, 1, 1}},     {"q4_1", LOOM_TYPE_Q4_1, 4, {32, 1, 2, 2}},
        {"q4_k", LOOM_TYPE_Q4_K, 2, {256, 2, 1, 1}},    {"q6_k", LOOM_TYPE_Q6_K, 1, {512, 1, 1, 1}},
        {"i8", LOOM_TYPE_I8, 1, {5, 1, 1, 1}},          {"i16", LOOM_TYPE_I16, 1, {5, 1, 1, 1}},
        {"i32", LOOM_TYPE_I32, 1, {5, 1, 1, 1}},        {"i64", LOOM_TYPE_I64, 1, {5, 1, 1, 1}},
        {"f64", LOOM_TYPE_F64, 1, {5, 1, 1, 1}},        {"u8", LOOM_TYPE_U8, 2, {9, 2, 1, 1}},
        {"i4x2", LOOM_TYPE_I4X2, 2, {10, 3, 1, 1}},     {"empty", LOOM_TYPE_F32, 2, {4, 0, 1, 1}},
    };
    const size_t nt = sizeof ts / sizeof ts[0];
    uint8_t *data[16];
    uint64_t sizes[16];
    for (size_t i = 0; i < nt; i++) {
        sizes[i] = loom_type_row_bytes(ts[i].type, ts[i].ne[0]) * (uint64_t)(ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]);
        data[i] = malloc(sizes[i] + 1);
        fill(data[i], sizes[i], (uint32_t)i + 1);
        CHECK_MSG(loom_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, data[i], sizes[i]) ==
                      LOOM_OK, "%s", ts[i].name);
    }
    /* refused: duplicate name, wrong size, ne[0] not a multiple of the block, too many dims */
    CHECK(loom_gguf_writer_add_tensor(w, "f32", LOOM_TYPE_F32, 2, ts[0].ne, data[0], sizes[0]) != LOOM_OK);
    CHECK(loom_gguf_writer_add_tensor(w, "x", LOOM_TYPE_F32, 2, ts[0].ne, data[0], sizes[0] - 1) != LOOM_OK);
    CHECK(loom_gguf_writer_add_tensor(w, "y", LOOM_TYPE_Q4_0, 1, ts[0].ne, data[0], 18) != LOOM_OK);
    CHECK(loom_gguf_writer_add_tensor(w, "z", LOOM_TYPE_F32, 5, ts[0].ne, data[0], sizes[0]) != LOOM_OK);

    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    CHECK_MSG(loom_gguf_writer_write(w, path, err, sizeof err) == LOOM_OK, "%s", err);
    loom_gguf_writer_free(w);

    loom_file *f = NULL;
    CHECK_MSG(loom_file_open(path, &f, err, sizeof err) == LOOM_OK, "%s", err);
    if (!f) goto out;
    CHECK(!strcmp(loom_file_format(f), "gguf"));
    uint32_t align = alignment ? alignment : 32;
    int64_t iv;
    double dv;
    const char *sv;
    CHECK(loom_file_meta_int(f, "t.u8", &iv) == LOOM_OK && iv == 201);
    CHECK(loom_file_meta_int(f, "t.i8", &iv) == LOOM_OK && iv == -100);
    CHECK(loom_file_meta_int(f, "t.u16", &iv) == LOOM_OK && iv == 65000);
    CHECK(loom_file_meta_int(f, "t.i16", &iv) == LOOM_OK && iv == -30000);
    CHECK(loom_file_meta_int(f, "t.u32", &iv) == LOOM_OK && iv == 4000000000ll);
    CHECK(loom_file_meta_int(f, "t.i32", &iv) == LOOM_OK && iv == -2000000000);
    CHECK(loom_file_meta_float(f, "t.f32", &dv) == LOOM_OK && dv == 1.5);
    CHECK(loom_file_meta_int(f, "t.bool", &iv) == LOOM_OK && iv == 1);
    CHECK(loom_file_meta_string(f, "t.str", &sv) == LOOM_OK && !strcmp(sv, "héllo \"world\""));
    CHECK(loom_file_meta_find(f, "t.u64")->v.u64 == UINT64_MAX);
    CHECK(loom_file_meta_int(f, "t.u64", &iv) == LOOM_ERR_FORMAT); /* does not fit int64 */
    CHECK(loom_file_meta_int(f, "t.i64", &iv) == LOOM_OK && iv == INT64_MIN);
    CHECK(loom_file_meta_float(f, "t.f64", &dv) == LOOM_OK && dv == 1e-300);
    CHECK(loom_file_meta_int(f, "t.f64", &iv) == LOOM_ERR_FORMAT);
    CHECK(loom_file_meta_string(f, "t.u8", &sv) == LOOM_ERR_FORMAT);
    CHECK(loom_file_meta_int(f, "nope", &iv) == LOOM_ERR_NOT_FOUND);
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        const loom_meta *m = loom_file_meta_find(f, arrs[i].key);
        CHECK_MSG(m && m->type == LOOM_META_ARRAY && m->elem_type == arrs[i].elem_type && m->count == arrs[i].count,
                  "%s", arrs[i].key);
    }
    const loom_meta *m = loom_file_meta_find(f, "a.u8");
    CHECK(m && !memcmp(m->v.arr, a_u8, 3));
    m = loom_file_meta_find(f, "a.i16");
    CHECK(m && !memcmp(m->v.arr, a_i16, sizeof a_i16));
    m = loom_file_meta_find(f, "a.f32");
    CHECK(m && !memcmp(m->v.arr, a_f32, sizeof a_f32));
    m = loom_file_meta_find(f, "a.f64");
    CHECK(m && !memcmp(m->v.arr, a_f64, sizeof a_f64));
    m = loom_file_meta_find(f, "a.bool");
    CHECK(m && !((bool *)m->v.arr)[0] && ((bool *)m->v.arr)[1]);
    m = loom_file_meta_find(f, "a.u64");
    CHECK(m && ((uint64_t *)m->v.arr)[0] == a_u64[0]);
    m = loom_file_meta_find(f, "a.str");
    CHECK(m && m->count == 3 && !strcmp(((char **)m->v.arr)[0], "a") && !strcmp(((char **)m->v.arr)[1], "") &&
          !strcmp(((char **)m->v.arr)[2], "ccc"));
    m = loom_file_meta_find(f, "a.nested");
    if (m && m->count == 2) {
        const loom_meta *sub = m->v.arr;
        CHECK(sub[0].elem_type == LOOM_META_I32 && sub[0].count == 2 && ((int32_t *)sub[0].v.arr)[1] == 6);
        CHECK(sub[1].elem_type == LOOM_META_STRING && !strcmp(((char **)sub[1].v.arr)[0], "deep"));
    }
    CHECK(loom_file_tensor_count(f) == nt);
    for (size_t i = 0; i < nt; i++) {
        const loom_file_tensor *t = loom_file_tensor_find(f, ts[i].name);
        CHECK_MSG(t != NULL, "%s", ts[i].name);
        if (!t) continue;
        CHECK(t == loom_file_tensor_at(f, (uint32_t)i));
        CHECK_MSG(t->type == ts[i].type && t->n_dims == ts[i].n_dims, "%s type %u", ts[i].name, t->type);
        for (int d = 0; d < 4; d++) CHECK_MSG(t->ne[d] == ts[i].ne[d], "%s ne[%d]", ts[i].name, d);
        CHECK(t->size == sizes[i] && t->offset % align == 0);
        CHECK(!memcmp(t->data, data[i], sizes[i]));
    }
    loom_file_close(f);
out:
    for (size_t i = 0; i < nt; i++) free(data[i]);
    unlink(path);
}

/* Files written by llama.cpp's Python writer (package gguf) via scripts/make_fuzz_corpus.py: the
 * facts below are the values that script passes to the writer. */
static void test_python_written(const char *name, uint32_t alignment) {
    char path[1024], err[256] = "";
    snprintf(path, sizeof path, "%s/gguf/%s", LOOM_FORMATS_CORPUS, name);
    loom_file *f = NULL;
    CHECK_MSG(loom_file_open(path, &f, err, sizeof err) == LOOM_OK, "%s: %s", name, err);
    if (!f) return;
    int64_t iv;
    double dv;
    const char *sv;
    CHECK(loom_file_meta_string(f, "general.architecture", &sv) == LOOM_OK && !strcmp(sv, "llama"));
    CHECK(loom_file_meta_int(f, "t.u8", &iv) == LOOM_OK && iv == 200);
    CHECK(loom_file_meta_int(f, "t.i16", &iv) == LOOM_OK && iv == -30000);
    CHECK(loom_file_meta_int(f, "t.u32", &iv) == LOOM_OK && iv == 4000000000ll);
    CHECK(loom_file_meta_int(f, "t.i64", &iv) == LOOM_OK && iv == INT64_MIN);
    CHECK(loom_file_meta_find(f, "t.u64") && loom_file_meta_find(f, "t.u64")->v.u64 == UINT64_MAX);
    CHECK(loom_file_meta_float(f, "t.f32", &dv) == LOOM_OK && dv == 1.5);
    CHECK(loom_file_meta_float(f, "t.f64", &dv) == LOOM_OK && dv == 1e-300);
    CHECK(loom_file_meta_int(f, "t.bool", &iv) == LOOM_OK && iv == 1);
    CHECK(loom_file_meta_string(f, "t.str", &sv) == LOOM_OK && !strcmp(sv, "h\xc3\xa9llo"));
    const loom_meta *m = loom_file_meta_find(f, "a.str");
    CHECK(m && m->elem_type == LOOM_META_STRING && m->count == 3 && !strcmp(((char **)m->v.arr)[2], "ccc"));
    m = loom_file_meta_find(f, "a.i32");
    CHECK(m && m->elem_type == LOOM_META_I32 && m->count == 3 && ((int32_t *)m->v.arr)[1] == -2);
    m = loom_file_meta_find(f, "a.nested");
    CHECK(m && m->elem_type == LOOM_META_ARRAY && m->count == 2);
    if (m && m->count == 2) CHECK(((loom_meta *)m->v.arr)[1].count == 1);
    if (alignment) CHECK(loom_file_meta_int(f, "general.alignment", &iv) == LOOM_OK && iv == alignment);
    struct {
        const char *name;
        uint32_t type;
        int64_t ne0, ne1;
        uint64_t size;
    } want[] = {{"q4_0", LOOM_TYPE_Q4_0, 32, 2, 36}, {"q4_1", LOOM_TYPE_Q4_1, 64, 1, 40},
                {"q8_0", LOOM_TYPE_Q8_0, 32, 1, 34}, {"q4_k", LOOM_TYPE_Q4_K, 256, 1, 144},
                {"q6_k", LOOM_TYPE_Q6_K, 256, 1, 210}, {"f32", LOOM_TYPE_F32, 3, 2, 24},
                {"f16", LOOM_TYPE_F16, 3, 1, 6},     {"bf16", LOOM_TYPE_BF16, 4, 1, 8},
                {"i8", LOOM_TYPE_I8, 3, 1, 3},       {"i16", LOOM_TYPE_I16, 2, 1, 4},
                {"i32", LOOM_TYPE_I32, 2, 1, 8},     {"i64", LOOM_TYPE_I64, 2, 1, 16},
                {"f64", LOOM_TYPE_F64, 2, 1, 16}};
    CHECK(loom_file_tensor_count(f) == sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const loom_file_tensor *t = loom_file_tensor_find(f, want[i].name);
        CHECK_MSG(t && t->type == want[i].type && t->ne[0] == want[i].ne0 && t->ne[1] == want[i].ne1 &&
                      t->size == want[i].size && t->offset % (alignment ? alignment : 32) == 0,
                  "%s %s", name, want[i].name);
    }
    float y[6];
    const loom_file_tensor *t = loom_file_tensor_find(f, "f32");
    CHECK(t && loom_dequantize_row(t->type, t->data, y, 6) == LOOM_OK && y[0] == 0 && y[5] == 5);
    t = loom_file_tensor_find(f, "f16");
    CHECK(t && loom_dequantize_row(t->type, t->data, y, 3) == LOOM_OK && y[0] == 1 && y[1] == -2 && y[2] == 0.5f);
    t = loom_file_tensor_find(f, "f64");
    CHECK(t && loom_dequantize_row(t->type, t->data, y, 2) == LOOM_OK && y[0] == 0.25f && y[1] == 2);
    t = loom_file_tensor_find(f, "i16");
    CHECK(t && loom_dequantize_row(t->type, t->data, y, 2) == LOOM_OK && y[0] == -1 && y[1] == 2);
    loom_file_close(f);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_test_gguf_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_hand_v2();
    test_writer_bytes();
    test_round_trip(0);
    test_round_trip(64);
    test_python_written("all_types.gguf", 0);
    test_python_written("all_types_align64.gguf", 64);
    rmdir(tmpdir);
    CHECK_DONE();
}
