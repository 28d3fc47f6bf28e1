/*
 * exec.c - execution scopes: the devices a context runs on, its tensors (persistent, scratch,
 * views), per-device copies of weights, and op dispatch with fallback to the CPU reference.
 *
 * Where bytes live. A tensor's `device` is -1 for host memory (wrapped weights) or the index of
 * the exec device whose buffer holds it. Tensors created by an exec live on its preferred device
 * (device 0). A device with LOOM_BACKEND_CAP_HOST_MEMORY reads any host-addressable tensor in
 * place; anything else is copied ("staged") into that device's per-op transfer arena before the
 * op and, for the destination, copied back after it. Weights are uploaded once per exec and
 * device (and prepared with weight_prepare when the backend offers it).
 *
 * Memory. Scratch tensors and their structs come from grow-and-reuse arenas that are reset at
 * the end of each forward pass: after the first pass of a given shape nothing is allocated.
 *
 * Dispatch. An op runs on the first device whose supports_op accepts it; the CPU reference is
 * always the last device. Each (op, operand types, device) is counted for the placement report.
 */
#include "internal.h"

#include "../backends/common/loom_backend_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_MIN_CHUNK ((uint64_t)1 << 20)
#define ARENA_ALIGN     64u
#define TENSOR_BLOCK    256u

/* ============================================================================================ */
/* Types                                                                                        */
/* ============================================================================================ */

typedef struct arena_chunk {
    void *buffer; /* backend buffer, or the malloc'd block for the host arena */
    char *host;   /* host address of the chunk, or NULL for device memory */
    uint64_t size;
} arena_chunk;

/* A bump allocator over chunks of one device (dev == NULL: host memory). */
typedef struct exec_arena {
    struct exec_device *dev;
    arena_chunk *chunks;
    uint32_t n_chunks;
    uint32_t cap_chunks;
    uint64_t used; /* bytes used in the last chunk */
} exec_arena;

typedef struct exec_device {
    const loom_plugin_rec *plugin;
    const loom_backend_api *api;
    void *dev;
    uint32_t index; /* device index inside its plugin */
    bool host_memory;
    bool pending; /* work may be queued (asynchronous backend) */
    char name[80];
    exec_arena scratch;  /* scratch tensors of the forward pass */
    exec_arena transfer; /* staged operands of one op */
    uint64_t bytes_in;   /* staged into this device */
    uint64_t bytes_out;  /* copied back from it */
} exec_device;

typedef struct weight_entry {
    const loom_tensor *root; /* NULL = empty slot */
    const void *data;        /* root's host data and shape when uploaded (a stale entry is replaced) */
    uint32_t type;
    int64_t ne[LOOM_MAX_DIMS];
    int32_t device;
    void *buffer; /* device copy (non-host devices), or NULL */
    void *extra;  /* from weight_prepare, or NULL */
} weight_entry;

typedef struct persist_entry {
    loom_tensor *tensor;
    void *buffer;
    int32_t device;
} persist_entry;

typedef struct placement_entry {
    uint32_t op;
    uint32_t n_types;
    uint32_t types[LOOM_MAX_SRC + 1]; /* dst, srcs */
    int32_t device;
    uint64_t count;
} placement_entry;

struct loom_exec {
    loom_engine *engine;
    exec_device *devices;
    uint32_t n_devices;
    exec_arena host_transfer; /* host bounce buffer between two device-memory devices */

    loom_tensor **blocks; /* scratch tensor structs, TENSOR_BLOCK per block */
    uint32_t n_blocks;
    uint64_t n_scratch;

    persist_entry *persist;
    uint32_t n_persist, cap_persist;

    weight_entry *weights; /* open addressing, cap_weights a power of two */
    uint32_t n_weights, cap_weights;

    placement_entry *placement;
    uint32_t n_placement, cap_placement;
    int32_t last_device;
    char *report;

    char last_error[1024];
};

/* ============================================================================================ */
/* Errors                                                                                       */
/* ============================================================================================ */

static void exec_verror(loom_exec *exec, const char *fmt, va_list ap) LOOM_PRINTF(2, 0);
static void exec_verror(loom_exec *exec, const char *fmt, va_list ap) {
    vsnprintf(exec->last_error, sizeof exec->last_error, fmt, ap);
}

static loom_status exec_fail(loom_exec *exec, loom_status status, const char *fmt, ...) LOOM_PRINTF(3, 4);
static loom_status exec_fail(loom_exec *exec, loom_status status, const char *fmt, ...) {
    if (exec) {
        va_list ap;
        va_start(ap, fmt);
        exec_verror(exec, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *loom_host_exec_last_error(const loom_exec *exec) {
    if (!exec) return "no execution scope";
    return exec->last_error;
}

void loom_host_exec_set_error(loom_exec *exec, const char *fmt, ...) {
    if (!exec || !fmt) return;
    va_list ap;
    va_start(ap, fmt);
    exec_verror(exec, fmt, ap);
    va_end(ap);
}

/* The device's own error text after a failed call, or the status text. */
static const char *device_error(const exec_device *d, loom_status st) {
    const char *e = d->api->last_error ? d->api->last_error(d->dev) : NULL;
    return e && e[0] ? e : loom_status_string(st);
}

/* ============================================================================================ */
/* Arenas                                                                                       */
/* ============================================================================================ */

static loom_status chunk_alloc(exec_device *dev, uint64_t size, arena_chunk *out) {
    out->size = size;
    if (!dev) {
        if (size > (uint64_t)SIZE_MAX) return LOOM_ERR_OUT_OF_MEMORY;
        out->host = aligned_alloc(ARENA_ALIGN, (size_t)size);
        out->buffer = out->host;
        return out->host ? LOOM_OK : LOOM_ERR_OUT_OF_MEMORY;
    }
    void *host = NULL;
    loom_status st = dev->api->buffer_alloc(dev->dev, size, &out->buffer, &host);
    if (st != LOOM_OK) return st;
    out->host = dev->host_memory ? host : NULL;
    if (dev->host_memory && !host) {
        dev->api->buffer_free(dev->dev, out->buffer);
        return LOOM_ERR_PLUGIN;
    }
    return LOOM_OK;
}

static void chunk_free(exec_device *dev, arena_chunk *c) {
    if (!dev)
        free(c->buffer);
    else if (c->buffer)
        dev->api->buffer_free(dev->dev, c->buffer);
    c->buffer = NULL;
    c->host = NULL;
}

/* Reserve `size` bytes: *buffer and *offset locate them, *host their address (or NULL). */
static loom_status arena_alloc(exec_arena *a, uint64_t size, void **buffer, uint64_t *offset, char **host) {
    if (size == 0) size = 1;
    uint64_t start = (a->used + ARENA_ALIGN - 1) & ~(uint64_t)(ARENA_ALIGN - 1);
    if (a->n_chunks == 0 || start + size > a->chunks[a->n_chunks - 1].size) {
        uint64_t grow = a->n_chunks ? a->chunks[a->n_chunks - 1].size * 2 : ARENA_MIN_CHUNK;
        uint64_t csize = size > grow ? size : grow;
        csize = (csize + ARENA_ALIGN - 1) & ~(uint64_t)(ARENA_ALIGN - 1);
        if (a->n_chunks == a->cap_chunks) {
            uint32_t cap = a->cap_chunks ? a->cap_chunks * 2 : 4;
            arena_chunk *c = realloc(a->chunks, cap * sizeof *c);
            if (!c) return LOOM_ERR_OUT_OF_MEMORY;
            a->chunks = c;
            a->cap_chunks = cap;
        }
        loom_status st = chunk_alloc(a->dev, csize, &a->chunks[a->n_chunks]);
        if (st != LOOM_OK) return st;
        a->n_chunks++;
        start = 0;
    }
    arena_chunk *c = &a->chunks[a->n_chunks - 1];
    a->used = start + size;
    *buffer = c->buffer;
    *offset = start;
    *host = c->host ? c->host + start : NULL;
    return LOOM_OK;
}

/* Forget every allocation. When the last round needed several chunks they are replaced by one
 * chunk as large as all of them, so the next round of the same size allocates nothing. */
static void arena_reset(exec_arena *a) {
    if (a->n_chunks > 1) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < a->n_chunks; i++) {
            total += a->chunks[i].size;
            chunk_free(a->dev, &a->chunks[i]);
        }
        a->n_chunks = 0;
        if (chunk_alloc(a->dev, total, &a->chunks[0]) == LOOM_OK) a->n_chunks = 1;
    }
    a->used = 0;
}

static void arena_free(exec_arena *a) {
    for (uint32_t i = 0; i < a->n_chunks; i++)
        chunk_free(a->dev, &a->chunks[i]);
    free(a->chunks);
    a->chunks = NULL;
    a->n_chunks = a->cap_chunks = 0;
    a->used = 0;
}

/* ============================================================================================ */
/* Tensors                                                                                      */
/* ============================================================================================ */

static void contiguous_strides(uint32_t type, const int64_t *ne, int64_t *nb) {
    nb[0] = lbu_type_block_bytes(type);
    nb[1] = nb[0] * (ne[0] / lbu_type_block_size(type));
    for (int d = 2; d < LOOM_MAX_DIMS; d++)
        nb[d] = nb[d - 1] * ne[d - 1];
}

/* Check type and shape; fill the full 4-D shape. Returns a message or NULL. */
static const char *check_shape(uint32_t type, uint32_t n_dims, const int64_t *ne, int64_t *full, uint64_t *bytes) {
    if (lbu_type_block_size(type) == 0) return "unknown data type";
    if (n_dims < 1 || n_dims > LOOM_MAX_DIMS) return "n_dims must be 1 to 4";
    if (!ne) return "missing shape";
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        full[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    uint64_t count = 1;
    for (int d = 0; d < LOOM_MAX_DIMS; d++) {
        if (full[d] <= 0) return "every dimension must be positive";
        if (full[d] > ((int64_t)1 << 40) || count > ((uint64_t)1 << 50) / (uint64_t)full[d]) return "tensor too large";
        count *= (uint64_t)full[d];
    }
    if (full[0] % lbu_type_block_size(type) != 0) return "ne[0] is not a multiple of the type's block size";
    *bytes = count / (uint64_t)lbu_type_block_size(type) * (uint64_t)lbu_type_block_bytes(type);
    return NULL;
}

static void tensor_init(loom_tensor *t, uint32_t type, uint32_t n_dims, const int64_t *full, uint32_t flags) {
    memset(t, 0, sizeof *t);
    t->view.struct_size = sizeof t->view;
    t->view.type = type;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        t->view.ne[d] = full[d];
    contiguous_strides(type, full, t->view.nb);
    t->view.flags = flags;
    t->n_dims = n_dims;
    t->flags = flags;
    t->device = -1;
    t->name = "";
}

loom_status loom_tensor_wrap_host(const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne, const void *data,
                                  uint32_t flags, loom_tensor **out) {
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int64_t full[LOOM_MAX_DIMS];
    uint64_t bytes;
    if (!data || check_shape(type, n_dims, ne, full, &bytes)) return LOOM_ERR_INVALID_ARGUMENT;
    loom_tensor *t = malloc(sizeof *t);
    if (!t) return LOOM_ERR_OUT_OF_MEMORY;
    tensor_init(t, type, n_dims, full, flags);
    t->view.data = (void *)(uintptr_t)data; /* weights are never written: ops refuse them as dst */
    t->name = name ? name : "";
    *out = t;
    return LOOM_OK;
}

void loom_tensor_free_wrapped(loom_tensor *tensor) { free(tensor); }

static const loom_tensor *root_of(const loom_tensor *t) { return t->base ? t->base : t; }

/* Byte offset of t's element 0 inside its root's memory. */
static uint64_t offset_in_root(const loom_tensor *t) {
    const loom_tensor *r = root_of(t);
    if (r->view.data) return (uint64_t)((const char *)t->view.data - (const char *)r->view.data);
    return t->view.offset - r->view.offset;
}

static uint64_t root_bytes(const loom_tensor *r) { return lbu_view_extent(&r->view); }

/* True when the tensor's bytes are host-addressable (view.data valid). */
static bool on_host(const loom_exec *exec, const loom_tensor *t) {
    return t->device < 0 || exec->devices[t->device].host_memory;
}

/* The tensor belongs to this exec or is a host tensor shared by everyone (weights). */
static bool usable_in(const loom_exec *exec, const loom_tensor *t) {
    const loom_tensor *r = root_of(t);
    if (r->owner == exec) return true;
    return r->device < 0 && r->view.data != NULL;
}

/* Host weights not owned by the exec (the model's mapping) are never written. */
static bool read_only(const loom_exec *exec, const loom_tensor *t) {
    const loom_tensor *r = root_of(t);
    return (r->flags & LOOM_TENSOR_WEIGHT) && r->owner != exec;
}

static void weight_forget(loom_exec *exec, const loom_tensor *root);

static loom_tensor *scratch_struct(loom_exec *exec) {
    uint64_t block = exec->n_scratch / TENSOR_BLOCK;
    if (block >= exec->n_blocks) {
        loom_tensor **b = realloc(exec->blocks, (exec->n_blocks + 1) * sizeof *b);
        if (!b) return NULL;
        exec->blocks = b;
        b[exec->n_blocks] = malloc(TENSOR_BLOCK * sizeof(loom_tensor));
        if (!b[exec->n_blocks]) return NULL;
        exec->n_blocks++;
    }
    loom_tensor *t = &exec->blocks[block][exec->n_scratch % TENSOR_BLOCK];
    exec->n_scratch++;
    return t;
}

loom_status loom_host_tensor_new(loom_exec *exec, uint32_t type, uint32_t n_dims, const int64_t *ne, uint32_t flags,
                                 loom_tensor **out) {
    if (out) *out = NULL;
    if (!exec || !out) return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_new: missing exec or out");
    int64_t full[LOOM_MAX_DIMS];
    uint64_t bytes;
    const char *why = check_shape(type, n_dims, ne, full, &bytes);
    if (why) return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_new: %s", why);
    exec_device *dev = &exec->devices[0];
    loom_status st;
    if (flags & LOOM_TENSOR_PERSISTENT) {
        if (exec->n_persist == exec->cap_persist) {
            uint32_t cap = exec->cap_persist ? exec->cap_persist * 2 : 16;
            persist_entry *p = realloc(exec->persist, cap * sizeof *p);
            if (!p) return exec_fail(exec, LOOM_ERR_OUT_OF_MEMORY, "tensor_new: out of memory");
            exec->persist = p;
            exec->cap_persist = cap;
        }
        loom_tensor *t = malloc(sizeof *t);
        if (!t) return exec_fail(exec, LOOM_ERR_OUT_OF_MEMORY, "tensor_new: out of memory");
        tensor_init(t, type, n_dims, full, flags);
        void *buffer = NULL, *host = NULL;
        st = dev->api->buffer_alloc(dev->dev, bytes, &buffer, &host);
        if (st != LOOM_OK) {
            free(t);
            return exec_fail(exec, st, "tensor_new: %s cannot allocate %llu bytes: %s", dev->name,
                             (unsigned long long)bytes, device_error(dev, st));
        }
        t->view.buffer = buffer;
        t->view.data = dev->host_memory ? host : NULL;
        t->device = 0;
        t->owner = exec;
        exec->persist[exec->n_persist++] = (persist_entry){t, buffer, 0};
        *out = t;
        return LOOM_OK;
    }
    loom_tensor *t = scratch_struct(exec);
    if (!t) return exec_fail(exec, LOOM_ERR_OUT_OF_MEMORY, "tensor_new: out of memory");
    tensor_init(t, type, n_dims, full, flags);
    char *host = NULL;
    st = arena_alloc(&dev->scratch, bytes, &t->view.buffer, &t->view.offset, &host);
    if (st != LOOM_OK) {
        exec->n_scratch--;
        return exec_fail(exec, st, "tensor_new: %s cannot allocate %llu bytes of scratch", dev->name,
                         (unsigned long long)bytes);
    }
    t->view.data = host;
    t->device = 0;
    t->owner = exec;
    *out = t;
    return LOOM_OK;
}

loom_status loom_host_tensor_view(loom_exec *exec, loom_tensor *base, uint32_t n_dims, const int64_t *ne,
                                  const int64_t *nb, uint64_t offset, loom_tensor **out) {
    if (out) *out = NULL;
    if (!exec || !base || !out) return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_view: missing argument");
    if (!usable_in(exec, base))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_view: base tensor belongs to another context");
    const loom_tensor *root = root_of(base);
    uint32_t type = base->view.type;
    int64_t full[LOOM_MAX_DIMS];
    uint64_t bytes;
    const char *why = check_shape(type, n_dims, ne, full, &bytes);
    if (why) return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_view: %s", why);
    loom_tensor_view v = base->view;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        v.ne[d] = full[d];
    if (nb) {
        for (uint32_t d = 0; d < n_dims; d++) {
            if (nb[d] < 0) return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_view: negative stride");
            v.nb[d] = nb[d];
        }
        if (n_dims == 1) v.nb[1] = v.nb[0] * (full[0] / lbu_type_block_size(type));
        for (uint32_t d = n_dims > 1 ? n_dims : 2; d < LOOM_MAX_DIMS; d++)
            v.nb[d] = v.nb[d - 1] * full[d - 1];
    } else {
        contiguous_strides(type, full, v.nb);
    }
    uint64_t base_off = offset_in_root(base);
    if (offset > UINT64_MAX - base_off)
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_view: offset overflow");
    uint64_t start = base_off + offset;
    uint64_t extent = lbu_view_extent(&v);
    uint64_t limit = root_bytes(root);
    if (start > limit || extent > limit - start)
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT,
                         "tensor_view: view of %llu bytes at offset %llu exceeds its base tensor '%s' (%llu bytes)",
                         (unsigned long long)extent, (unsigned long long)start, root->name ? root->name : "",
                         (unsigned long long)limit);
    loom_tensor *t = scratch_struct(exec);
    if (!t) return exec_fail(exec, LOOM_ERR_OUT_OF_MEMORY, "tensor_view: out of memory");
    memset(t, 0, sizeof *t);
    t->view = v;
    t->view.data = root->view.data ? (char *)root->view.data + start : NULL;
    t->view.offset = root->view.offset + start;
    t->view.extra = NULL;
    t->n_dims = n_dims;
    t->flags = root->flags;
    t->view.flags = root->flags;
    t->device = root->device;
    t->name = root->name;
    t->base = (loom_tensor *)(uintptr_t)root;
    t->owner = exec;
    *out = t;
    return LOOM_OK;
}

loom_status loom_host_tensor_info(const loom_tensor *tensor, loom_tensor_info *out) {
    if (!tensor || !out) return LOOM_ERR_INVALID_ARGUMENT;
    if (out->struct_size == 0) return LOOM_ERR_ABI;
    loom_tensor_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = out->struct_size < sizeof info ? out->struct_size : (uint32_t)sizeof info;
    info.type = tensor->view.type;
    info.n_dims = tensor->n_dims;
    info.flags = tensor->flags;
    for (int d = 0; d < LOOM_MAX_DIMS; d++) {
        info.ne[d] = tensor->view.ne[d];
        info.nb[d] = tensor->view.nb[d];
    }
    info.name = tensor->name ? tensor->name : "";
    memcpy(out, &info, info.struct_size);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Host <-> tensor copies                                                                       */
/* ============================================================================================ */

/* Wait for queued work on every device. */
static loom_status sync_all(loom_exec *exec) {
    for (uint32_t i = 0; i < exec->n_devices; i++) {
        exec_device *d = &exec->devices[i];
        if (!d->pending) continue;
        d->pending = false;
        if (!d->api->synchronize) continue;
        loom_status st = d->api->synchronize(d->dev);
        if (st != LOOM_OK)
            return exec_fail(exec, st == LOOM_ERR_OUT_OF_MEMORY ? st : LOOM_ERR_BACKEND, "%s: synchronize failed: %s",
                             d->name, device_error(d, st));
    }
    return LOOM_OK;
}

static loom_status check_rw(loom_exec *exec, const char *what, const loom_tensor *t, uint64_t offset, uint64_t size) {
    if (!usable_in(exec, t))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "%s: tensor belongs to another context", what);
    if (!lbu_view_contiguous(&t->view))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is not contiguous", what, t->name);
    uint64_t bytes = lbu_view_extent(&t->view);
    if (offset > bytes || size > bytes - offset)
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT,
                         "%s: %llu bytes at offset %llu exceed tensor '%s' (%llu bytes)", what,
                         (unsigned long long)size, (unsigned long long)offset, t->name, (unsigned long long)bytes);
    return LOOM_OK;
}

loom_status loom_host_tensor_write(loom_exec *exec, loom_tensor *tensor, uint64_t offset, const void *src,
                                   uint64_t size) {
    if (!exec || !tensor || (!src && size))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_write: missing argument");
    loom_status st = check_rw(exec, "tensor_write", tensor, offset, size);
    if (st != LOOM_OK) return st;
    if (read_only(exec, tensor))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_write: '%s' is a model weight (read-only)",
                         tensor->name);
    weight_forget(exec, root_of(tensor));
    if ((st = sync_all(exec)) != LOOM_OK) return st;
    if (size == 0) return LOOM_OK;
    if (on_host(exec, tensor)) {
        memcpy((char *)tensor->view.data + offset, src, (size_t)size);
        return LOOM_OK;
    }
    exec_device *d = &exec->devices[tensor->device];
    st = d->api->buffer_write(d->dev, tensor->view.buffer, tensor->view.offset + offset, src, size);
    if (st != LOOM_OK) return exec_fail(exec, st, "tensor_write: %s: %s", d->name, device_error(d, st));
    return LOOM_OK;
}

loom_status loom_host_tensor_read(loom_exec *exec, const loom_tensor *tensor, uint64_t offset, void *dst,
                                  uint64_t size) {
    if (!exec || !tensor || (!dst && size))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "tensor_read: missing argument");
    loom_status st = check_rw(exec, "tensor_read", tensor, offset, size);
    if (st != LOOM_OK) return st;
    if ((st = sync_all(exec)) != LOOM_OK) return st;
    if (size == 0) return LOOM_OK;
    if (on_host(exec, tensor)) {
        memcpy(dst, (const char *)tensor->view.data + offset, (size_t)size);
        return LOOM_OK;
    }
    exec_device *d = &exec->devices[tensor->device];
    st = d->api->buffer_read(d->dev, tensor->view.buffer, tensor->view.offset + offset, dst, size);
    if (st != LOOM_OK) return exec_fail(exec, st, "tensor_read: %s: %s", d->name, device_error(d, st));
    return LOOM_OK;
}

/* ============================================================================================ */
/* Weights resident per device                                                                  */
/* ============================================================================================ */

static uint32_t weight_hash(const loom_tensor *root, int32_t device, uint32_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)root * 0x9e3779b97f4a7c15ull + (uint64_t)device * 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h >> 32) & (cap - 1);
}

static weight_entry *weight_find(loom_exec *exec, const loom_tensor *root, int32_t device) {
    if (!exec->cap_weights) return NULL;
    for (uint32_t i = weight_hash(root, device, exec->cap_weights);; i = (i + 1) & (exec->cap_weights - 1)) {
        weight_entry *e = &exec->weights[i];
        if (!e->root) return NULL;
        if (e->root == root && e->device == device) return e;
    }
}

static weight_entry *weight_insert(loom_exec *exec, const loom_tensor *root, int32_t device) {
    if ((exec->n_weights + 1) * 2 > exec->cap_weights) {
        uint32_t cap = exec->cap_weights ? exec->cap_weights * 2 : 64;
        weight_entry *w = calloc(cap, sizeof *w);
        if (!w) return NULL;
        for (uint32_t i = 0; i < exec->cap_weights; i++) {
            weight_entry *e = &exec->weights[i];
            if (!e->root) continue;
            uint32_t j = weight_hash(e->root, e->device, cap);
            while (w[j].root)
                j = (j + 1) & (cap - 1);
            w[j] = *e;
        }
        free(exec->weights);
        exec->weights = w;
        exec->cap_weights = cap;
    }
    uint32_t i = weight_hash(root, device, exec->cap_weights);
    while (exec->weights[i].root)
        i = (i + 1) & (exec->cap_weights - 1);
    weight_entry *e = &exec->weights[i];
    e->root = root;
    e->device = device;
    e->buffer = NULL;
    e->extra = NULL;
    exec->n_weights++;
    return e;
}

/* Drop the device copies of an exec-owned weight whose contents change. */
static void weight_forget(loom_exec *exec, const loom_tensor *root) {
    if (!exec->n_weights || !(root->flags & LOOM_TENSOR_WEIGHT)) return;
    for (int32_t di = 0; di < (int32_t)exec->n_devices; di++) {
        weight_entry *e = weight_find(exec, root, di);
        if (!e) continue;
        exec_device *d = &exec->devices[di];
        if (e->extra && d->api->weight_release) d->api->weight_release(d->dev, e->extra);
        if (e->buffer) d->api->buffer_free(d->dev, e->buffer);
        e->extra = NULL;
        e->buffer = NULL;
        e->data = NULL; /* never matches again: re-prepared on next use */
        e->type = UINT32_MAX;
    }
}

/* The weight `root` made resident on device `di` (uploaded and prepared once). *entry is NULL
 * when nothing is needed (a host-memory device without weight_prepare). */
static loom_status weight_resident(loom_exec *exec, const loom_tensor *root, int32_t di, weight_entry **entry) {
    exec_device *d = &exec->devices[di];
    *entry = NULL;
    /* in place: the device reads the weight where it is (no upload, maybe a prepare) */
    const bool in_place = root->device == di || (d->host_memory && on_host(exec, root));
    if (in_place && !d->api->weight_prepare) return LOOM_OK;
    if (!in_place && !root->view.data)
        return exec_fail(exec, LOOM_ERR_INTERNAL, "weight '%s' is neither on %s nor in host memory", root->name,
                         d->name);
    weight_entry *e = weight_find(exec, root, di);
    if (e && e->data == root->view.data && e->type == root->view.type && !memcmp(e->ne, root->view.ne, sizeof e->ne)) {
        *entry = e;
        return LOOM_OK;
    }
    if (e) { /* the tensor struct was reused for another weight: drop the old copy */
        if (e->extra && d->api->weight_release) d->api->weight_release(d->dev, e->extra);
        if (e->buffer) d->api->buffer_free(d->dev, e->buffer);
        e->extra = NULL;
        e->buffer = NULL;
    }
    loom_tensor_view v = root->view;
    void *buffer = NULL;
    if (!in_place) {
        uint64_t bytes = root_bytes(root);
        void *host = NULL;
        loom_status st = d->api->buffer_alloc(d->dev, bytes, &buffer, &host);
        if (st != LOOM_OK)
            return exec_fail(exec, st, "%s: cannot allocate %llu bytes for weight '%s': %s", d->name,
                             (unsigned long long)bytes, root->name, device_error(d, st));
        st = d->api->buffer_write(d->dev, buffer, 0, root->view.data, bytes);
        if (st != LOOM_OK) {
            d->api->buffer_free(d->dev, buffer);
            return exec_fail(exec, st, "%s: cannot upload weight '%s': %s", d->name, root->name, device_error(d, st));
        }
        d->bytes_in += bytes;
        v.data = NULL;
        v.buffer = buffer;
        v.offset = 0;
    } else if (root->device != di) {
        v.buffer = NULL; /* another device's handle means nothing here */
        v.offset = 0;
    }
    void *extra = NULL;
    if (d->api->weight_prepare) {
        loom_status st = d->api->weight_prepare(d->dev, &v, &extra);
        if (st != LOOM_OK) {
            if (buffer) d->api->buffer_free(d->dev, buffer);
            return exec_fail(exec, st, "%s: weight_prepare failed for '%s': %s", d->name, root->name,
                             device_error(d, st));
        }
    }
    if (!e) e = weight_insert(exec, root, di);
    if (!e) {
        if (extra && d->api->weight_release) d->api->weight_release(d->dev, extra);
        if (buffer) d->api->buffer_free(d->dev, buffer);
        return exec_fail(exec, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    e->buffer = buffer;
    e->extra = extra;
    e->data = root->view.data;
    e->type = root->view.type;
    memcpy(e->ne, root->view.ne, sizeof e->ne);
    *entry = e;
    return LOOM_OK;
}

/* ============================================================================================ */
/* Operand placement                                                                            */
/* ============================================================================================ */

typedef struct staged {
    bool active;    /* the view points into the transfer arena */
    uint64_t bytes; /* extent copied */
    char *host;     /* host address of the staged copy (host-memory device) */
} staged;

/* Copy `bytes` starting at tensor t's element 0 to host memory `dst`. */
static loom_status copy_tensor_to_host(loom_exec *exec, const loom_tensor *t, void *dst, uint64_t bytes) {
    if (on_host(exec, t)) {
        memcpy(dst, t->view.data, (size_t)bytes);
        return LOOM_OK;
    }
    exec_device *e = &exec->devices[t->device];
    loom_status st = e->api->buffer_read(e->dev, t->view.buffer, t->view.offset, dst, bytes);
    if (st != LOOM_OK) return exec_fail(exec, st, "%s: read failed: %s", e->name, device_error(e, st));
    e->bytes_out += bytes;
    return LOOM_OK;
}

static loom_status copy_host_to_tensor(loom_exec *exec, const loom_tensor *t, const void *src, uint64_t bytes) {
    if (on_host(exec, t)) {
        memcpy(t->view.data, src, (size_t)bytes);
        return LOOM_OK;
    }
    exec_device *e = &exec->devices[t->device];
    loom_status st = e->api->buffer_write(e->dev, t->view.buffer, t->view.offset, src, bytes);
    if (st != LOOM_OK) return exec_fail(exec, st, "%s: write failed: %s", e->name, device_error(e, st));
    e->bytes_in += bytes;
    return LOOM_OK;
}

/* A host bounce buffer of `bytes` (host transfer arena). */
static loom_status host_bounce(loom_exec *exec, uint64_t bytes, char **out) {
    void *buf;
    uint64_t off;
    loom_status st = arena_alloc(&exec->host_transfer, bytes, &buf, &off, out);
    if (st != LOOM_OK)
        return exec_fail(exec, st, "out of host memory for a %llu-byte transfer", (unsigned long long)bytes);
    return LOOM_OK;
}

/*
 * The view of tensor t that device di computes with. `load` says whether a staged copy must be
 * filled with t's current bytes (sources, and destinations that are not contiguous).
 */
static loom_status place_operand(loom_exec *exec, const loom_tensor *t, int32_t di, bool load, loom_tensor_view *out,
                                 staged *stg) {
    exec_device *d = &exec->devices[di];
    const loom_tensor *root = root_of(t);
    *out = t->view;
    stg->active = false;
    if (t->device == di || (d->host_memory && on_host(exec, t))) {
        if (t->device != di) {
            out->buffer = NULL; /* another device's handle means nothing here */
            out->offset = 0;
        }
        if (root->flags & LOOM_TENSOR_WEIGHT) {
            weight_entry *e;
            loom_status st = weight_resident(exec, root, di, &e);
            if (st != LOOM_OK) return st;
            out->extra = e && t == root ? e->extra : NULL;
        }
        return LOOM_OK;
    }
    if ((root->flags & LOOM_TENSOR_WEIGHT) && root->device < 0) {
        weight_entry *e;
        loom_status st = weight_resident(exec, root, di, &e);
        if (st != LOOM_OK) return st;
        out->data = NULL;
        out->buffer = e->buffer;
        out->offset = offset_in_root(t);
        out->extra = t == root ? e->extra : NULL;
        return LOOM_OK;
    }
    /* stage a copy of the bytes the view spans */
    uint64_t bytes = lbu_view_extent(&t->view);
    char *host = NULL;
    loom_status st = arena_alloc(&d->transfer, bytes, &out->buffer, &out->offset, &host);
    if (st != LOOM_OK)
        return exec_fail(exec, st, "%s: cannot allocate %llu bytes to stage an operand", d->name,
                         (unsigned long long)bytes);
    out->data = host;
    out->extra = NULL;
    stg->active = true;
    stg->bytes = bytes;
    stg->host = host;
    if (!load) return LOOM_OK;
    if (host) {
        st = copy_tensor_to_host(exec, t, host, bytes);
    } else if (on_host(exec, t)) {
        st = d->api->buffer_write(d->dev, out->buffer, out->offset, t->view.data, bytes);
        if (st != LOOM_OK) st = exec_fail(exec, st, "%s: write failed: %s", d->name, device_error(d, st));
    } else {
        char *bounce;
        st = host_bounce(exec, bytes, &bounce);
        if (st == LOOM_OK) st = copy_tensor_to_host(exec, t, bounce, bytes);
        if (st == LOOM_OK) {
            st = d->api->buffer_write(d->dev, out->buffer, out->offset, bounce, bytes);
            if (st != LOOM_OK) st = exec_fail(exec, st, "%s: write failed: %s", d->name, device_error(d, st));
        }
    }
    if (st == LOOM_OK) d->bytes_in += bytes;
    return st;
}

/* Copy a staged destination back to where the tensor lives. */
static loom_status unstage_dst(loom_exec *exec, const loom_tensor *t, int32_t di, const loom_tensor_view *v,
                               const staged *stg) {
    exec_device *d = &exec->devices[di];
    loom_status st;
    if (stg->host) return copy_host_to_tensor(exec, t, stg->host, stg->bytes);
    if (on_host(exec, t)) {
        st = d->api->buffer_read(d->dev, v->buffer, v->offset, t->view.data, stg->bytes);
        if (st != LOOM_OK) return exec_fail(exec, st, "%s: read failed: %s", d->name, device_error(d, st));
        d->bytes_out += stg->bytes;
        return LOOM_OK;
    }
    char *bounce;
    if ((st = host_bounce(exec, stg->bytes, &bounce)) != LOOM_OK) return st;
    st = d->api->buffer_read(d->dev, v->buffer, v->offset, bounce, stg->bytes);
    if (st != LOOM_OK) return exec_fail(exec, st, "%s: read failed: %s", d->name, device_error(d, st));
    d->bytes_out += stg->bytes;
    return copy_host_to_tensor(exec, t, bounce, stg->bytes);
}

/* ============================================================================================ */
/* Placement statistics                                                                         */
/* ============================================================================================ */

static void placement_count(loom_exec *exec, uint32_t op, const loom_tensor *dst, loom_tensor *const *srcs, uint32_t n,
                            int32_t device) {
    uint32_t types[LOOM_MAX_SRC + 1];
    types[0] = dst->view.type;
    for (uint32_t i = 0; i < n; i++)
        types[i + 1] = srcs[i]->view.type;
    for (uint32_t i = 0; i < exec->n_placement; i++) {
        placement_entry *e = &exec->placement[i];
        if (e->op == op && e->device == device && e->n_types == n + 1 &&
            !memcmp(e->types, types, (n + 1) * sizeof types[0])) {
            e->count++;
            return;
        }
    }
    if (exec->n_placement == exec->cap_placement) {
        uint32_t cap = exec->cap_placement ? exec->cap_placement * 2 : 32;
        placement_entry *p = realloc(exec->placement, cap * sizeof *p);
        if (!p) return; /* statistics only */
        exec->placement = p;
        exec->cap_placement = cap;
    }
    placement_entry *e = &exec->placement[exec->n_placement++];
    memset(e, 0, sizeof *e);
    e->op = op;
    e->n_types = n + 1;
    memcpy(e->types, types, (n + 1) * sizeof types[0]);
    e->device = device;
    e->count = 1;
}

static int placement_cmp(const void *a, const void *b) {
    const placement_entry *x = a, *y = b;
    if (x->op != y->op) return x->op < y->op ? -1 : 1;
    if (x->device != y->device) return x->device < y->device ? -1 : 1;
    return memcmp(x->types, y->types, sizeof x->types);
}

/* Append to a report buffer; output past the end is dropped. */
static void report_add(char *r, size_t cap, size_t *n, const char *fmt, ...) LOOM_PRINTF(4, 5);
static void report_add(char *r, size_t cap, size_t *n, const char *fmt, ...) {
    if (*n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0) *n = *n + (size_t)k < cap ? *n + (size_t)k : cap - 1;
}

const char *loom_exec_placement_report(loom_exec *exec) {
    if (!exec) return "";
    free(exec->report);
    exec->report = NULL;
    size_t cap = 256 + (size_t)exec->n_placement * 160 + (size_t)exec->n_devices * 160;
    char *r = malloc(cap);
    if (!r) return "out of memory";
    if (exec->n_placement) qsort(exec->placement, exec->n_placement, sizeof *exec->placement, placement_cmp);
    size_t n = 0;
    r[0] = '\0';
    report_add(r, cap, &n, "%-14s %-34s %-16s %10s\n", "op", "types (dst <- srcs)", "device", "count");
    for (uint32_t i = 0; i < exec->n_placement; i++) {
        const placement_entry *e = &exec->placement[i];
        char types[128];
        size_t tn = 0;
        report_add(types, sizeof types, &tn, "%s <-", lbu_type_name(e->types[0]));
        for (uint32_t j = 1; j < e->n_types; j++)
            report_add(types, sizeof types, &tn, " %s", lbu_type_name(e->types[j]));
        const exec_device *d = &exec->devices[e->device];
        report_add(r, cap, &n, "%-14s %-34s %-16s %10llu%s\n", lbu_op_name(e->op), types, d->name,
                   (unsigned long long)e->count, e->device > 0 ? "  (fallback)" : "");
    }
    for (uint32_t i = 0; i < exec->n_devices; i++) {
        const exec_device *d = &exec->devices[i];
        if (d->bytes_in || d->bytes_out)
            report_add(r, cap, &n, "transfers %s: %llu bytes in, %llu bytes out\n", d->name,
                       (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out);
    }
    exec->report = r;
    return r;
}

/* ============================================================================================ */
/* Ops                                                                                          */
/* ============================================================================================ */

static void describe_types(char *buf, size_t size, const loom_tensor *dst, loom_tensor *const *srcs, uint32_t n) {
    size_t k = 0;
    buf[0] = '\0';
    report_add(buf, size, &k, "%s" LBU_SHAPE " <-", lbu_type_name(dst->view.type), LBU_NE(&dst->view));
    for (uint32_t i = 0; i < n; i++)
        report_add(buf, size, &k, " %s" LBU_SHAPE, lbu_type_name(srcs[i]->view.type), LBU_NE(&srcs[i]->view));
}

loom_status loom_host_op(loom_exec *exec, const loom_op_params *params, loom_tensor *dst, loom_tensor *const *srcs,
                         uint32_t n_srcs) {
    if (!exec) return LOOM_ERR_INVALID_ARGUMENT;
    if (!params || !dst || (n_srcs && !srcs) || n_srcs > LOOM_MAX_SRC)
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "op: missing parameters, destination or sources");
    if (params->struct_size < sizeof(loom_op_params))
        return exec_fail(exec, LOOM_ERR_ABI, "op: loom_op_params.struct_size is %u, expected %zu", params->struct_size,
                         sizeof(loom_op_params));
    const char *name = lbu_op_name(params->op);
    const loom_tensor_view *views[LOOM_MAX_SRC];
    for (uint32_t i = 0; i < n_srcs; i++) {
        if (!srcs[i]) return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "op %s: source %u is NULL", name, i);
        if (!usable_in(exec, srcs[i]))
            return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "op %s: source %u belongs to another context", name, i);
        views[i] = &srcs[i]->view;
    }
    if (!usable_in(exec, dst))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "op %s: destination belongs to another context", name);
    if (read_only(exec, dst))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "op %s: destination '%s' is a model weight (read-only)", name,
                         dst->name);
    char why[256];
    if (!lbu_op_check(params, &dst->view, views, n_srcs, why, sizeof why))
        return exec_fail(exec, LOOM_ERR_INVALID_ARGUMENT, "op %s: %s", name, why);

    int32_t di = -1;
    for (uint32_t i = 0; i < exec->n_devices && di < 0; i++) {
        exec_device *d = &exec->devices[i];
        if (d->api->supports_op(d->dev, params, &dst->view, views, n_srcs)) di = (int32_t)i;
    }
    if (di < 0) {
        char types[256];
        describe_types(types, sizeof types, dst, srcs, n_srcs);
        return exec_fail(exec, LOOM_ERR_UNSUPPORTED, "op %s (%s) is not supported by any device of this context", name,
                         types);
    }
    exec_device *d = &exec->devices[di];
    loom_status st = LOOM_OK;
    /* switching devices or touching host copies: finish queued work first */
    if (exec->last_device >= 0 && exec->last_device != di) st = sync_all(exec);

    loom_tensor_view sv[LOOM_MAX_SRC], dv;
    staged sstg[LOOM_MAX_SRC], dstg = {false, 0, NULL};
    const loom_tensor_view *sp[LOOM_MAX_SRC];
    bool staged_any = false;
    for (uint32_t i = 0; i < n_srcs; i++)
        sstg[i].active = false;
    for (uint32_t i = 0; i < n_srcs && st == LOOM_OK; i++) {
        st = place_operand(exec, srcs[i], di, true, &sv[i], &sstg[i]);
        sp[i] = &sv[i];
        staged_any = staged_any || sstg[i].active;
    }
    if (st == LOOM_OK) {
        st = place_operand(exec, dst, di, !lbu_view_contiguous(&dst->view), &dv, &dstg);
        staged_any = staged_any || dstg.active;
    }
    if (st == LOOM_OK) {
        st = d->api->compute(d->dev, params, &dv, sp, n_srcs);
        if (st != LOOM_OK) {
            st =
                exec_fail(exec, st == LOOM_ERR_OUT_OF_MEMORY || st == LOOM_ERR_INVALID_ARGUMENT ? st : LOOM_ERR_BACKEND,
                          "op %s on %s failed: %s", name, d->name, device_error(d, st));
        } else {
            d->pending = d->api->synchronize != NULL;
            exec->last_device = di;
            if (dstg.active) {
                st = sync_all(exec);
                if (st == LOOM_OK) st = unstage_dst(exec, dst, di, &dv, &dstg);
            }
        }
    }
    /* staged copies die with the op: the backend must be done with them before reuse */
    if (staged_any) {
        loom_status s2 = sync_all(exec);
        if (st == LOOM_OK) st = s2;
    }
    arena_reset(&d->transfer);
    arena_reset(&exec->host_transfer);
    if (st == LOOM_OK) placement_count(exec, params->op, dst, srcs, n_srcs, di);
    weight_forget(exec, root_of(dst)); /* an exec-owned weight was (re)computed */
    return st;
}

/* ============================================================================================ */
/* Exec lifetime                                                                                */
/* ============================================================================================ */

/* Options handed to device_open: "threads" and the plugin's own "plugin.<name>.*" keys. */
typedef struct kv_build {
    const char **keys;
    const char **values;
    uint32_t count;
} kv_build;

static loom_status build_options(loom_engine *engine, const char *plugin, const char *threads, kv_build *kv) {
    const loom_options *opts = engine ? loom_engine_options(engine) : NULL;
    uint32_t n = opts ? loom_options_count(opts) : 0;
    kv->keys = calloc((size_t)n + 1, sizeof *kv->keys);
    kv->values = calloc((size_t)n + 1, sizeof *kv->values);
    kv->count = 0;
    if (!kv->keys || !kv->values) return LOOM_ERR_OUT_OF_MEMORY;
    char prefix[160];
    snprintf(prefix, sizeof prefix, "plugin.%s.", plugin);
    size_t plen = strlen(prefix);
    kv->keys[kv->count] = "threads";
    kv->values[kv->count++] = threads;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        int32_t src;
        if (loom_options_at(opts, i, &k, &v, &src) != LOOM_OK) continue;
        if (!strncmp(k, prefix, plen)) {
            kv->keys[kv->count] = k;
            kv->values[kv->count++] = v;
        }
    }
    return LOOM_OK;
}

static loom_status open_device(loom_exec *exec, const loom_plugin_rec *p, uint32_t index, const char *threads,
                               char *err, size_t err_size) {
    for (uint32_t i = 0; i < exec->n_devices; i++)
        if (exec->devices[i].plugin == p && exec->devices[i].index == index) return LOOM_OK; /* listed twice */
    if (index >= p->n_devices)
        return loom_err(err, err_size, p->n_devices ? LOOM_ERR_NOT_FOUND : LOOM_ERR_UNAVAILABLE,
                        "backend '%s' has %u device(s); device %u does not exist", p->name, p->n_devices, index);
    const loom_backend_api *api = p->desc->api;
    kv_build kv;
    loom_status st = build_options(exec->engine, p->name, threads, &kv);
    if (st != LOOM_OK) {
        free(kv.keys);
        free(kv.values);
        return loom_err(err, err_size, st, "out of memory");
    }
    loom_kv_list list = {sizeof list, kv.count, kv.keys, kv.values};
    void *dev = NULL;
    st = api->device_open(p->state, index, &list, &dev);
    free(kv.keys);
    free(kv.values);
    if (st != LOOM_OK || !dev)
        return loom_err(err, err_size, st != LOOM_OK ? st : LOOM_ERR_PLUGIN, "backend '%s': cannot open device %u: %s",
                        p->name, index, loom_status_string(st != LOOM_OK ? st : LOOM_ERR_PLUGIN));
    loom_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    uint64_t caps = p->desc->capabilities;
    if (api->device_info && api->device_info(p->state, index, &info) == LOOM_OK &&
        LOOM_HAS_MEMBER(&info, loom_device_info, capabilities))
        caps = info.capabilities;
    exec_device *d = &exec->devices[exec->n_devices++];
    memset(d, 0, sizeof *d);
    d->plugin = p;
    d->api = api;
    d->dev = dev;
    d->index = index;
    d->host_memory = (caps & LOOM_BACKEND_CAP_HOST_MEMORY) != 0;
    if (p->n_devices > 1)
        snprintf(d->name, sizeof d->name, "%s:%u", p->name, index);
    else
        snprintf(d->name, sizeof d->name, "%s", p->name);
    d->scratch.dev = d;
    d->transfer.dev = d;
    return LOOM_OK;
}

/* Why a named backend is not usable: its recorded reason, or "not found". */
static loom_status missing_backend(loom_engine *engine, const char *name, char *err, size_t err_size) {
    for (uint32_t i = 0; engine && i < engine->n_plugins; i++) {
        const loom_plugin_rec *p = &engine->plugins[i];
        if (p->name && !strcmp(p->name, name) && p->kind == LOOM_PLUGIN_KIND_BACKEND)
            return loom_err(err, err_size, LOOM_ERR_UNAVAILABLE, "backend '%s' is unavailable: %s", name,
                            p->reason[0] ? p->reason : "no reason given");
    }
    return loom_err(err, err_size, LOOM_ERR_NOT_FOUND, "backend '%s' not found (see `loom plugins`)", name);
}

loom_status loom_exec_create(loom_engine *engine, const char *backend_spec, uint32_t n_threads, loom_exec **out,
                             char *err, size_t err_size) {
    if (!out) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "loom_exec_create: out is NULL");
    *out = NULL;
    if (!engine) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "loom_exec_create: engine is NULL");
    loom_exec *exec = calloc(1, sizeof *exec);
    if (!exec) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    exec->engine = engine;
    exec->last_device = -1;
    /* at most: every backend device listed, plus the reference */
    uint32_t max_dev = 1;
    for (uint32_t i = 0; i < engine->n_plugins; i++)
        max_dev += engine->plugins[i].n_devices;
    const char *spec = backend_spec ? backend_spec : "";
    for (const char *c = spec; *c; c++)
        max_dev += *c == ',';
    exec->devices = calloc((size_t)max_dev + 1, sizeof *exec->devices);
    if (!exec->devices) {
        free(exec);
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    char threads[32];
    if (n_threads)
        snprintf(threads, sizeof threads, "%u", n_threads);
    else
        snprintf(threads, sizeof threads, "%s", loom_engine_option_str(engine, "threads", "0"));

    /* A backend named by the user must exist; one named only by the built-in default may not. */
    const char *opt_value = NULL;
    int32_t opt_source = LOOM_SOURCE_UNSET;
    loom_options_get(loom_engine_options(engine), "backend", &opt_value, &opt_source);
    const bool spec_is_default = opt_source == LOOM_SOURCE_DEFAULT && opt_value && !strcmp(opt_value, spec);

    loom_status st = LOOM_OK;
    const char *s = spec;
    while (st == LOOM_OK && *s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char item[128];
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len >= sizeof item) {
            st = loom_err(err, err_size, LOOM_ERR_CONFIG, "backend name too long in \"%s\"", spec);
            break;
        }
        memcpy(item, s, len);
        item[len] = '\0';
        s = e ? e + 1 : s + strlen(s);
        if (!item[0]) continue;
        if (!strcmp(item, "auto")) { /* every available non-reference backend, in discovery order */
            for (uint32_t i = 0; i < engine->n_plugins && st == LOOM_OK; i++) {
                const loom_plugin_rec *p = &engine->plugins[i];
                if (p->kind != LOOM_PLUGIN_KIND_BACKEND || p->state_code != LOOM_PLUGIN_AVAILABLE) continue;
                if (p->desc->capabilities & LOOM_BACKEND_CAP_REFERENCE) continue;
                for (uint32_t k = 0; k < p->n_devices && st == LOOM_OK; k++)
                    st = open_device(exec, p, k, threads, err, err_size);
            }
            continue;
        }
        uint32_t index = 0;
        char *colon = strchr(item, ':');
        if (colon) {
            char *end = NULL;
            unsigned long v = strtoul(colon + 1, &end, 10);
            if (end == colon + 1 || *end || v > 1024) {
                st = loom_err(err, err_size, LOOM_ERR_CONFIG, "bad device index in backend \"%s\"", item);
                break;
            }
            *colon = '\0';
            index = (uint32_t)v;
        }
        const loom_plugin_rec *p = loom_engine_find_plugin(engine, LOOM_PLUGIN_KIND_BACKEND, item);
        if (!p && spec_is_default) { /* the built-in default names an optional plugin: skip it */
            loom_log(LOOM_LOG_DEBUG, NULL, "default backend '%s' is not available here; using the next one", item);
            continue;
        }
        if (!p) {
            st = missing_backend(engine, item, err, err_size);
            break;
        }
        st = open_device(exec, p, index, threads, err, err_size);
    }
    if (st == LOOM_OK) {
        const loom_plugin_rec *ref = loom_engine_find_plugin(engine, LOOM_PLUGIN_KIND_BACKEND, "cpu");
        if (!ref)
            st = loom_err(err, err_size, LOOM_ERR_NOT_FOUND,
                          "the CPU reference backend (plugin 'cpu', loom-backend-cpu) is not available; check the "
                          "plugin path (`loom plugins`)");
        else
            st = open_device(exec, ref, 0, threads, err, err_size);
    }
    if (st == LOOM_OK) {
        *out = exec;
        return LOOM_OK;
    }
    loom_exec_free(exec);
    return st;
}

void loom_exec_reset_scratch(loom_exec *exec) {
    if (!exec) return;
    sync_all(exec);
    for (uint32_t i = 0; i < exec->n_devices; i++)
        arena_reset(&exec->devices[i].scratch);
    exec->n_scratch = 0;
}

void loom_exec_release_weights(loom_exec *exec) {
    if (!exec) return;
    sync_all(exec);
    for (uint32_t i = 0; i < exec->cap_weights; i++) {
        weight_entry *e = &exec->weights[i];
        if (!e->root) continue;
        exec_device *d = &exec->devices[e->device];
        if (e->extra && d->api->weight_release) d->api->weight_release(d->dev, e->extra);
        if (e->buffer) d->api->buffer_free(d->dev, e->buffer);
    }
    free(exec->weights);
    exec->weights = NULL;
    exec->n_weights = exec->cap_weights = 0;
}

void loom_exec_free(loom_exec *exec) {
    if (!exec) return;
    loom_exec_release_weights(exec);
    for (uint32_t i = 0; i < exec->n_persist; i++) {
        exec_device *d = &exec->devices[exec->persist[i].device];
        d->api->buffer_free(d->dev, exec->persist[i].buffer);
        free(exec->persist[i].tensor);
    }
    free(exec->persist);
    for (uint32_t i = 0; i < exec->n_devices; i++) {
        exec_device *d = &exec->devices[i];
        arena_free(&d->scratch);
        arena_free(&d->transfer);
        d->api->device_close(d->dev);
    }
    arena_free(&exec->host_transfer);
    free(exec->devices);
    for (uint32_t i = 0; i < exec->n_blocks; i++)
        free(exec->blocks[i]);
    free(exec->blocks);
    free(exec->placement);
    free(exec->report);
    free(exec);
}

const char *loom_exec_device_name(const loom_exec *exec) {
    return exec && exec->n_devices ? exec->devices[0].name : "";
}

uint32_t loom_exec_device_count(const loom_exec *exec) { return exec ? exec->n_devices : 0; }

const char *loom_exec_device_name_at(const loom_exec *exec, uint32_t index) {
    return exec && index < exec->n_devices ? exec->devices[index].name : NULL;
}

int32_t loom_exec_last_device(const loom_exec *exec) { return exec ? exec->last_device : -1; }
