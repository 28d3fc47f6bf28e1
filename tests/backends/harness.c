/*
 * harness.c - see harness.h.
 */
#include "harness.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#ifndef LOOM_TEST_PLUGIN_DIR
#error "LOOM_TEST_PLUGIN_DIR must be defined"
#endif

/* ============================================================================================ */
/* Host table                                                                                   */
/* ============================================================================================ */

static char last_log[1024];

const char *hb_last_log(void) { return last_log; }

static void host_log(int32_t level, const char *who, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (level <= LOOM_LOG_WARN) snprintf(last_log, sizeof last_log, "%s", msg);
    if (level > LOOM_LOG_WARN && getenv("LOOM_TEST_VERBOSE") == NULL) return;
    fprintf(stderr, "[%s] %s\n", who != NULL ? who : "?", msg);
}

static void *host_alloc(size_t size) { return malloc(size); }

static void host_free(void *ptr) { free(ptr); }

static const loom_host_api host_table = {
    .struct_size = sizeof(loom_host_api),
    .abi_version = LOOM_ABI_VERSION,
    .log = host_log,
    .alloc = host_alloc,
    .free = host_free,
};

/* ============================================================================================ */
/* Plugins and devices                                                                          */
/* ============================================================================================ */

int hb_load(const char *name, hb_plugin *out) {
    char path[1024];
    loom_plugin_entry_fn entry;
    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/loom-backend-%s.so", LOOM_TEST_PLUGIN_DIR, name);
    out->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (out->handle == NULL) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    *(void **)&entry = dlsym(out->handle, LOOM_PLUGIN_ENTRY_SYMBOL);
    HB_CHECK(entry != NULL, "%s has no entry symbol", path);
    out->desc = entry(LOOM_ABI_VERSION, &host_table);
    HB_CHECK(out->desc != NULL, "%s refused the host ABI", path);
    HB_CHECK(out->desc->kind == LOOM_PLUGIN_KIND_BACKEND, "not a backend");
    HB_CHECK(strcmp(out->desc->name, name) == 0, "plugin name %s", out->desc->name);
    out->api = out->desc->api;
    HB_CHECK(out->api != NULL && out->api->struct_size >= sizeof(loom_backend_api), "backend table too small");
    out->init_status = out->desc->init(&host_table, &out->state, out->reason, sizeof out->reason);
    return 0;
}

void hb_unload(hb_plugin *p) {
    if (p->desc != NULL && p->desc->shutdown != NULL && p->init_status == LOOM_OK) p->desc->shutdown(p->state);
    /* LOOM_TEST_KEEP_PLUGINS keeps plugins mapped so that leak reports can name their frames. */
    if (p->handle != NULL && getenv("LOOM_TEST_KEEP_PLUGINS") == NULL) dlclose(p->handle);
    memset(p, 0, sizeof *p);
}

loom_status hb_open(hb_plugin *p, uint32_t index, void **dev, ...) {
    const char *keys[32], *values[32];
    loom_kv_list kv = {sizeof(loom_kv_list), 0, keys, values};
    va_list ap;
    va_start(ap, dev);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL || kv.count == 32) break;
        keys[kv.count] = k;
        values[kv.count] = va_arg(ap, const char *);
        kv.count++;
    }
    va_end(ap);
    return p->api->device_open(p->state, index, &kv, dev);
}

/* ============================================================================================ */
/* Tensors                                                                                      */
/* ============================================================================================ */

int64_t hb_block_size(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_Q8_0:
    case LOOM_TYPE_Q4_0:
    case LOOM_TYPE_Q4_1: return 32;
    case LOOM_TYPE_Q4_K:
    case LOOM_TYPE_Q6_K: return 256;
    default: return 1;
    }
}

static uint64_t block_bytes(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32:
    case LOOM_TYPE_I32: return 4;
    case LOOM_TYPE_F16:
    case LOOM_TYPE_BF16: return 2;
    case LOOM_TYPE_Q8_0: return 34;
    case LOOM_TYPE_Q4_0: return 18;
    case LOOM_TYPE_Q4_1: return 20;
    case LOOM_TYPE_Q4_K: return 144;
    case LOOM_TYPE_Q6_K: return 210;
    default: HB_CHECK(0, "type %u not handled by the harness", (unsigned)type); return 0;
    }
}

uint64_t hb_row_bytes(uint32_t type, int64_t n) { return (uint64_t)(n / hb_block_size(type)) * block_bytes(type); }

static void set_contiguous(loom_tensor_view *v, uint32_t type, const int64_t ne[4]) {
    v->struct_size = sizeof *v;
    v->type = type;
    for (int i = 0; i < 4; i++)
        v->ne[i] = ne[i];
    v->nb[0] = (int64_t)block_bytes(type);
    v->nb[1] = (int64_t)hb_row_bytes(type, ne[0]);
    v->nb[2] = v->nb[1] * ne[1];
    v->nb[3] = v->nb[2] * ne[2];
}

hb_tensor *hb_buffer_new(hb_plugin *p, void *dev, uint64_t bytes) {
    hb_tensor *t = calloc(1, sizeof *t);
    loom_status rc;
    HB_CHECK(t != NULL, "oom");
    t->p = p;
    t->dev = dev;
    t->bytes = bytes;
    t->own = 1;
    rc = p->api->buffer_alloc(dev, bytes, &t->buffer, &t->host_ptr);
    HB_CHECK(rc == LOOM_OK, "buffer_alloc(%llu) failed: %d %s", (unsigned long long)bytes, rc,
             p->api->last_error ? p->api->last_error(dev) : "");
    t->v.struct_size = sizeof t->v;
    t->v.buffer = t->buffer;
    t->v.data = t->host_ptr;
    return t;
}

hb_tensor *hb_tensor_new(hb_plugin *p, void *dev, uint32_t type, const int64_t ne[4]) {
    uint64_t bytes = hb_row_bytes(type, ne[0]) * (uint64_t)(ne[1] * ne[2] * ne[3]);
    hb_tensor *t = hb_buffer_new(p, dev, bytes);
    set_contiguous(&t->v, type, ne);
    return t;
}

hb_tensor *hb_view(hb_tensor *base, uint32_t type, const int64_t ne[4], const int64_t *nb, uint64_t offset) {
    hb_tensor *t = calloc(1, sizeof *t);
    HB_CHECK(t != NULL, "oom");
    *t = *base;
    t->own = 0;
    set_contiguous(&t->v, type, ne);
    if (nb != NULL)
        for (int i = 0; i < 4; i++)
            t->v.nb[i] = nb[i];
    t->v.offset = base->v.offset + offset;
    t->v.buffer = base->buffer;
    t->v.data = base->host_ptr != NULL ? (char *)base->host_ptr + t->v.offset : NULL;
    return t;
}

void hb_tensor_free(hb_tensor *t) {
    if (t == NULL) return;
    if (t->own) t->p->api->buffer_free(t->dev, t->buffer);
    free(t);
}

void hb_write(hb_tensor *t, uint64_t offset, const void *src, uint64_t size) {
    loom_status rc = t->p->api->buffer_write(t->dev, t->buffer, t->v.offset + offset, src, size);
    HB_CHECK(rc == LOOM_OK, "buffer_write failed: %d", rc);
}

void hb_read(hb_tensor *t, uint64_t offset, void *dst, uint64_t size) {
    loom_status rc;
    if (t->p->api->synchronize != NULL) t->p->api->synchronize(t->dev);
    rc = t->p->api->buffer_read(t->dev, t->buffer, t->v.offset + offset, dst, size);
    HB_CHECK(rc == LOOM_OK, "buffer_read failed: %d", rc);
}

static void fill_params(loom_op_params *pp, uint32_t op, const int32_t *i, const float *f) {
    memset(pp, 0, sizeof *pp);
    pp->struct_size = sizeof *pp;
    pp->op = op;
    for (int k = 0; k < 8; k++) {
        pp->i[k] = i != NULL ? i[k] : 0;
        pp->f[k] = f != NULL ? f[k] : 0.0f;
    }
}

int32_t hb_supports(hb_plugin *p, void *dev, uint32_t op, const int32_t *i, const float *f, hb_tensor *dst,
                    hb_tensor *s0, hb_tensor *s1, hb_tensor *s2) {
    loom_op_params pp;
    const loom_tensor_view *srcs[3] = {s0 ? &s0->v : NULL, s1 ? &s1->v : NULL, s2 ? &s2->v : NULL};
    uint32_t n = s2 ? 3 : s1 ? 2 : 1;
    fill_params(&pp, op, i, f);
    return p->api->supports_op(dev, &pp, &dst->v, srcs, n);
}

loom_status hb_op(hb_plugin *p, void *dev, uint32_t op, const int32_t *i, const float *f, hb_tensor *dst, hb_tensor *s0,
                  hb_tensor *s1, hb_tensor *s2) {
    loom_op_params pp;
    const loom_tensor_view *srcs[3] = {s0 ? &s0->v : NULL, s1 ? &s1->v : NULL, s2 ? &s2->v : NULL};
    uint32_t n = s2 ? 3 : s1 ? 2 : 1;
    loom_status rc;
    fill_params(&pp, op, i, f);
    rc = p->api->compute(dev, &pp, &dst->v, srcs, n);
    if (rc == LOOM_OK && p->api->synchronize != NULL) rc = p->api->synchronize(dev);
    if (rc != LOOM_OK && p->api->last_error != NULL && getenv("LOOM_TEST_VERBOSE") != NULL)
        fprintf(stderr, "op %u: %s\n", (unsigned)op, p->api->last_error(dev) ? p->api->last_error(dev) : "");
    return rc;
}

/* ============================================================================================ */
/* Data                                                                                         */
/* ============================================================================================ */

static unsigned long long rng_state = 12345;

void hb_seed(unsigned s) { rng_state = s * 2654435761ull + 1; }

float hb_rand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

uint16_t hb_f32_to_f16(float f) {
    uint32_t x;
    uint32_t sign, mant;
    int32_t exp;
    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u;
    exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        uint32_t m, shift, r, half;
        if (exp < -10) return (uint16_t)sign;
        m = mant | 0x800000u;
        shift = (uint32_t)(14 - exp);
        r = m >> shift;
        half = 1u << (shift - 1);
        if ((m & ((1u << shift) - 1)) > half || ((m & ((1u << shift) - 1)) == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    {
        uint32_t r = ((uint32_t)exp << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
}

float hb_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    float f;
    if (exp == 0) {
        f = ldexpf((float)mant, -24);
        return sign ? -f : f;
    }
    if (exp == 31) {
        uint32_t x = sign | 0x7f800000u | (mant << 13);
        memcpy(&f, &x, 4);
        return f;
    }
    {
        uint32_t x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
        memcpy(&f, &x, 4);
        return f;
    }
}

uint16_t hb_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float hb_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }

static uint16_t get16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void hb_encode(uint32_t type, const float *src, void *dst, int64_t n) {
    unsigned char *o = dst;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            put16(o + 2 * i, hb_f32_to_f16(src[i]));
        return;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            put16(o + 2 * i, hb_f32_to_bf16(src[i]));
        return;
    default: break;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        const float *x = src + 32 * b;
        float amax = 0, mx = 0, lo = x[0], hi = x[0];
        for (int i = 0; i < 32; i++) {
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                mx = x[i];
            }
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
        }
        if (type == LOOM_TYPE_Q8_0) {
            float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0;
            put16(o, hb_f32_to_f16(d));
            for (int i = 0; i < 32; i++)
                o[2 + i] = (unsigned char)(signed char)lrintf(x[i] * id);
            o += 34;
        } else if (type == LOOM_TYPE_Q4_0) {
            float d = mx / -8.0f, id = d != 0 ? 1.0f / d : 0;
            put16(o, hb_f32_to_f16(d));
            for (int j = 0; j < 16; j++) {
                int q0 = (int)(x[j] * id + 8.5f), q1 = (int)(x[j + 16] * id + 8.5f);
                q0 = q0 < 0 ? 0 : q0 > 15 ? 15 : q0;
                q1 = q1 < 0 ? 0 : q1 > 15 ? 15 : q1;
                o[2 + j] = (unsigned char)(q0 | (q1 << 4));
            }
            o += 18;
        } else if (type == LOOM_TYPE_Q4_1) {
            float d = (hi - lo) / 15.0f, id = d != 0 ? 1.0f / d : 0;
            put16(o, hb_f32_to_f16(d));
            put16(o + 2, hb_f32_to_f16(lo));
            for (int j = 0; j < 16; j++) {
                int q0 = (int)((x[j] - lo) * id + 0.5f), q1 = (int)((x[j + 16] - lo) * id + 0.5f);
                q0 = q0 < 0 ? 0 : q0 > 15 ? 15 : q0;
                q1 = q1 < 0 ? 0 : q1 > 15 ? 15 : q1;
                o[4 + j] = (unsigned char)(q0 | (q1 << 4));
            }
            o += 20;
        } else {
            HB_CHECK(0, "cannot encode type %u", (unsigned)type);
        }
    }
}

void hb_decode(uint32_t type, const void *src, float *dst, int64_t n) {
    const unsigned char *p = src;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = hb_f16_to_f32(get16(p + 2 * i));
        return;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = hb_bf16_to_f32(get16(p + 2 * i));
        return;
    default: break;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        float *y = dst + 32 * b;
        float d = hb_f16_to_f32(get16(p));
        if (type == LOOM_TYPE_Q8_0) {
            for (int i = 0; i < 32; i++)
                y[i] = d * (float)(signed char)p[2 + i];
            p += 34;
        } else if (type == LOOM_TYPE_Q4_0) {
            for (int j = 0; j < 16; j++) {
                y[j] = d * (float)((p[2 + j] & 15) - 8);
                y[j + 16] = d * (float)((p[2 + j] >> 4) - 8);
            }
            p += 18;
        } else if (type == LOOM_TYPE_Q4_1) {
            float m = hb_f16_to_f32(get16(p + 2));
            for (int j = 0; j < 16; j++) {
                y[j] = d * (float)(p[4 + j] & 15) + m;
                y[j + 16] = d * (float)(p[4 + j] >> 4) + m;
            }
            p += 20;
        } else {
            HB_CHECK(0, "cannot decode type %u", (unsigned)type);
        }
    }
}

int hb_close(const char *what, const float *got, const double *want, int64_t n, double atol, double rtol) {
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - want[i]), tol = atol + rtol * fabs(want[i]);
        double err = diff == 0 ? 0 : diff / tol; /* tol 0: exact match required */
        if (!(err <= worst)) {                   /* also catches NaN */
            worst = isnan(err) ? HUGE_VAL : err;
            at = i;
        }
    }
    if (worst > 1.0) {
        fprintf(stderr, "%s: mismatch at %lld: got %.8g want %.8g (error %.3g of tolerance)\n", what, (long long)at,
                (double)got[at], want[at], worst);
        return 0;
    }
    return 1;
}
