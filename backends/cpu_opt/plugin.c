/*
 * plugin.c - the "cpu_opt" backend plugin: descriptor, options, devices, host-memory buffers,
 * supports_op, compute dispatch and weight preparation (repacking into tiles at load).
 */
#include "cpu_opt.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

static const loom_host_api *g_host;

/* ============================================================================================ */
/* Small shared helpers                                                                         */
/* ============================================================================================ */

void *co_scratch_get(co_scratch *s, size_t size) {
    if (size == 0) size = 64;
    if (s->size >= size) return s->ptr;
    size_t n = s->size ? s->size : 4096;
    while (n < size) n *= 2;
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) return NULL;
    free(s->ptr);
    s->ptr = p;
    s->size = n;
    return p;
}

void co_scratch_release(co_scratch *s) {
    free(s->ptr);
    s->ptr = NULL;
    s->size = 0;
}

loom_status co_error(co_device *dev, loom_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dev->err, sizeof dev->err, fmt, ap);
    va_end(ap);
    return status;
}

int co_is_contiguous(co_cview v) {
    size_t es = co_type_size(v->type);
    int64_t expect;
    if (es) {
        expect = (int64_t)es;
        if (v->nb[0] != expect) return 0;
        expect *= v->ne[0];
    } else {
        uint32_t bs = co_type_block_size(v->type);
        if (!bs || v->ne[0] % bs) return 0;
        if (v->nb[0] != (int64_t)co_type_block_bytes(v->type)) return 0;
        expect = (int64_t)co_type_row_bytes(v->type, v->ne[0]);
    }
    for (int d = 1; d < LOOM_MAX_DIMS; d++) {
        if (v->ne[d] > 1 && v->nb[d] != expect) return 0;
        expect *= v->ne[d];
    }
    return 1;
}

int co_rows_contiguous(co_cview v) {
    size_t es = co_type_size(v->type);
    if (es) return v->nb[0] == (int64_t)es;
    return v->nb[0] == (int64_t)co_type_block_bytes(v->type);
}

void co_kernels_for_isa(int isa, co_kernels *out) {
    out->isa = isa;
    out->fgemm = co_fgemm_scalar;
    out->qgemm = co_qgemm_scalar;
    out->quant_act = co_quant_act_scalar;
#if CO_X86_KERNELS
    if (isa >= CO_ISA_AVX2) {
        out->fgemm = co_fgemm_avx2;
        out->qgemm = co_qgemm_avx2;
        out->quant_act = co_quant_act_avx2;
    }
    if (isa >= CO_ISA_AVX512) {
        out->fgemm = co_fgemm_avx512;
        out->qgemm = co_qgemm_avx512;
        out->quant_act = co_quant_act_avx512;
    }
#endif
}

/* ============================================================================================ */
/* Options                                                                                      */
/* ============================================================================================ */

static const loom_option_def g_options[] = {
    {sizeof(loom_option_def), LOOM_OPT_STRING, "isa", "auto",
     "highest instruction set to use: auto, avx512, avx2 or scalar"},
    {sizeof(loom_option_def), LOOM_OPT_BOOL, "exact", "false",
     "exact float path for quantized weights (no int8 quantization of activations)"},
    {sizeof(loom_option_def), LOOM_OPT_STRING, "tune", "auto",
     "kernel variant choice: auto (measure once, cached in $XDG_CACHE_HOME/loom), off (defaults), force"},
    {sizeof(loom_option_def), LOOM_OPT_BOOL, "release_mapped", "true",
     "after repacking a weight, drop the pages of its read-only file mapping from memory"},
    {sizeof(loom_option_def), LOOM_OPT_INT, "spin", "50000",
     "pause loops (about 30 ns each) a worker spins before it sleeps"},
};
#define N_OPTIONS (sizeof g_options / sizeof g_options[0])

static int parse_bool(const char *v, int *out) {
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
        *out = 1;
        return 1;
    }
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
        *out = 0;
        return 1;
    }
    return 0;
}

static int parse_int(const char *v, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end) return 0;
    *out = x;
    return 1;
}

static int default_threads(void) {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ============================================================================================ */
/* Plugin and devices                                                                           */
/* ============================================================================================ */

static loom_status p_init(const loom_host_api *host, void **state, char *reason, size_t reason_size) {
    g_host = host;
    *state = NULL;
#if !defined(__x86_64__)
    (void)reason;
    (void)reason_size;
#else
    (void)reason;
    (void)reason_size;
#endif
    co_isa_detect();
    return LOOM_OK;
}

static void p_shutdown(void *state) { (void)state; }

static uint32_t b_device_count(void *state) {
    (void)state;
    return 1;
}

static loom_status b_device_info(void *state, uint32_t index, loom_device_info *out) {
    (void)state;
    if (index != 0 || !out || out->struct_size < offsetof(loom_device_info, description)) return LOOM_ERR_INVALID_ARGUMENT;
    const co_isa_info *in = co_isa_detect();
    uint32_t size = out->struct_size;
    memset(out, 0, size);
    out->struct_size = size;
    out->compute_units = (uint32_t)default_threads();
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    out->memory_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    out->max_alloc_bytes = 0;
    out->capabilities = LOOM_BACKEND_CAP_HOST_MEMORY;
    snprintf(out->name, sizeof out->name, "cpu_opt");
    if (LOOM_HAS_MEMBER(out, loom_device_info, description))
        snprintf(out->description, sizeof out->description, "optimised CPU (%s kernels): %s", co_isa_name(in->best),
                 in->summary);
    return LOOM_OK;
}

static void log_stub(int32_t level, const char *who, const char *fmt, ...) {
    (void)level;
    (void)who;
    (void)fmt;
}

static loom_status b_device_open(void *state, uint32_t index, const loom_kv_list *options, void **out) {
    (void)state;
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (index != 0) return LOOM_ERR_INVALID_ARGUMENT;
    co_device *dev = calloc(1, sizeof *dev);
    if (!dev) return LOOM_ERR_OUT_OF_MEMORY;
    static loom_host_api fallback_host;
    if (!g_host) {
        fallback_host.struct_size = sizeof fallback_host;
        fallback_host.log = log_stub;
    }
    dev->host = g_host ? g_host : &fallback_host;
    dev->n_threads = default_threads();
    dev->isa = co_isa_detect()->best;
    dev->exact = 0;
    dev->release_mapped = 1;
    dev->tune_mode = 1;
    long spin = 50000;
    const char *pre = "plugin." CO_NAME ".";
    size_t pl = strlen(pre);
    for (uint32_t i = 0; options && i < options->count; i++) {
        const char *k = options->keys[i], *v = options->values[i];
        if (!k || !v) continue;
        long x;
        if (!strcmp(k, "threads")) {
            if (!parse_int(v, &x) || x < 0) {
                dev->host->log(LOOM_LOG_WARN, CO_NAME, "ignoring threads=%s (not a count)", v);
                continue;
            }
            if (x > 0) dev->n_threads = (int)(x > CO_MAX_THREADS ? CO_MAX_THREADS : x);
            continue;
        }
        if (strncmp(k, pre, pl) != 0) continue;
        k += pl;
        int b;
        if (!strcmp(k, "isa")) {
            int isa = co_isa_parse(v);
            if (isa < 0) {
                free(dev);
                return LOOM_ERR_CONFIG;
            }
            if (isa > co_isa_detect()->best) {
                dev->host->log(LOOM_LOG_WARN, CO_NAME, "isa=%s is not available here; using %s", v,
                               co_isa_name(co_isa_detect()->best));
                isa = co_isa_detect()->best;
            }
            dev->isa = isa;
        } else if (!strcmp(k, "exact")) {
            if (!parse_bool(v, &b)) {
                free(dev);
                return LOOM_ERR_CONFIG;
            }
            dev->exact = b;
        } else if (!strcmp(k, "release_mapped")) {
            if (!parse_bool(v, &b)) {
                free(dev);
                return LOOM_ERR_CONFIG;
            }
            dev->release_mapped = b;
        } else if (!strcmp(k, "tune")) {
            if (!strcmp(v, "auto")) dev->tune_mode = 1;
            else if (!strcmp(v, "off")) dev->tune_mode = 0;
            else if (!strcmp(v, "force")) dev->tune_mode = 2;
            else {
                free(dev);
                return LOOM_ERR_CONFIG;
            }
        } else if (!strcmp(k, "spin")) {
            if (!parse_int(v, &x) || x < 0) {
                free(dev);
                return LOOM_ERR_CONFIG;
            }
            spin = x;
        }
    }
    for (int i = 0; i < CO_ISA_COUNT; i++) co_kernels_for_isa(i <= dev->isa ? i : dev->isa, &dev->kern[i]);
    for (int f = 0; f < CO_FAM_COUNT; f++) co_mm_defaults(dev->isa, f, &dev->mm[f]);
    dev->pool = co_pool_create(dev->n_threads, (int)spin);
    if (!dev->pool) {
        free(dev);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    dev->n_threads = co_pool_size(dev->pool);
    dev->host->log(LOOM_LOG_DEBUG, CO_NAME, "device open: %d threads, %s kernels%s", dev->n_threads,
                   co_isa_name(dev->isa), dev->exact ? ", exact" : "");
    *out = dev;
    return LOOM_OK;
}

static void b_device_close(void *p) {
    co_device *dev = p;
    if (!dev) return;
    co_pool_free(dev->pool);
    co_rope_cache_free(dev);
    co_scratch_release(&dev->shared);
    for (int i = 0; i < CO_MAX_THREADS; i++) co_scratch_release(&dev->local[i]);
    free(dev);
}

/* ============================================================================================ */
/* Buffers (host memory)                                                                        */
/* ============================================================================================ */

static loom_status b_buffer_alloc(void *p, uint64_t size, void **buffer, void **host_ptr) {
    co_device *dev = p;
    if (!buffer) return LOOM_ERR_INVALID_ARGUMENT;
    *buffer = NULL;
    if (host_ptr) *host_ptr = NULL;
    if (size > SIZE_MAX - 128) return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "buffer of %llu bytes", (unsigned long long)size);
    void *mem = aligned_alloc(64, ((size_t)size + 63) & ~(size_t)63);
    if (!mem && size) mem = NULL;
    if (!mem) return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "cannot allocate a buffer of %llu bytes", (unsigned long long)size);
    *buffer = mem;
    if (host_ptr) *host_ptr = mem;
    return LOOM_OK;
}

static void b_buffer_free(void *p, void *buffer) {
    (void)p;
    free(buffer);
}

static loom_status b_buffer_write(void *p, void *buffer, uint64_t offset, const void *src, uint64_t size) {
    (void)p;
    if (!buffer || (!src && size)) return LOOM_ERR_INVALID_ARGUMENT;
    memcpy((uint8_t *)buffer + offset, src, (size_t)size);
    return LOOM_OK;
}

static loom_status b_buffer_read(void *p, void *buffer, uint64_t offset, void *dst, uint64_t size) {
    (void)p;
    if (!buffer || (!dst && size)) return LOOM_ERR_INVALID_ARGUMENT;
    memcpy(dst, (const uint8_t *)buffer + offset, (size_t)size);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Ops                                                                                          */
/* ============================================================================================ */

static co_cview src_at(const loom_tensor_view *const *srcs, uint32_t n, uint32_t i) {
    return i < n ? srcs[i] : NULL;
}

static int32_t b_supports_op(void *p, const loom_op_params *params, const loom_tensor_view *dst,
                             const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    co_device *dev = p;
    if (!params || !dst || (n_srcs && !srcs)) return 0;
    if (!dst->data) return 0;
    for (uint32_t i = 0; i < n_srcs; i++)
        if (srcs[i] && !srcs[i]->data) return 0;
    switch (params->op) {
    case LOOM_OP_MATMUL: return n_srcs >= 2 && co_supports_matmul(dev, dst, srcs[0], srcs[1]);
    case LOOM_OP_GET_ROWS: return co_supports_get_rows(params, dst, srcs, n_srcs);
    case LOOM_OP_RMS_NORM: case LOOM_OP_LAYER_NORM: return co_supports_norm(params, dst, srcs, n_srcs);
    case LOOM_OP_ADD: case LOOM_OP_MUL: case LOOM_OP_SCALE: case LOOM_OP_SILU: case LOOM_OP_GELU:
    case LOOM_OP_SWIGLU: case LOOM_OP_WEIGHTED_SUM: return co_supports_elementwise(params, dst, srcs, n_srcs);
    case LOOM_OP_ROPE: return co_supports_rope(params, dst, srcs, n_srcs);
    case LOOM_OP_SOFTMAX: return co_supports_softmax(params, dst, srcs, n_srcs);
    case LOOM_OP_ATTENTION: return co_supports_attention(params, dst, srcs, n_srcs);
    case LOOM_OP_COPY: return co_supports_copy(params, dst, srcs, n_srcs);
    case LOOM_OP_HADAMARD: return co_supports_hadamard(params, dst, srcs, n_srcs);
    case LOOM_OP_GROUPED_SOFTMAX: return co_supports_grouped_softmax(params, dst, srcs, n_srcs);
    default: return 0;
    }
}

static loom_status b_compute(void *p, const loom_op_params *params, const loom_tensor_view *dst,
                             const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    co_device *dev = p;
    if (!dev || !params || !dst) return LOOM_ERR_INVALID_ARGUMENT;
    if (!b_supports_op(p, params, dst, srcs, n_srcs))
        return co_error(dev, LOOM_ERR_UNSUPPORTED, "op %u with these operand types or shapes is not supported by cpu_opt",
                        params->op);
    switch (params->op) {
    case LOOM_OP_MATMUL: return co_op_matmul(dev, dst, srcs[0], srcs[1]);
    case LOOM_OP_GET_ROWS: return co_op_get_rows(dev, dst, srcs[0], srcs[1]);
    case LOOM_OP_RMS_NORM: return co_op_rms_norm(dev, params, dst, srcs[0], src_at(srcs, n_srcs, 1));
    case LOOM_OP_LAYER_NORM:
        return co_op_layer_norm(dev, params, dst, srcs[0], src_at(srcs, n_srcs, 1), src_at(srcs, n_srcs, 2));
    case LOOM_OP_ADD: case LOOM_OP_MUL: case LOOM_OP_SCALE: case LOOM_OP_SILU: case LOOM_OP_GELU:
    case LOOM_OP_SWIGLU: case LOOM_OP_WEIGHTED_SUM: return co_op_elementwise(dev, params, dst, srcs, n_srcs);
    case LOOM_OP_ROPE: return co_op_rope(dev, params, dst, srcs[0], srcs[1]);
    case LOOM_OP_SOFTMAX: return co_op_softmax(dev, params, dst, srcs[0], src_at(srcs, n_srcs, 1));
    case LOOM_OP_ATTENTION: return co_op_attention(dev, params, dst, srcs[0], srcs[1], srcs[2]);
    case LOOM_OP_COPY: return co_op_copy(dev, dst, srcs[0]);
    case LOOM_OP_HADAMARD: return co_op_hadamard(dev, params, dst, srcs[0]);
    case LOOM_OP_GROUPED_SOFTMAX: return co_op_grouped_softmax(dev, params, dst, srcs[0], srcs[1]);
    default: return co_error(dev, LOOM_ERR_UNSUPPORTED, "op %u", params->op);
    }
}

/* ============================================================================================ */
/* Weights                                                                                      */
/* ============================================================================================ */

/* Non-zero when [addr, addr+len) lies inside one read-only, file-backed mapping (checked
 * each time: an address range can be unmapped and reused by anonymous memory). */
static int in_readonly_file_mapping(const void *addr, size_t len) {
#ifdef __linux__
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    uintptr_t a = (uintptr_t)addr, e = a + len;
    char line[1024];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        /* "lo-hi perms offset dev inode path" */
        char *p = line, *end;
        unsigned long lo = strtoul(p, &end, 16);
        if (*end != '-') continue;
        unsigned long hi = strtoul(end + 1, &end, 16);
        if (!(a >= lo && e <= hi)) continue;
        char perms[5] = {0};
        if (*end == ' ') memcpy(perms, end + 1, 4);
        /* skip perms, offset, dev to the inode */
        p = end;
        for (int field = 0; field < 3 && p; field++) p = strchr(p + 1, ' ');
        unsigned long inode = p ? strtoul(p + 1, NULL, 10) : 0;
        ok = inode != 0 && perms[0] == 'r' && perms[1] != 'w';
        break;
    }
    fclose(f);
    return ok;
#else
    (void)addr;
    (void)len;
    return 0;
#endif
}

typedef struct pack_job {
    const loom_tensor_view *w;
    co_weight *cw;
    int64_t n_items; /* n_mat * n_tiles */
    int release;     /* drop source pages as soon as they are packed */
    uintptr_t page;
} pack_job;

/* Drop the whole pages inside [a, a + n) of a read-only file mapping. */
static void drop_pages(uintptr_t a, size_t n, uintptr_t page) {
    uintptr_t lo = (a + page - 1) & ~(page - 1), hi = (a + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void pack_task(void *arg, int64_t i0, int64_t i1, int ith) {
    (void)ith;
    pack_job *j = arg;
    co_weight *cw = j->cw;
    for (int64_t it = i0; it < i1; it++) {
        int64_t mat = it / cw->n_tiles, t = it % cw->n_tiles;
        int64_t m2 = mat % cw->ne2, m3 = mat / cw->ne2;
        const uint8_t *src = (const uint8_t *)j->w->data + m2 * j->w->nb[2] + m3 * j->w->nb[3] + t * CO_TILE * j->w->nb[1];
        int64_t row0 = t * CO_TILE;
        int nr = (int)(cw->N - row0 < CO_TILE ? cw->N - row0 : CO_TILE);
        co_tile_pack(cw->type, src, j->w->nb[1], nr, cw->K, cw->data + (size_t)mat * cw->mat_bytes + (size_t)t * cw->tile_bytes);
    }
    if (j->release) {
        /* Contiguous source: items [i0, i1) cover bytes [i0, i1) * 16 rows (the last tile of a
         * matrix may be partial; its end is the matrix end). Keeps the peak near one copy. */
        size_t rb = (size_t)j->w->nb[1];
        size_t mat_src = rb * (size_t)cw->N;
        int64_t m0 = i0 / cw->n_tiles, m1 = (i1 - 1) / cw->n_tiles;
        size_t b0 = (size_t)m0 * mat_src + (size_t)(i0 % cw->n_tiles) * CO_TILE * rb;
        int64_t last_row = ((i1 - 1) % cw->n_tiles + 1) * CO_TILE;
        if (last_row > cw->N) last_row = cw->N;
        size_t b1 = (size_t)m1 * mat_src + (size_t)last_row * rb;
        drop_pages((uintptr_t)j->w->data + b0, b1 - b0, j->page);
    }
}

static loom_status b_weight_prepare(void *p, const loom_tensor_view *w, void **extra) {
    co_device *dev = p;
    if (!dev || !w || !extra) return LOOM_ERR_INVALID_ARGUMENT;
    *extra = NULL;
    /* Only matrices the tile kernels can use; anything else stays as it is. */
    if (!w->data || !co_tile_type_ok(w->type, w->ne[0]) || w->ne[1] < CO_TILE) return LOOM_OK;
    if (w->nb[0] != (int64_t)co_type_block_bytes(w->type)) return LOOM_OK;
    co_weight *cw = calloc(1, sizeof *cw);
    if (!cw) return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "weight_prepare: out of memory");
    cw->type = w->type;
    cw->K = w->ne[0];
    cw->N = w->ne[1];
    cw->ne2 = w->ne[2];
    cw->n_mat = w->ne[2] * w->ne[3];
    cw->n_tiles = (cw->N + CO_TILE - 1) / CO_TILE;
    cw->tile_bytes = co_tile_bytes(cw->type, cw->K);
    cw->mat_bytes = cw->tile_bytes * (size_t)cw->n_tiles;
    size_t total = cw->mat_bytes * (size_t)cw->n_mat;
    long psz = sysconf(_SC_PAGESIZE);
    size_t map = (total + (size_t)psz - 1) & ~((size_t)psz - 1);
    void *mem = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        free(cw);
        return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "weight_prepare: cannot map %zu bytes", total);
    }
#ifdef MADV_HUGEPAGE
    if (map >= (2u << 20)) madvise(mem, map, MADV_HUGEPAGE);
#endif
    cw->data = mem;
    cw->map_size = map;
    /* The tiles replace the file's bytes for this backend: the kernel may drop the mapped pages
     * (a later reader faults them in again from the file), chunk by chunk while packing. */
    pack_job j = {w, cw, cw->n_mat * cw->n_tiles, 0, (uintptr_t)psz};
    size_t bytes = (size_t)co_type_row_bytes(w->type, w->ne[0]) * (size_t)(w->ne[1] * w->ne[2] * w->ne[3]);
    if (dev->release_mapped && (w->flags & LOOM_TENSOR_WEIGHT) && co_is_contiguous(w) &&
        in_readonly_file_mapping(w->data, bytes))
        j.release = 1;
    /* Chunks of about 1 MiB of source so that little of the original is resident at once. */
    int64_t chunk = (int64_t)((1u << 20) / ((size_t)w->nb[1] * CO_TILE + 1)) + 1;
    co_parallel_for(dev->pool, dev->n_threads, j.n_items, chunk, pack_task, &j);
    if (j.release) drop_pages((uintptr_t)w->data, bytes, (uintptr_t)psz); /* pages shared by two chunks */
    co_tune_family(dev, co_family_of_type(cw->type));
    dev->host->log(LOOM_LOG_DEBUG, CO_NAME, "weight %p [%lld x %lld x %lld] type %u repacked: %zu bytes%s", w->data,
                   (long long)cw->K, (long long)cw->N, (long long)cw->n_mat, cw->type, total,
                   j.release ? ", mapped pages released" : "");
    *extra = cw;
    return LOOM_OK;
}

static void b_weight_release(void *p, void *extra) {
    (void)p;
    co_weight *cw = extra;
    if (!cw) return;
    if (cw->data) munmap(cw->data, cw->map_size);
    free(cw);
}

static const char *b_last_error(void *p) {
    co_device *dev = p;
    return dev && dev->err[0] ? dev->err : NULL;
}

/* ============================================================================================ */
/* Descriptor                                                                                   */
/* ============================================================================================ */

static const loom_backend_api g_api = {
    sizeof(loom_backend_api), b_device_count, b_device_info, b_device_open, b_device_close, b_supports_op,
    b_buffer_alloc,           b_buffer_free,  b_buffer_write, b_buffer_read,  b_compute,      NULL,
    b_weight_prepare,         b_weight_release, b_last_error,
};

static const loom_plugin_desc g_desc = {
    sizeof(loom_plugin_desc),
    LOOM_ABI_MAJOR,
    LOOM_ABI_MINOR,
    LOOM_PLUGIN_KIND_BACKEND,
    (uint32_t)N_OPTIONS,
    CO_NAME,
    "0.1.0",
    "Loom",
    "optimised CPU backend: thread pool, run-time ISA dispatch (AVX2, AVX-512 VNNI), repacked weights",
    LOOM_BACKEND_CAP_HOST_MEMORY,
    g_options,
    &g_api,
    p_init,
    p_shutdown,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);
LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    (void)host;
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR) return NULL;
    return &g_desc;
}
