/*
 * copy.c - COPY (type conversion between possibly strided views of the same element count;
 * KV-cache writes) and GET_ROWS (embedding lookup, also from quantized and repacked tables).
 */
#include "cpu_opt.h"

#include <stdlib.h>

static int plain_float(uint32_t t) { return t == LOOM_TYPE_F32 || t == LOOM_TYPE_F16 || t == LOOM_TYPE_BF16; }

static int same_shape(co_cview a, co_cview b) {
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (a->ne[d] != b->ne[d]) return 0;
    return 1;
}

int co_supports_copy(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    (void)p;
    if (n < 1 || !src[0]) return 0;
    co_cview s = src[0];
    if (!co_rows_contiguous(s) || !co_rows_contiguous(dst)) return 0;
    if (co_nelem(s) != co_nelem(dst)) return 0;
    if (s->type == LOOM_TYPE_I32 || dst->type == LOOM_TYPE_I32) return s->type == dst->type;
    if (!plain_float(s->type)) return 0;
    if (plain_float(dst->type)) return 1;
    /* Quantized destinations: same shape, whole blocks per row. */
    if (!co_quant_row_ok(dst->type) || !same_shape(s, dst)) return 0;
    return dst->ne[0] % (int64_t)co_type_block_size(dst->type) == 0;
}

static void to_f32(uint32_t type, const void *src, float *dst, int64_t n) {
    if (type == LOOM_TYPE_F32) memcpy(dst, src, (size_t)n * 4);
    else if (type == LOOM_TYPE_F16) co_f16_to_f32_row(src, dst, n);
    else co_dequant_row(type, src, dst, n);
}

static void from_f32(uint32_t type, const float *src, void *dst, int64_t n) {
    if (type == LOOM_TYPE_F32) memcpy(dst, src, (size_t)n * 4);
    else if (type == LOOM_TYPE_F16) co_f32_to_f16_row(src, dst, n);
    else co_quant_row(type, src, dst, n);
}

static uint8_t *elem_ptr(co_cview v, int64_t flat) {
    int64_t i0 = flat % v->ne[0];
    flat /= v->ne[0];
    int64_t i1 = flat % v->ne[1];
    flat /= v->ne[1];
    int64_t i2 = flat % v->ne[2], i3 = flat / v->ne[2];
    return (uint8_t *)v->data + i0 * v->nb[0] + i1 * v->nb[1] + i2 * v->nb[2] + i3 * v->nb[3];
}

loom_status co_op_copy(co_device *dev, co_cview dst, co_cview src) {
    int64_t n0 = src->ne[0];
    if (src->ne[0] == dst->ne[0]) { /* equal rows: row r of one is row r of the other */
        float *tmp = co_scratch_get(&dev->local[0], (size_t)n0 * sizeof(float));
        if (!tmp) return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "copy: out of memory");
        int64_t rows = co_nrows(src);
        for (int64_t r = 0; r < rows; r++) {
            int64_t i1 = r % src->ne[1], i2 = (r / src->ne[1]) % src->ne[2], i3 = r / (src->ne[1] * src->ne[2]);
            const uint8_t *s = (const uint8_t *)src->data + i1 * src->nb[1] + i2 * src->nb[2] + i3 * src->nb[3];
            int64_t j1 = r % dst->ne[1], j2 = (r / dst->ne[1]) % dst->ne[2], j3 = r / (dst->ne[1] * dst->ne[2]);
            uint8_t *d = (uint8_t *)dst->data + j1 * dst->nb[1] + j2 * dst->nb[2] + j3 * dst->nb[3];
            if (src->type == dst->type) {
                memmove(d, s, (size_t)n0 * co_type_size(src->type));
            } else if (src->type == LOOM_TYPE_F32) {
                from_f32(dst->type, (const float *)(const void *)s, d, n0);
            } else {
                to_f32(src->type, s, tmp, n0);
                from_f32(dst->type, tmp, d, n0);
            }
        }
        return LOOM_OK;
    }
    /* Reshaping copy between plain types: element by element in logical order. */
    int64_t n = co_nelem(src);
    size_t ss = co_type_size(src->type);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *s = elem_ptr(src, i);
        uint8_t *d = elem_ptr(dst, i);
        if (src->type == dst->type) {
            memcpy(d, s, ss);
        } else {
            float v;
            to_f32(src->type, s, &v, 1);
            from_f32(dst->type, &v, d, 1);
        }
    }
    return LOOM_OK;
}

int co_supports_get_rows(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    (void)p;
    if (n < 2 || !src[0] || !src[1]) return 0;
    co_cview t = src[0], ids = src[1];
    if (!co_type_dequant_ok(t->type) || !co_rows_contiguous(t)) return 0;
    if (t->ne[0] % (int64_t)co_type_block_size(t->type)) return 0;
    if (ids->type != LOOM_TYPE_I32 || ids->nb[0] != 4 || ids->ne[3] != 1) return 0;
    if (dst->type != LOOM_TYPE_F32 || dst->nb[0] != 4 || dst->ne[0] != t->ne[0]) return 0;
    if (dst->ne[1] != ids->ne[0] || dst->ne[2] != ids->ne[1] || dst->ne[3] != ids->ne[2]) return 0;
    if (t->ne[2] != 1 || t->ne[3] != 1) return 0;
    return 1;
}

loom_status co_op_get_rows(co_device *dev, co_cview dst, co_cview table, co_cview ids) {
    const co_weight *cw = (const co_weight *)table->extra;
    if (cw && (cw->K != table->ne[0] || cw->N != table->ne[1] || cw->type != table->type)) cw = NULL;
    int64_t n = ids->ne[0] * ids->ne[1] * ids->ne[2];
    for (int64_t i = 0; i < n; i++) {
        int64_t i0 = i % ids->ne[0], i1 = (i / ids->ne[0]) % ids->ne[1], i2 = i / (ids->ne[0] * ids->ne[1]);
        int64_t r = *(const int32_t *)(const void *)((const uint8_t *)ids->data + i0 * 4 + i1 * ids->nb[1] + i2 * ids->nb[2]);
        if (r < 0 || r >= table->ne[1])
            return co_error(dev, LOOM_ERR_INVALID_ARGUMENT, "get_rows: id %lld at %lld is outside the table's %lld rows",
                            (long long)r, (long long)i, (long long)table->ne[1]);
        float *d = co_row_f32(dst, i0, i1, i2);
        if (cw)
            co_tile_row_f32(cw->type, cw->data + (size_t)(r / CO_TILE) * cw->tile_bytes, cw->K, (int)(r % CO_TILE), d);
        else if (table->type == LOOM_TYPE_F16)
            co_f16_to_f32_row((const uint16_t *)(const void *)((const uint8_t *)table->data + r * table->nb[1]), d,
                              table->ne[0]);
        else
            co_dequant_row(table->type, (const uint8_t *)table->data + r * table->nb[1], d, table->ne[0]);
    }
    return LOOM_OK;
}
