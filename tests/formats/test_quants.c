/*
 * test_quants.c - type traits, fp16/bf16 conversion and the reference (de)quantisers against
 * hand-computed values. Every expected number below was worked out by hand from the block
 * layouts in ../shared/docs/formats.md (the derivation is in the comments), not produced by Loom.
 */
#include "internal.h"

#include "check.h"

#include <math.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void test_traits(void) {
    const loom_type_traits *t = loom_type_get_traits(LOOM_TYPE_Q4_1);
    CHECK(t && !strcmp(t->name, "q4_1") && t->block_size == 32 && t->block_bytes == 20 && t->quantized);
    CHECK(loom_type_get_traits(LOOM_TYPE_Q6_K)->block_bytes == 210);
    CHECK(loom_type_get_traits(LOOM_TYPE_Q4_K)->block_bytes == 144);
    CHECK(loom_type_get_traits(LOOM_TYPE_Q8_0)->block_bytes == 34);
    CHECK(loom_type_get_traits(LOOM_TYPE_Q4_0)->block_bytes == 18);
    CHECK(loom_type_get_traits(LOOM_TYPE_BF16)->block_bytes == 2);
    for (uint32_t i = 0; i < LOOM_TYPE_COUNT; i++) CHECK(loom_type_get_traits(i) != NULL);
    CHECK(loom_type_get_traits(LOOM_TYPE_COUNT) == NULL);
    CHECK(loom_type_get_traits(9999) == NULL);
    CHECK(!strcmp(loom_type_name(LOOM_TYPE_Q4_K), "q4_k") && !strcmp(loom_type_name(9999), "unknown"));
    CHECK(loom_type_row_bytes(LOOM_TYPE_Q4_1, 64) == 40);
    CHECK(loom_type_row_bytes(LOOM_TYPE_Q4_K, 512) == 288);
    CHECK(loom_type_row_bytes(LOOM_TYPE_Q4_K, 100) == 0);
    CHECK(loom_type_row_bytes(LOOM_TYPE_F32, 3) == 12);
    CHECK(loom_type_row_bytes(LOOM_TYPE_I4X2, 6) == 3);
    CHECK(loom_type_row_bytes(LOOM_TYPE_I4X2, 5) == 0);
    CHECK(loom_type_row_bytes(LOOM_TYPE_F32, -1) == 0);
}

static void test_fp16(void) {
    /* IEEE half: sign 1, exponent 5 (bias 15), mantissa 10 */
    CHECK(loom_fp16_to_fp32(0x3C00) == 1.0f);
    CHECK(loom_fp16_to_fp32(0xC000) == -2.0f);
    CHECK(loom_fp16_to_fp32(0x3800) == 0.5f);
    CHECK(loom_fp16_to_fp32(0x7BFF) == 65504.0f);
    CHECK(loom_fp16_to_fp32(0x0001) == 0x1p-24f);   /* smallest subnormal */
    CHECK(loom_fp16_to_fp32(0x03FF) == 1023 * 0x1p-24f); /* largest subnormal */
    CHECK(loom_fp16_to_fp32(0x0400) == 0x1p-14f);   /* smallest normal */
    CHECK(loom_fp16_to_fp32(0x2E66) == 0.0999755859375f);
    CHECK(isinf(loom_fp16_to_fp32(0x7C00)) && loom_fp16_to_fp32(0x7C00) > 0);
    CHECK(isinf(loom_fp16_to_fp32(0xFC00)) && loom_fp16_to_fp32(0xFC00) < 0);
    CHECK(isnan(loom_fp16_to_fp32(0x7E00)));
    CHECK(signbit(loom_fp16_to_fp32(0x8000)) && loom_fp16_to_fp32(0x8000) == 0.0f);

    CHECK(loom_fp32_to_fp16(1.0f) == 0x3C00);
    CHECK(loom_fp32_to_fp16(-2.0f) == 0xC000);
    CHECK(loom_fp32_to_fp16(0.1f) == 0x2E66); /* 0.1 = 1.6 * 2^-4: mantissa 0.6*1024 = 614.4 -> 614 = 0x266 */
    CHECK(loom_fp32_to_fp16(65504.0f) == 0x7BFF);
    CHECK(loom_fp32_to_fp16(65519.0f) == 0x7BFF); /* below the midpoint 65520 */
    CHECK(loom_fp32_to_fp16(65520.0f) == 0x7C00); /* midpoint: ties to even (65536 = inf) */
    CHECK(loom_fp32_to_fp16(1e9f) == 0x7C00);
    CHECK(loom_fp32_to_fp16(1.0f + 0x1p-11f) == 0x3C00);     /* tie between 0x3C00 and 0x3C01 -> even */
    CHECK(loom_fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3C02); /* tie between 0x3C01 and 0x3C02 -> even */
    CHECK(loom_fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3C01); /* above the tie */
    CHECK(loom_fp32_to_fp16(0x1p-24f) == 0x0001);
    CHECK(loom_fp32_to_fp16(0x1p-25f) == 0x0000);     /* half of the smallest subnormal: tie -> 0 */
    CHECK(loom_fp32_to_fp16(3 * 0x1p-25f) == 0x0002); /* 1.5 units: tie -> 2 */
    CHECK(loom_fp32_to_fp16(0x1p-26f) == 0x0000);
    CHECK(loom_fp32_to_fp16(1023.5f * 0x1p-24f) == 0x0400); /* rounds up into the smallest normal */
    CHECK(loom_fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(loom_fp32_to_fp16(INFINITY) == 0x7C00);
    CHECK(loom_fp32_to_fp16(-INFINITY) == 0xFC00);
    uint16_t hn = loom_fp32_to_fp16(NAN);
    CHECK((hn & 0x7C00) == 0x7C00 && (hn & 0x03FF) != 0);
    /* every half converts to float and back unchanged (except nan payloads) */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;
        if (loom_fp32_to_fp16(loom_fp16_to_fp32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0);

    /* bfloat16: the top 16 bits of a float */
    CHECK(loom_bf16_to_fp32(0x3F80) == 1.0f);
    CHECK(loom_bf16_to_fp32(0xC040) == -3.0f);
    CHECK(loom_fp32_to_bf16(1.0f) == 0x3F80);
    CHECK(loom_fp32_to_bf16(1.0f + 0x1p-8f) == 0x3F80);     /* tie -> even */
    CHECK(loom_fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82); /* tie -> even */
    CHECK(loom_fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81);
    CHECK(loom_fp32_to_bf16(INFINITY) == 0x7F80);
    uint16_t bn = loom_fp32_to_bf16(NAN);
    CHECK((bn & 0x7F80) == 0x7F80 && (bn & 0x7F) != 0);
}

static void test_dequant_small(void) {
    float y[256];
    /* Q8_0: d = 0.5 (0x3800), q_j = j - 16 -> x_j = (j - 16) / 2 */
    uint8_t q8[34];
    put16(q8, 0x3800);
    for (int j = 0; j < 32; j++) q8[2 + j] = (uint8_t)(int8_t)(j - 16);
    CHECK(loom_dequantize_row(LOOM_TYPE_Q8_0, q8, y, 32) == LOOM_OK);
    CHECK(y[0] == -8.0f && y[1] == -7.5f && y[16] == 0.0f && y[31] == 7.5f);

    /* Q4_0: d = 1.0, byte j = j | (15 - j) << 4 -> x_j = j - 8, x_{j+16} = 7 - j */
    uint8_t q40[18];
    put16(q40, 0x3C00);
    for (int j = 0; j < 16; j++) q40[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK(loom_dequantize_row(LOOM_TYPE_Q4_0, q40, y, 32) == LOOM_OK);
    CHECK(y[0] == -8.0f && y[15] == 7.0f && y[16] == 7.0f && y[31] == -8.0f && y[5] == -3.0f && y[21] == 2.0f);

    /* Q4_1: d = 0.5, m = -1.0 (0xBC00), same nibbles -> x_j = j * 0.5 - 1 */
    uint8_t q41[20];
    put16(q41, 0x3800);
    put16(q41 + 2, 0xBC00);
    for (int j = 0; j < 16; j++) q41[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK(loom_dequantize_row(LOOM_TYPE_Q4_1, q41, y, 32) == LOOM_OK);
    CHECK(y[0] == -1.0f && y[15] == 6.5f && y[16] == 6.5f && y[31] == -1.0f && y[4] == 1.0f);

    /* F16 / BF16 rows */
    uint8_t h[4];
    put16(h, 0x3C00);
    put16(h + 2, 0xC000);
    CHECK(loom_dequantize_row(LOOM_TYPE_F16, h, y, 2) == LOOM_OK && y[0] == 1.0f && y[1] == -2.0f);
    put16(h, 0x3F80);
    put16(h + 2, 0xC040);
    CHECK(loom_dequantize_row(LOOM_TYPE_BF16, h, y, 2) == LOOM_OK && y[0] == 1.0f && y[1] == -3.0f);
    /* integers */
    uint8_t i8[2] = {0xFF, 0x7F};
    CHECK(loom_dequantize_row(LOOM_TYPE_I8, i8, y, 2) == LOOM_OK && y[0] == -1.0f && y[1] == 127.0f);
    CHECK(loom_dequantize_row(LOOM_TYPE_U8, i8, y, 2) == LOOM_OK && y[0] == 255.0f && y[1] == 127.0f);
    uint8_t i4[2] = {0x8F, 0x71}; /* low nibble first: F = -1, 8 = -8, 1 = 1, 7 = 7 */
    CHECK(loom_dequantize_row(LOOM_TYPE_I4X2, i4, y, 4) == LOOM_OK && y[0] == -1.0f && y[1] == -8.0f &&
          y[2] == 1.0f && y[3] == 7.0f);
    int32_t i32[2] = {-5, 1 << 20};
    CHECK(loom_dequantize_row(LOOM_TYPE_I32, i32, y, 2) == LOOM_OK && y[0] == -5.0f && y[1] == 1048576.0f);
    /* bad arguments */
    CHECK(loom_dequantize_row(LOOM_TYPE_Q4_0, q40, y, 31) == LOOM_ERR_INVALID_ARGUMENT);
    CHECK(loom_dequantize_row(9999, q40, y, 32) == LOOM_ERR_INVALID_ARGUMENT);
}

static void test_dequant_q4_k(void) {
    /* d = 1.0, dmin = 0.5; sub-block scales sc = {1,2,3,4,17,33,50,63}, mins m = {0,1,2,3,20,40,5,63}
     * packed by hand: bytes 0-3 = sc0..3 | top2(sc4..7) << 6, bytes 4-7 = m0..3 | top2(m4..7) << 6,
     * bytes 8-11 = low4(sc4..7) | low4(m4..7) << 4. */
    uint8_t b[144];
    put16(b, 0x3C00);
    put16(b + 2, 0x3800);
    const uint8_t scales[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x81, 0x02, 0xC3, 0x41, 0x81, 0x52, 0xFF};
    memcpy(b + 4, scales, 12);
    /* qs[k]: low nibble k % 16, high nibble (k / 8) % 16 */
    for (int k = 0; k < 128; k++) b[16 + k] = (uint8_t)((k % 16) | (((k / 8) % 16) << 4));
    float y[256];
    CHECK(loom_dequantize_row(LOOM_TYPE_Q4_K, b, y, 256) == LOOM_OK);
    /* element e: group g = e / 64 uses bytes qs[32g..32g+32); the first 32 take low nibbles with
     * sub-block 2g, the next 32 high nibbles with sub-block 2g+1; y = d*sc*q - dmin*m */
    CHECK(y[0] == 0.0f);    /* q = 0, sc 1, m 0 */
    CHECK(y[5] == 5.0f);    /* q = 5: 1*5 - 0 */
    CHECK(y[40] == 1.5f);   /* qs[8] >> 4 = 1, sub 1 (sc 2, m 1): 2 - 0.5 */
    CHECK(y[100] == 14.5f); /* qs[36] >> 4 = 4, sub 3 (4, 3): 16 - 1.5 */
    CHECK(y[130] == 24.0f); /* qs[66] & 15 = 2, sub 4 (17, 20): 34 - 10 */
    CHECK(y[191] == 343.0f); /* qs[95] >> 4 = 11, sub 5 (33, 40): 363 - 20 */
    CHECK(y[200] == 397.5f); /* qs[104] & 15 = 8, sub 6 (50, 5): 400 - 2.5 */
    CHECK(y[255] == 913.5f); /* qs[127] >> 4 = 15, sub 7 (63, 63): 945 - 31.5 */
}

static void test_dequant_q6_k(void) {
    /* ql[k] = k, qh[k] = 7k mod 256, scales[i] = i - 8, d = 0.25 (0x3400) at byte 208.
     * element e: half h = e / 128, w = e % 128, quarter = w / 32, l = w % 32;
     * low 4 bits: quarter 0 ql[64h+l] & 15, 1 ql[64h+l+32] & 15, 2 ql[64h+l] >> 4, 3 ql[64h+l+32] >> 4;
     * high 2 bits: qh[32h+l] >> 2*quarter; scale sc[8h + l/16 + 2*quarter]; y = d*sc*(q-32). */
    uint8_t b[210];
    for (int k = 0; k < 128; k++) b[k] = (uint8_t)k;
    for (int k = 0; k < 64; k++) b[128 + k] = (uint8_t)(7 * k);
    for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)(int8_t)(i - 8);
    put16(b + 208, 0x3400);
    float y[256];
    CHECK(loom_dequantize_row(LOOM_TYPE_Q6_K, b, y, 256) == LOOM_OK);
    CHECK(y[0] == 64.0f);    /* q = 0 -> -32, sc[0] = -8: 0.25*-8*-32 */
    CHECK(y[33] == 22.5f);   /* ql[33]&15 = 1, qh[1] = 7 -> bits 2-3 = 1: q = 17 -> -15; sc[2] = -6 */
    CHECK(y[77] == 16.0f);   /* ql[13]>>4 = 0, qh[13] = 91 -> bits 4-5 = 1: q = 16 -> -16; sc[4] = -4 */
    CHECK(y[127] == -4.75f); /* ql[63]>>4 = 3, qh[31] = 217 -> bits 6-7 = 3: q = 51 -> 19; sc[7] = -1 */
    CHECK(y[150] == 1.5f);   /* ql[86]&15 = 6, qh[54] = 122 -> bits 0-1 = 2: q = 38 -> 6; sc[9] = 1 */
    CHECK(y[255] == 12.25f); /* ql[127]>>4 = 7, qh[63] = 185 -> bits 6-7 = 2: q = 39 -> 7; sc[15] = 7 */
}

static void test_quantize(void) {
    float x[32];
    /* Q8_0: x_j = j - 16; amax 16, d = 16/127 -> fp16 0x3008 (0.125 * (1 + 8/1024)); id = 127/16 =
     * 7.9375; q_j = round((j - 16) * 7.9375) */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t q8[34];
    CHECK(loom_quantize_row(LOOM_TYPE_Q8_0, x, q8, 32) == LOOM_OK);
    CHECK(q8[0] == 0x08 && q8[1] == 0x30);
    CHECK((int8_t)q8[2 + 0] == -127);  /* -16 * 7.9375 */
    CHECK((int8_t)q8[2 + 1] == -119);  /* -119.0625 */
    CHECK((int8_t)q8[2 + 15] == -8);   /* -7.9375 */
    CHECK((int8_t)q8[2 + 16] == 0);
    CHECK((int8_t)q8[2 + 17] == 8);    /* 7.9375 */
    CHECK((int8_t)q8[2 + 20] == 32);   /* 31.75 */
    CHECK((int8_t)q8[2 + 31] == 119);  /* 119.0625 */

    /* Q4_0: x_j = j - 8 (j < 16), 0 otherwise. Largest magnitude -8 -> d = -8 / -8 = 1, id = 1,
     * q = trunc(x + 8.5) -> j for j < 16, 8 for the zeros. */
    for (int j = 0; j < 32; j++) x[j] = j < 16 ? (float)(j - 8) : 0.0f;
    uint8_t q40[18];
    CHECK(loom_quantize_row(LOOM_TYPE_Q4_0, x, q40, 32) == LOOM_OK);
    CHECK(q40[0] == 0x00 && q40[1] == 0x3C);
    for (int j = 0; j < 16; j++) CHECK(q40[2 + j] == (uint8_t)(j | (8 << 4)));
    /* positive extreme: x0 = 8 -> d = -1, id = -1: q0 = trunc(-8 + 8.5) = 0; x1 = -7 -> 7 + 8.5 -> 15 */
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    x[0] = 8.0f;
    x[1] = -7.0f;
    CHECK(loom_quantize_row(LOOM_TYPE_Q4_0, x, q40, 32) == LOOM_OK);
    CHECK(q40[0] == 0x00 && q40[1] == 0xBC); /* -1.0 */
    CHECK((q40[2] & 15) == 0 && (q40[3] & 15) == 15 && (q40[4] & 15) == 8);

    /* Q4_1: x_j = j/2 - 1: min -1, max 14.5, d = 15.5/15 = 1.0333 -> fp16 1 + 34/1024 = 0x3C22;
     * m = -1 = 0xBC00; id = 15/15.5; q_j = trunc(j/2 * 0.967742 + 0.5) */
    for (int j = 0; j < 32; j++) x[j] = (float)j * 0.5f - 1.0f;
    uint8_t q41[20];
    CHECK(loom_quantize_row(LOOM_TYPE_Q4_1, x, q41, 32) == LOOM_OK);
    CHECK(q41[0] == 0x22 && q41[1] == 0x3C && q41[2] == 0x00 && q41[3] == 0xBC);
    CHECK((q41[4 + 0] & 15) == 0);  /* j = 0: 0.5 -> 0 */
    CHECK((q41[4 + 1] & 15) == 0);  /* j = 1: 0.984 -> 0 */
    CHECK((q41[4 + 2] & 15) == 1);  /* j = 2: 1.468 -> 1 */
    CHECK((q41[4 + 10] & 15) == 5); /* j = 10: 5.339 -> 5 */
    CHECK((q41[4 + 4] >> 4) == 10); /* j = 20: 10.177 -> 10 */
    CHECK((q41[4 + 15] >> 4) == 15); /* j = 31: 15.5 -> 15 */

    /* all-zero blocks: d = 0 and every q at the zero point */
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    CHECK(loom_quantize_row(LOOM_TYPE_Q8_0, x, q8, 32) == LOOM_OK && q8[0] == 0 && q8[1] == 0 && q8[10] == 0);
    CHECK(loom_quantize_row(LOOM_TYPE_Q4_0, x, q40, 32) == LOOM_OK && q40[2] == 0x88);

    /* F16 / BF16 rows are little-endian halves */
    float f[2] = {1.0f, -2.0f};
    uint8_t h[4];
    CHECK(loom_quantize_row(LOOM_TYPE_F16, f, h, 2) == LOOM_OK && h[0] == 0x00 && h[1] == 0x3C && h[3] == 0xC0);
    CHECK(loom_quantize_row(LOOM_TYPE_BF16, f, h, 2) == LOOM_OK && h[0] == 0x80 && h[1] == 0x3F && h[3] == 0xC0);

    /* non-finite input and bad sizes are refused; unsupported targets say so */
    x[3] = NAN;
    CHECK(loom_quantize_row(LOOM_TYPE_Q8_0, x, q8, 32) == LOOM_ERR_INVALID_ARGUMENT);
    CHECK(loom_quantize_row(LOOM_TYPE_Q8_0, x, q8, 16) == LOOM_ERR_INVALID_ARGUMENT);
    uint8_t big[210];
    float z[256] = {0};
    CHECK(loom_quantize_row(LOOM_TYPE_Q6_K, z, big, 256) == LOOM_ERR_UNSUPPORTED);
    /* a subnormal scale (inverse scale infinite) must not be undefined behaviour */
    for (int j = 0; j < 32; j++) x[j] = j ? 0x1p-140f : -0x1p-140f;
    CHECK(loom_quantize_row(LOOM_TYPE_Q8_0, x, q8, 32) == LOOM_OK);
    CHECK(loom_quantize_row(LOOM_TYPE_Q4_0, x, q40, 32) == LOOM_OK);
    CHECK(loom_quantize_row(LOOM_TYPE_Q4_1, x, q41, 32) == LOOM_OK);
}

static size_t unhex(const char *h, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (; h[0] && h[1] && n < cap; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) break;
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* Bit-exact agreement with llama.cpp's reference routines as ported in the `gguf` Python package
 * (fixtures/quant_ref.txt, written by scripts/quant_reference.py). */
static void test_against_gguf_py(void) {
    FILE *f = fopen(LOOM_FORMATS_FIXTURES "/quant_ref.txt", "r");
    CHECK(f != NULL);
    if (!f) return;
    static char line[1 << 16];
    static uint8_t a[1 << 14], b[1 << 14], mine[1 << 14];
    int n_quant = 0, n_deq = 0;
    while (fgets(line, sizeof line, f)) {
        char kind[16], type[16];
        int n, off = 0;
        if (sscanf(line, "%15s %15s %d %n", kind, type, &n, &off) != 3) continue;
        char *h1 = line + off, *tab = strchr(h1, '\t');
        if (!tab) continue;
        *tab = 0;
        size_t na = unhex(h1, a, sizeof a), nb = unhex(tab + 1, b, sizeof b);
        uint32_t t = UINT32_MAX;
        for (uint32_t i = 0; i < LOOM_TYPE_COUNT; i++)
            if (!strcmp(loom_type_get_traits(i)->name, type)) t = i;
        CHECK(t != UINT32_MAX);
        if (t == UINT32_MAX) continue;
        if (!strcmp(kind, "quant")) {
            CHECK(na == (size_t)n * 4 && nb == loom_type_row_bytes(t, n));
            float x[1024];
            memcpy(x, a, na);
            CHECK(loom_quantize_row(t, x, mine, n) == LOOM_OK);
            CHECK_MSG(!memcmp(mine, b, nb), "%s quantisation of %d values differs from gguf-py", type, n);
            n_quant++;
        } else {
            CHECK(nb == (size_t)n * 4 && na == loom_type_row_bytes(t, n));
            float y[1024];
            CHECK(loom_dequantize_row(t, a, y, n) == LOOM_OK);
            int bad = 0;
            for (int i = 0; i < n; i++) {
                float want;
                memcpy(&want, b + 4 * i, 4);
                if (memcmp(&want, &y[i], 4) && bad++ < 3)
                    fprintf(stderr, "%s[%d] = %.9g, gguf-py %.9g\n", type, i, (double)y[i], (double)want);
            }
            CHECK_MSG(bad == 0, "%s: %d of %d dequantised values differ", type, bad, n);
            n_deq++;
        }
    }
    fclose(f);
    CHECK(n_quant == 15 && n_deq == 2);
}

int main(void) {
    test_traits();
    test_fp16();
    test_dequant_small();
    test_dequant_q4_k();
    test_dequant_q6_k();
    test_quantize();
    test_against_gguf_py();
    CHECK_DONE();
}
