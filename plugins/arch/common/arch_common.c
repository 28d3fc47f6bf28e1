/*
 * arch_common.c - GPT-style and Llama-style block code shared by the seed architecture plugins.
 * See arch_common.h.
 */
#include "arch_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *ac_fmt(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

/* ======================================================================================== */
/* Metadata                                                                                 */
/* ======================================================================================== */

static const char *const cfg_prefixes[] = {"config.model_hparams.", "config.", "config.args.", NULL};

loom_status ac_meta_int(const ac_model *m, const char *full_key, int64_t *out) {
    loom_status st = m->host->meta_get_int(m->model, full_key, out);
    if (st == LOOM_ERR_FORMAT) {
        double d = 0;
        if (m->host->meta_get_float(m->model, full_key, &d) == LOOM_OK && d == floor(d) && fabs(d) < 9.0e15) {
            *out = (int64_t)d;
            return LOOM_OK;
        }
    }
    return st;
}

loom_status ac_meta_string(const ac_model *m, const char *full_key, const char **out) {
    const char *s = NULL;
    loom_status st = m->host->meta_get_string(m->model, full_key, &s);
    if (st != LOOM_OK) return st == LOOM_ERR_FORMAT ? LOOM_ERR_NOT_FOUND : st;
    if (!s || !strcmp(s, "null") || !strcmp(s, "None")) return LOOM_ERR_NOT_FOUND;
    *out = s;
    return LOOM_OK;
}

loom_status ac_get_int(const ac_model *m, const char *key, const char *const *cfg, int64_t *out) {
    char full[256];
    if (key && ac_meta_int(m, ac_fmt(full, sizeof full, "%s.%s", m->arch, key), out) == LOOM_OK) return LOOM_OK;
    for (const char *const *c = cfg; c && *c; c++) {
        for (const char *const *p = cfg_prefixes; *p; p++) {
            if (ac_meta_int(m, ac_fmt(full, sizeof full, "%s%s", *p, *c), out) == LOOM_OK) return LOOM_OK;
        }
    }
    return LOOM_ERR_NOT_FOUND;
}

loom_status ac_get_float(const ac_model *m, const char *key, const char *const *cfg, double *out) {
    char full[256];
    if (key && m->host->meta_get_float(m->model, ac_fmt(full, sizeof full, "%s.%s", m->arch, key), out) == LOOM_OK)
        return LOOM_OK;
    for (const char *const *c = cfg; c && *c; c++) {
        for (const char *const *p = cfg_prefixes; *p; p++) {
            if (m->host->meta_get_float(m->model, ac_fmt(full, sizeof full, "%s%s", *p, *c), out) == LOOM_OK)
                return LOOM_OK;
        }
    }
    return LOOM_ERR_NOT_FOUND;
}

loom_status ac_get_string(const ac_model *m, const char *key, const char *const *cfg, const char **out) {
    char full[256];
    if (key && ac_meta_string(m, ac_fmt(full, sizeof full, "%s.%s", m->arch, key), out) == LOOM_OK) return LOOM_OK;
    for (const char *const *c = cfg; c && *c; c++) {
        for (const char *const *p = cfg_prefixes; *p; p++) {
            if (ac_meta_string(m, ac_fmt(full, sizeof full, "%s%s", *p, *c), out) == LOOM_OK) return LOOM_OK;
        }
    }
    return LOOM_ERR_NOT_FOUND;
}

/* ======================================================================================== */
/* Weights                                                                                  */
/* ======================================================================================== */

loom_tensor *ac_weight(const ac_model *m, const char *name) {
    static const char *const prefixes[] = {"", "_orig_mod.", "module.", "module._orig_mod.", NULL};
    char full[320];
    for (const char *const *p = prefixes; *p; p++) {
        loom_tensor *t = NULL;
        if (m->host->model_tensor(m->model, ac_fmt(full, sizeof full, "%s%s", *p, name), &t) == LOOM_OK && t) return t;
    }
    return NULL;
}

loom_tensor *ac_weightf(const ac_model *m, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return ac_weight(m, name);
}

loom_tensor *ac_weight_any(const ac_model *m, const char *const *names) {
    for (const char *const *n = names; n && *n; n++) {
        loom_tensor *t = ac_weight(m, *n);
        if (t) return t;
    }
    return NULL;
}

uint32_t ac_tensor_shape(const loom_host_api *host, const loom_tensor *t, int64_t ne[4]) {
    loom_tensor_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    for (int i = 0; i < 4; i++)
        ne[i] = 1;
    if (!t || host->tensor_info(t, &info) != LOOM_OK) return 0;
    for (int i = 0; i < 4; i++)
        ne[i] = info.ne[i] > 0 ? info.ne[i] : 1;
    return info.n_dims ? info.n_dims : 1;
}

int ac_weight_shape_is(const ac_model *m, const loom_tensor *t, int64_t ne0, int64_t ne1) {
    int64_t ne[4];
    uint32_t nd = ac_tensor_shape(m->host, t, ne);
    if (!nd || nd > 2) return 0;
    return ne[0] == ne0 && ne[1] == ne1;
}

static loom_status need(const ac_model *m, loom_tensor **out, const char *prefix, const char *name, int64_t ne0,
                        int64_t ne1, char *err, size_t err_size) {
    char full[256];
    ac_fmt(full, sizeof full, "%s%s", prefix, name);
    loom_tensor *t = ac_weight(m, full);
    if (!t) {
        snprintf(err, err_size, "%s: weight '%s' is missing", m->arch, full);
        return LOOM_ERR_FORMAT;
    }
    if (!ac_weight_shape_is(m, t, ne0, ne1)) {
        int64_t ne[4];
        ac_tensor_shape(m->host, t, ne);
        snprintf(err, err_size, "%s: weight '%s' has shape [%lld, %lld], expected [%lld, %lld] (innermost first)",
                 m->arch, full, (long long)ne[0], (long long)ne[1], (long long)ne0, (long long)ne1);
        return LOOM_ERR_FORMAT;
    }
    *out = t;
    return LOOM_OK;
}

loom_status ac_model_init_gpt(ac_model *m, const char *const *emb_names, const char *const *norm_names,
                              const char *const *head_names, char *err, size_t err_size) {
    static const char *const k_head[] = {"n_head", "num_attention_heads", NULL};
    static const char *const k_ctx[] = {"sequence_length", "max_position_embeddings", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    m->style = AC_BLOCK_GPT;
    m->tok_embd = ac_weight_any(m, emb_names);
    if (!m->tok_embd) {
        snprintf(err, err_size, "%s: token embedding '%s' is missing", m->arch, emb_names[0]);
        return LOOM_ERR_FORMAT;
    }
    int64_t ne[4];
    if (ac_tensor_shape(m->host, m->tok_embd, ne) != 2) {
        snprintf(err, err_size, "%s: token embedding must be 2-D", m->arch);
        return LOOM_ERR_FORMAT;
    }
    m->n_embd = ne[0];
    m->n_vocab = ne[1];
    int64_t v = 0;
    if (ac_get_int(m, "vocab_size", k_vocab, &v) == LOOM_OK && v != m->n_vocab) {
        snprintf(err, err_size, "%s: vocab_size %lld does not match the embedding's %lld rows", m->arch, (long long)v,
                 (long long)m->n_vocab);
        return LOOM_ERR_FORMAT;
    }
    if (ac_get_int(m, "attention.head_count", k_head, &m->n_head) != LOOM_OK) {
        snprintf(err, err_size, "%s: the number of heads (%s.attention.head_count or config n_head) is missing",
                 m->arch, m->arch);
        return LOOM_ERR_FORMAT;
    }
    if (m->n_head <= 0 || m->n_embd % m->n_head != 0 || (m->n_embd / m->n_head) % 2 != 0) {
        snprintf(err, err_size, "%s: n_embd %lld is not a multiple of n_head %lld with an even head size", m->arch,
                 (long long)m->n_embd, (long long)m->n_head);
        return LOOM_ERR_FORMAT;
    }
    m->n_head_kv = m->n_head;
    m->head_dim = m->n_embd / m->n_head;
    m->n_ff = 4 * m->n_embd;
    if (ac_get_int(m, "context_length", k_ctx, &m->n_ctx_train) != LOOM_OK) m->n_ctx_train = 0;
    if (ac_get_float(m, "attention.layer_norm_epsilon", NULL, &m->norm_eps) != LOOM_OK) m->norm_eps = 1e-5;
    if (ac_get_float(m, "rope.freq_base", NULL, &m->rope_base) != LOOM_OK) m->rope_base = 10000.0;
    m->out_norm = ac_weight_any(m, norm_names);
    if (!m->out_norm || !ac_weight_shape_is(m, m->out_norm, m->n_embd, 1)) {
        snprintf(err, err_size, "%s: final norm '%s' is missing or not [%lld]", m->arch, norm_names[0],
                 (long long)m->n_embd);
        return LOOM_ERR_FORMAT;
    }
    m->output = head_names ? ac_weight_any(m, head_names) : NULL;
    if (!m->output) m->output = m->tok_embd; /* tied */
    if (!ac_weight_shape_is(m, m->output, m->n_embd, m->n_vocab)) {
        snprintf(err, err_size, "%s: the LM head is not [%lld, %lld]", m->arch, (long long)m->n_embd,
                 (long long)m->n_vocab);
        return LOOM_ERR_FORMAT;
    }
    return LOOM_OK;
}

loom_status ac_block_load_gpt(const ac_model *m, const char *prefix, ac_block *b, char *err, size_t err_size) {
    const int64_t C = m->n_embd;
    loom_status st;
    memset(b, 0, sizeof *b);
    static const char *const biases[] = {
        "ln_1.bias", "attn.c_attn.bias", "attn.c_proj.bias", "ln_2.bias", "mlp.c_fc.bias", "mlp.c_proj.bias", NULL};
    for (const char *const *n = biases; *n; n++) {
        if (ac_weightf(m, "%s%s", prefix, *n)) {
            snprintf(err, err_size, "%s: '%s%s' exists: models with bias=True are not supported", m->arch, prefix, *n);
            return LOOM_ERR_UNSUPPORTED;
        }
    }
    if ((st = need(m, &b->attn_norm, prefix, "ln_1.weight", C, 1, err, err_size))) return st;
    if ((st = need(m, &b->wqkv, prefix, "attn.c_attn.weight", C, 3 * C, err, err_size))) return st;
    if ((st = need(m, &b->wo, prefix, "attn.c_proj.weight", C, C, err, err_size))) return st;
    if ((st = need(m, &b->ffn_norm, prefix, "ln_2.weight", C, 1, err, err_size))) return st;
    if ((st = need(m, &b->ffn_up, prefix, "mlp.c_fc.weight", C, m->n_ff, err, err_size))) return st;
    if ((st = need(m, &b->ffn_down, prefix, "mlp.c_proj.weight", m->n_ff, C, err, err_size))) return st;
    return LOOM_OK;
}

loom_status ac_block_load_llama(const ac_model *m, const char *prefix, ac_block *b, char *err, size_t err_size) {
    const int64_t C = m->n_embd, hd = m->head_dim;
    loom_status st;
    memset(b, 0, sizeof *b);
    if ((st = need(m, &b->attn_norm, prefix, "input_layernorm.weight", C, 1, err, err_size))) return st;
    if ((st = need(m, &b->wq, prefix, "self_attn.q_proj.weight", C, m->n_head * hd, err, err_size))) return st;
    if ((st = need(m, &b->wk, prefix, "self_attn.k_proj.weight", C, m->n_head_kv * hd, err, err_size))) return st;
    if ((st = need(m, &b->wv, prefix, "self_attn.v_proj.weight", C, m->n_head_kv * hd, err, err_size))) return st;
    if ((st = need(m, &b->wo, prefix, "self_attn.o_proj.weight", m->n_head * hd, C, err, err_size))) return st;
    if ((st = need(m, &b->ffn_norm, prefix, "post_attention_layernorm.weight", C, 1, err, err_size))) return st;
    if ((st = need(m, &b->ffn_gate, prefix, "mlp.gate_proj.weight", C, m->n_ff, err, err_size))) return st;
    if ((st = need(m, &b->ffn_up, prefix, "mlp.up_proj.weight", C, m->n_ff, err, err_size))) return st;
    if ((st = need(m, &b->ffn_down, prefix, "mlp.down_proj.weight", m->n_ff, C, err, err_size))) return st;
    return LOOM_OK;
}

/* ======================================================================================== */
/* Environment and tensors                                                                  */
/* ======================================================================================== */

void ac_env_init(ac_env *e, const ac_model *m, loom_exec *exec) {
    e->host = m->host;
    e->exec = exec;
    e->m = m;
    e->status = LOOM_OK;
}

loom_tensor *ac_fail(ac_env *e, loom_status st, const char *fmt, ...) {
    if (e->status == LOOM_OK) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        e->status = st ? st : LOOM_ERR_INTERNAL;
        e->host->exec_set_error(e->exec, "%s: %s", e->m ? e->m->arch : "arch", msg);
    }
    return NULL;
}

/* Failure of a host call: keep the host's message (already on the exec). */
static loom_tensor *host_fail(ac_env *e, loom_status st, const char *what) {
    if (e->status == LOOM_OK) {
        const char *msg = e->host->exec_last_error(e->exec);
        e->status = st ? st : LOOM_ERR_INTERNAL;
        e->host->exec_set_error(e->exec, "%s: %s failed: %s", e->m ? e->m->arch : "arch", what,
                                msg && *msg ? msg : "unknown error");
    }
    return NULL;
}

loom_tensor *ac_new(ac_env *e, uint32_t type, uint32_t n_dims, const int64_t *ne, uint32_t flags) {
    if (e->status) return NULL;
    loom_tensor *t = NULL;
    loom_status st = e->host->tensor_new(e->exec, type, n_dims, ne, flags, &t);
    if (st != LOOM_OK || !t) return host_fail(e, st, "tensor_new");
    return t;
}

loom_tensor *ac_new_f32_2d(ac_env *e, int64_t ne0, int64_t ne1) {
    const int64_t ne[2] = {ne0, ne1};
    return ac_new(e, LOOM_TYPE_F32, 2, ne, 0);
}

loom_tensor *ac_new_f32_3d(ac_env *e, int64_t ne0, int64_t ne1, int64_t ne2) {
    const int64_t ne[3] = {ne0, ne1, ne2};
    return ac_new(e, LOOM_TYPE_F32, 3, ne, 0);
}

loom_tensor *ac_view(ac_env *e, loom_tensor *base, uint32_t n_dims, const int64_t *ne, const int64_t *nb,
                     uint64_t offset) {
    if (e->status || !base) return NULL;
    loom_tensor *t = NULL;
    loom_status st = e->host->tensor_view(e->exec, base, n_dims, ne, nb, offset, &t);
    if (st != LOOM_OK || !t) return host_fail(e, st, "tensor_view");
    return t;
}

int ac_write(ac_env *e, loom_tensor *t, uint64_t offset, const void *src, uint64_t size) {
    if (e->status || !t) return 0;
    loom_status st = e->host->tensor_write(e->exec, t, offset, src, size);
    if (st != LOOM_OK) {
        host_fail(e, st, "tensor_write");
        return 0;
    }
    return 1;
}

int ac_read(ac_env *e, const loom_tensor *t, uint64_t offset, void *dst, uint64_t size) {
    if (e->status || !t) return 0;
    loom_status st = e->host->tensor_read(e->exec, t, offset, dst, size);
    if (st != LOOM_OK) {
        host_fail(e, st, "tensor_read");
        return 0;
    }
    return 1;
}

loom_tensor *ac_i32(ac_env *e, const int32_t *v, int64_t n) {
    const int64_t ne[1] = {n};
    loom_tensor *t = ac_new(e, LOOM_TYPE_I32, 1, ne, LOOM_TENSOR_INPUT);
    if (!ac_write(e, t, 0, v, (uint64_t)n * sizeof(int32_t))) return NULL;
    return t;
}

loom_tensor *ac_f32_from(ac_env *e, const float *v, uint32_t n_dims, const int64_t *ne) {
    loom_tensor *t = ac_new(e, LOOM_TYPE_F32, n_dims, ne, LOOM_TENSOR_INPUT);
    uint64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++)
        n *= (uint64_t)ne[i];
    if (!ac_write(e, t, 0, v, n * sizeof(float))) return NULL;
    return t;
}

loom_tensor *ac_positions(ac_env *e, int64_t n_past, int64_t n) {
    if (e->status) return NULL;
    int32_t buf[256];
    int32_t *p = n <= 256 ? buf : e->host->alloc((size_t)n * sizeof(int32_t));
    if (!p) return ac_fail(e, LOOM_ERR_OUT_OF_MEMORY, "positions");
    for (int64_t i = 0; i < n; i++)
        p[i] = (int32_t)(n_past + i);
    loom_tensor *t = ac_i32(e, p, n);
    if (p != buf) e->host->free(p);
    return t;
}

static void params_init(loom_op_params *p, uint32_t op) {
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->op = op;
}

loom_tensor *ac_op(ac_env *e, const loom_op_params *p, loom_tensor *dst, loom_tensor *const *src, uint32_t n) {
    if (e->status || !dst) return NULL;
    for (uint32_t i = 0; i < n; i++)
        if (!src[i]) return NULL;
    loom_status st = e->host->op(e->exec, p, dst, src, n);
    if (st != LOOM_OK) {
        char what[32];
        return host_fail(e, st, ac_fmt(what, sizeof what, "op %u", (unsigned)p->op));
    }
    return dst;
}

/* A new F32 tensor with the shape of x. */
static loom_tensor *like(ac_env *e, const loom_tensor *x) {
    if (e->status || !x) return NULL;
    int64_t ne[4];
    uint32_t nd = ac_tensor_shape(e->host, x, ne);
    if (!nd) return ac_fail(e, LOOM_ERR_INTERNAL, "tensor_info failed");
    return ac_new(e, LOOM_TYPE_F32, nd, ne, 0);
}

loom_tensor *ac_get_rows(ac_env *e, loom_tensor *table, loom_tensor *ids) {
    if (e->status || !table || !ids) return NULL;
    int64_t tne[4], ine[4];
    ac_tensor_shape(e->host, table, tne);
    ac_tensor_shape(e->host, ids, ine);
    loom_tensor *dst = ac_new_f32_2d(e, tne[0], ine[0]);
    loom_op_params p;
    params_init(&p, LOOM_OP_GET_ROWS);
    loom_tensor *src[2] = {table, ids};
    return ac_op(e, &p, dst, src, 2);
}

loom_tensor *ac_layer_norm(ac_env *e, loom_tensor *x, loom_tensor *w, double eps) {
    loom_op_params p;
    params_init(&p, LOOM_OP_LAYER_NORM);
    p.f[0] = (float)eps;
    loom_tensor *src[2] = {x, w};
    return ac_op(e, &p, like(e, x), src, w ? 2 : 1);
}

loom_tensor *ac_rms_norm(ac_env *e, loom_tensor *x, loom_tensor *w, double eps) {
    loom_op_params p;
    params_init(&p, LOOM_OP_RMS_NORM);
    p.f[0] = (float)eps;
    loom_tensor *src[2] = {x, w};
    return ac_op(e, &p, like(e, x), src, w ? 2 : 1);
}

loom_tensor *ac_norm(ac_env *e, loom_tensor *x, loom_tensor *w) {
    return e->m->style == AC_BLOCK_LLAMA ? ac_rms_norm(e, x, w, e->m->norm_eps)
                                         : ac_layer_norm(e, x, w, e->m->norm_eps);
}

static loom_tensor *binary(ac_env *e, uint32_t op, loom_tensor *a, loom_tensor *b) {
    loom_op_params p;
    params_init(&p, op);
    loom_tensor *src[2] = {a, b};
    return ac_op(e, &p, like(e, a), src, 2);
}

loom_tensor *ac_add(ac_env *e, loom_tensor *a, loom_tensor *b) { return binary(e, LOOM_OP_ADD, a, b); }
loom_tensor *ac_mul(ac_env *e, loom_tensor *a, loom_tensor *b) { return binary(e, LOOM_OP_MUL, a, b); }

loom_tensor *ac_scale(ac_env *e, loom_tensor *a, float s) {
    loom_op_params p;
    params_init(&p, LOOM_OP_SCALE);
    p.f[0] = s;
    loom_tensor *src[1] = {a};
    return ac_op(e, &p, like(e, a), src, 1);
}

loom_tensor *ac_matmul_into(ac_env *e, loom_tensor *dst, loom_tensor *x, loom_tensor *w) {
    loom_op_params p;
    params_init(&p, LOOM_OP_MATMUL);
    loom_tensor *src[2] = {x, w};
    return ac_op(e, &p, dst, src, 2);
}

loom_tensor *ac_matmul(ac_env *e, loom_tensor *x, loom_tensor *w) {
    if (e->status || !x || !w) return NULL;
    int64_t xne[4], wne[4];
    uint32_t xd = ac_tensor_shape(e->host, x, xne);
    ac_tensor_shape(e->host, w, wne);
    if (xne[0] != wne[0])
        return ac_fail(e, LOOM_ERR_INTERNAL, "matmul: inner sizes %lld and %lld differ", (long long)xne[0],
                       (long long)wne[0]);
    const int64_t ne[4] = {wne[1], xne[1], xne[2], xne[3]};
    return ac_matmul_into(e, ac_new(e, LOOM_TYPE_F32, xd < 2 ? 2 : xd, ne, 0), x, w);
}

static loom_tensor *unary(ac_env *e, uint32_t op, loom_tensor *x) {
    loom_op_params p;
    params_init(&p, op);
    loom_tensor *src[1] = {x};
    return ac_op(e, &p, like(e, x), src, 1);
}

loom_tensor *ac_gelu(ac_env *e, loom_tensor *x) { return unary(e, LOOM_OP_GELU, x); }

loom_tensor *ac_swiglu(ac_env *e, loom_tensor *gate, loom_tensor *up) { return binary(e, LOOM_OP_SWIGLU, gate, up); }

loom_tensor *ac_copy_into(ac_env *e, loom_tensor *dst, loom_tensor *src) {
    loom_op_params p;
    params_init(&p, LOOM_OP_COPY);
    loom_tensor *s[1] = {src};
    return ac_op(e, &p, dst, s, 1);
}

loom_tensor *ac_cont(ac_env *e, loom_tensor *x, uint32_t type) {
    if (e->status || !x) return NULL;
    int64_t ne[4];
    uint32_t nd = ac_tensor_shape(e->host, x, ne);
    return ac_copy_into(e, ac_new(e, type, nd, ne, 0), x);
}

loom_tensor *ac_rope(ac_env *e, loom_tensor *x, loom_tensor *pos, int32_t mode) {
    loom_op_params p;
    params_init(&p, LOOM_OP_ROPE);
    p.i[0] = mode;
    p.i[1] = 0;
    p.f[0] = (float)e->m->rope_base;
    p.f[1] = 1.0f;
    loom_tensor *src[2] = {x, pos};
    return ac_op(e, &p, like(e, x), src, 2);
}

loom_tensor *ac_softmax(ac_env *e, loom_tensor *x, loom_tensor *mask, float scale) {
    loom_op_params p;
    params_init(&p, LOOM_OP_SOFTMAX);
    p.f[0] = scale;
    loom_tensor *src[2] = {x, mask};
    return ac_op(e, &p, like(e, x), src, mask ? 2 : 1);
}

loom_tensor *ac_weighted_sum(ac_env *e, loom_tensor *states, loom_tensor *w) {
    if (e->status || !states || !w) return NULL;
    int64_t ne[4];
    ac_tensor_shape(e->host, states, ne);
    loom_op_params p;
    params_init(&p, LOOM_OP_WEIGHTED_SUM);
    loom_tensor *src[2] = {states, w};
    return ac_op(e, &p, ac_new_f32_2d(e, ne[0], ne[1]), src, 2);
}

/* ======================================================================================== */
/* Blocks                                                                                   */
/* ======================================================================================== */

static int64_t elem_size(uint32_t type) { return type == LOOM_TYPE_F16 || type == LOOM_TYPE_BF16 ? 2 : 4; }

int ac_qkv(ac_env *e, const ac_block *b, loom_tensor *xn, loom_tensor *pos, loom_tensor **q, loom_tensor **k,
           loom_tensor **v) {
    const ac_model *m = e->m;
    const int64_t hd = m->head_dim, H = m->n_head, Hkv = m->n_head_kv, C = m->n_embd;
    *q = *k = *v = NULL;
    if (e->status || !xn) return 0;
    int64_t ne[4];
    ac_tensor_shape(e->host, xn, ne);
    const int64_t T = ne[1];
    if (b->wqkv) {
        loom_tensor *qkv = ac_matmul(e, xn, b->wqkv); /* [3C, T] */
        const int64_t vne[3] = {hd, H, T};
        const int64_t vnb[3] = {4, hd * 4, 3 * C * 4};
        *q = ac_cont(e, ac_view(e, qkv, 3, vne, vnb, 0), LOOM_TYPE_F32);
        *k = ac_cont(e, ac_view(e, qkv, 3, vne, vnb, (uint64_t)C * 4), LOOM_TYPE_F32);
        *v = ac_cont(e, ac_view(e, qkv, 3, vne, vnb, (uint64_t)C * 8), LOOM_TYPE_F32);
    } else {
        const int64_t qne[3] = {hd, H, T}, kne[3] = {hd, Hkv, T};
        *q = ac_view(e, ac_matmul(e, xn, b->wq), 3, qne, NULL, 0);
        *k = ac_view(e, ac_matmul(e, xn, b->wk), 3, kne, NULL, 0);
        *v = ac_view(e, ac_matmul(e, xn, b->wv), 3, kne, NULL, 0);
    }
    if (pos) {
        const int32_t mode = m->style == AC_BLOCK_LLAMA ? 1 : 0;
        *q = ac_rope(e, *q, pos, mode);
        *k = ac_rope(e, *k, pos, mode);
    }
    return e->status == LOOM_OK;
}

loom_tensor *ac_attn_out(ac_env *e, const ac_block *b, loom_tensor *attn) {
    if (e->status || !attn) return NULL;
    int64_t ne[4];
    ac_tensor_shape(e->host, attn, ne);
    const int64_t vne[2] = {ne[0] * ne[1], ne[2]};
    return ac_matmul(e, ac_view(e, attn, 2, vne, NULL, 0), b->wo);
}

loom_tensor *ac_ffn_residual(ac_env *e, const ac_block *b, loom_tensor *x) {
    loom_tensor *h = ac_norm(e, x, b->ffn_norm);
    loom_tensor *y;
    if (b->ffn_gate)
        y = ac_swiglu(e, ac_matmul(e, h, b->ffn_gate), ac_matmul(e, h, b->ffn_up));
    else
        y = ac_gelu(e, ac_matmul(e, h, b->ffn_up));
    return ac_add(e, x, ac_matmul(e, y, b->ffn_down));
}

loom_status ac_kv_alloc(ac_env *e, ac_kv *kv, int64_t n_slots, uint32_t type) {
    const int64_t ne[3] = {e->m->head_dim, e->m->n_head_kv, n_slots};
    kv->type = type == LOOM_TYPE_F16 ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
    kv->n_slots = n_slots;
    kv->k = ac_new(e, kv->type, 3, ne, LOOM_TENSOR_PERSISTENT);
    kv->v = ac_new(e, kv->type, 3, ne, LOOM_TENSOR_PERSISTENT);
    return e->status;
}

static loom_tensor *kv_view(ac_env *e, ac_kv *kv, loom_tensor *base, int64_t first, int64_t n) {
    if (first < 0 || first + n > kv->n_slots)
        return ac_fail(e, LOOM_ERR_CONTEXT_FULL, "KV cache slots %lld..%lld exceed its %lld slots", (long long)first,
                       (long long)(first + n), (long long)kv->n_slots);
    const int64_t hd = e->m->head_dim, H = e->m->n_head_kv, es = elem_size(kv->type);
    const int64_t ne[3] = {hd, H, n};
    return ac_view(e, base, 3, ne, NULL, (uint64_t)(first * hd * H * es));
}

loom_tensor *ac_kv_view_k(ac_env *e, ac_kv *kv, int64_t first, int64_t n) { return kv_view(e, kv, kv->k, first, n); }
loom_tensor *ac_kv_view_v(ac_env *e, ac_kv *kv, int64_t first, int64_t n) { return kv_view(e, kv, kv->v, first, n); }

int ac_kv_store(ac_env *e, ac_kv *kv, int64_t slot, loom_tensor *k, loom_tensor *v) {
    if (e->status || !k || !v) return 0;
    int64_t ne[4];
    ac_tensor_shape(e->host, k, ne);
    ac_copy_into(e, ac_kv_view_k(e, kv, slot, ne[2]), k);
    ac_copy_into(e, ac_kv_view_v(e, kv, slot, ne[2]), v);
    return e->status == LOOM_OK;
}

loom_tensor *ac_attention_causal(ac_env *e, loom_tensor *q, loom_tensor *k_all, loom_tensor *v_all, int64_t n_past) {
    if (e->status || !q) return NULL;
    loom_op_params p;
    params_init(&p, LOOM_OP_ATTENTION);
    p.i[0] = (int32_t)n_past;
    p.f[0] = (float)(1.0 / sqrt((double)e->m->head_dim));
    loom_tensor *src[3] = {q, k_all, v_all};
    return ac_op(e, &p, like(e, q), src, 3);
}

loom_tensor *ac_attention_masked(ac_env *e, loom_tensor *q, loom_tensor *k, loom_tensor *v, const float *mask) {
    if (e->status || !q || !k || !v) return NULL;
    int64_t qne[4], kne[4];
    ac_tensor_shape(e->host, q, qne);
    ac_tensor_shape(e->host, k, kne);
    const int64_t hd = qne[0], H = qne[1], T = qne[2], Hkv = kne[1], NK = kne[2];
    int64_t kes = 4;
    {
        loom_tensor_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (e->host->tensor_info(k, &info) == LOOM_OK) kes = elem_size(info.type);
    }
    /* q [hd, H, T] -> [hd, T, H] */
    const int64_t qpne[3] = {hd, T, H}, qpnb[3] = {4, H * hd * 4, hd * 4};
    loom_tensor *qp = ac_cont(e, ac_view(e, q, 3, qpne, qpnb, 0), LOOM_TYPE_F32);
    /* K [hd, Hkv, NK] -> [hd, NK, Hkv] (F32) */
    const int64_t kpne[3] = {hd, NK, Hkv}, kpnb[3] = {kes, Hkv * hd * kes, hd * kes};
    loom_tensor *kp = ac_cont(e, ac_view(e, k, 3, kpne, kpnb, 0), LOOM_TYPE_F32);
    /* V [hd, Hkv, NK] -> [NK, hd, Hkv] */
    const int64_t vtne[3] = {NK, hd, Hkv}, vtnb[3] = {Hkv * hd * kes, kes, hd * kes};
    loom_tensor *vt = ac_cont(e, ac_view(e, v, 3, vtne, vtnb, 0), LOOM_TYPE_F32);
    /* scores [NK, T, H] */
    loom_tensor *s = ac_matmul(e, qp, kp);
    if (e->status) return NULL;
    /* the mask replicated over heads */
    const uint64_t per_head = (uint64_t)NK * (uint64_t)T;
    const int64_t mne[3] = {NK, T, H};
    loom_tensor *mt = ac_new(e, LOOM_TYPE_F32, 3, mne, LOOM_TENSOR_INPUT);
    for (int64_t h = 0; h < H && !e->status; h++)
        ac_write(e, mt, (uint64_t)h * per_head * 4, mask, per_head * 4);
    loom_tensor *pr = ac_softmax(e, s, mt, (float)(1.0 / sqrt((double)hd)));
    /* out [hd, T, H] */
    loom_tensor *o = ac_matmul(e, pr, vt);
    /* -> [hd, H, T] */
    const int64_t one[3] = {hd, H, T}, onb[3] = {4, T * hd * 4, hd * 4};
    return ac_cont(e, ac_view(e, o, 3, one, onb, 0), LOOM_TYPE_F32);
}

loom_tensor *ac_block_forward_cached(ac_env *e, const ac_block *b, loom_tensor *x, loom_tensor *pos, ac_kv *kv,
                                     int64_t n_past) {
    if (e->status || !x) return NULL;
    int64_t ne[4];
    ac_tensor_shape(e->host, x, ne);
    const int64_t T = ne[1];
    loom_tensor *q, *k, *v;
    ac_qkv(e, b, ac_norm(e, x, b->attn_norm), pos, &q, &k, &v);
    ac_kv_store(e, kv, n_past, k, v);
    loom_tensor *a =
        ac_attention_causal(e, q, ac_kv_view_k(e, kv, 0, n_past + T), ac_kv_view_v(e, kv, 0, n_past + T), n_past);
    x = ac_add(e, x, ac_attn_out(e, b, a));
    return ac_ffn_residual(e, b, x);
}

int ac_head(ac_env *e, loom_tensor *x, loom_tensor *logits) {
    if (e->status || !x || !logits) return 0;
    int64_t xne[4], lne[4];
    ac_tensor_shape(e->host, x, xne);
    ac_tensor_shape(e->host, logits, lne);
    const int64_t C = xne[0], T = xne[1], rows = lne[1];
    if (lne[0] != e->m->n_vocab || rows > T || rows < 1) {
        ac_fail(e, LOOM_ERR_INTERNAL, "logits tensor [%lld, %lld] does not fit %lld tokens of vocabulary %lld",
                (long long)lne[0], (long long)lne[1], (long long)T, (long long)e->m->n_vocab);
        return 0;
    }
    loom_tensor *last = x;
    if (rows < T) {
        const int64_t vne[2] = {C, rows};
        last = ac_view(e, x, 2, vne, NULL, (uint64_t)((T - rows) * C * 4));
    }
    loom_tensor *h = ac_norm(e, last, e->m->out_norm);
    return ac_matmul_into(e, logits, h, e->m->output) != NULL;
}

/* ======================================================================================== */
/* Metadata export                                                                          */
/* ======================================================================================== */

static void emit(ac_exporter *x, const char *key, uint32_t type, uint32_t elem_type, uint64_t count,
                 const void *value) {
    char full[256];
    if (x->stopped) return;
    if (strncmp(key, "general.", 8) != 0) key = ac_fmt(full, sizeof full, "%s.%s", x->arch, key);
    if (x->visit(key, type, elem_type, count, value, x->user_data)) x->stopped = 1;
}

void ac_export_u32(ac_exporter *x, const char *key, uint32_t v) { emit(x, key, LOOM_META_U32, 0, 1, &v); }
void ac_export_i32(ac_exporter *x, const char *key, int32_t v) { emit(x, key, LOOM_META_I32, 0, 1, &v); }
void ac_export_f32(ac_exporter *x, const char *key, float v) { emit(x, key, LOOM_META_F32, 0, 1, &v); }
void ac_export_bool(ac_exporter *x, const char *key, bool v) { emit(x, key, LOOM_META_BOOL, 0, 1, &v); }
void ac_export_str(ac_exporter *x, const char *key, const char *v) { emit(x, key, LOOM_META_STRING, 0, 1, &v); }
void ac_export_f32_array(ac_exporter *x, const char *key, const float *v, uint64_t n) {
    emit(x, key, LOOM_META_ARRAY, LOOM_META_F32, n, v);
}

void ac_export_common(ac_exporter *x, const ac_model *m) {
    ac_export_str(x, "general.architecture", m->arch);
    ac_export_str(x, "block_style", m->style == AC_BLOCK_LLAMA ? "llama" : "gpt");
    ac_export_u32(x, "block_count", (uint32_t)m->n_layer);
    ac_export_u32(x, "context_length", (uint32_t)m->n_ctx_train);
    ac_export_u32(x, "embedding_length", (uint32_t)m->n_embd);
    ac_export_u32(x, "feed_forward_length", (uint32_t)m->n_ff);
    ac_export_u32(x, "attention.head_count", (uint32_t)m->n_head);
    ac_export_u32(x, "attention.head_count_kv", (uint32_t)m->n_head_kv);
    if (m->style == AC_BLOCK_LLAMA)
        ac_export_f32(x, "attention.layer_norm_rms_epsilon", (float)m->norm_eps);
    else
        ac_export_f32(x, "attention.layer_norm_epsilon", (float)m->norm_eps);
    ac_export_f32(x, "rope.freq_base", (float)m->rope_base);
    ac_export_u32(x, "rope.dimension_count", (uint32_t)m->head_dim);
    ac_export_u32(x, "vocab_size", (uint32_t)m->n_vocab);
}

/* ======================================================================================== */
/* Weight roles                                                                             */
/* ======================================================================================== */

static const char *tensor_name(const ac_model *m, const loom_tensor *t) {
    loom_tensor_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (!t || m->host->tensor_info(t, &info) != LOOM_OK || !info.name) return NULL;
    return info.name;
}

int32_t ac_describe(const ac_model *m, loom_tensor *w, uint32_t role, int32_t layer, int32_t head_dim,
                    loom_tensor *norm, const char *group, loom_weight_visit_fn visit, void *user_data) {
    if (!w) return 0;
    loom_weight_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.role = role;
    d.layer = layer;
    d.head_dim = head_dim;
    d.name = tensor_name(m, w);
    d.norm = norm ? tensor_name(m, norm) : NULL;
    d.group = group;
    if (!d.name) return 0;
    return visit(&d, user_data);
}

int32_t ac_describe_block(const ac_model *m, const ac_block *b, int32_t layer, loom_weight_visit_fn visit,
                          void *user_data) {
    const int32_t hd = (int32_t)m->head_dim;
    int32_t r = 0;
    r = r ? r : ac_describe(m, b->attn_norm, LOOM_ROLE_NORM, layer, 0, NULL, NULL, visit, user_data);
    r = r ? r
          : ac_describe(m, b->wqkv, LOOM_ROLE_RESIDUAL_READER, layer, hd, b->attn_norm, "attn_in", visit, user_data);
    r = r ? r : ac_describe(m, b->wq, LOOM_ROLE_RESIDUAL_READER, layer, hd, b->attn_norm, "attn_in", visit, user_data);
    r = r ? r : ac_describe(m, b->wk, LOOM_ROLE_RESIDUAL_READER, layer, hd, b->attn_norm, "attn_in", visit, user_data);
    r = r ? r : ac_describe(m, b->wv, LOOM_ROLE_RESIDUAL_READER, layer, hd, b->attn_norm, "attn_in", visit, user_data);
    r = r ? r : ac_describe(m, b->wo, LOOM_ROLE_RESIDUAL_WRITER, layer, 0, NULL, NULL, visit, user_data);
    r = r ? r : ac_describe(m, b->ffn_norm, LOOM_ROLE_NORM, layer, 0, NULL, NULL, visit, user_data);
    r = r ? r
          : ac_describe(m, b->ffn_gate, LOOM_ROLE_RESIDUAL_READER, layer, 0, b->ffn_norm, "ffn_in", visit, user_data);
    r = r ? r : ac_describe(m, b->ffn_up, LOOM_ROLE_RESIDUAL_READER, layer, 0, b->ffn_norm, "ffn_in", visit, user_data);
    r = r ? r : ac_describe(m, b->ffn_down, LOOM_ROLE_RESIDUAL_WRITER, layer, 0, NULL, NULL, visit, user_data);
    return r;
}

int32_t ac_describe_ends(const ac_model *m, loom_weight_visit_fn visit, void *user_data) {
    int32_t r = ac_describe(m, m->tok_embd, LOOM_ROLE_EMBEDDING, -1, 0, NULL, NULL, visit, user_data);
    r = r ? r : ac_describe(m, m->out_norm, LOOM_ROLE_NORM, -1, 0, NULL, NULL, visit, user_data);
    if (!r && m->output != m->tok_embd)
        r = ac_describe(m, m->output, LOOM_ROLE_HEAD, -1, 0, m->out_norm, NULL, visit, user_data);
    return r;
}

/* ---- plugin glue ---- */

void ac_probe_init(ac_model *m, const loom_host_api *host, const loom_model *model, const char *arch) {
    memset(m, 0, sizeof *m);
    m->host = host;
    m->model = model;
    m->arch = arch;
}

int32_t ac_match_name(const ac_model *m) {
    const char *s = NULL;
    if (ac_meta_string(m, "general.architecture", &s) == LOOM_OK) return !strcmp(s, m->arch) ? 100 : 0;
    if (ac_meta_string(m, "config.arch", &s) == LOOM_OK && !strcmp(s, m->arch)) return 90;
    return -1;
}

loom_status ac_model_dims(void *arch_model, int64_t *n_vocab, int64_t *n_ctx_train, int64_t *n_embd, int64_t *n_layer) {
    const ac_model *m = arch_model;
    *n_vocab = m->n_vocab;
    *n_ctx_train = m->n_ctx_train;
    *n_embd = m->n_embd;
    *n_layer = m->n_layer;
    return LOOM_OK;
}

loom_status ac_plugin_init(const loom_host_api *host, void **state, char *reason, size_t reason_size) {
    (void)host;
    (void)reason;
    (void)reason_size;
    *state = NULL;
    return LOOM_OK;
}

loom_status ac_check_tokens(ac_env *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_past, int64_t n_ctx) {
    if ((int64_t)n_past + (int64_t)n_tokens > n_ctx) {
        ac_fail(e, LOOM_ERR_CONTEXT_FULL, "%u + %u tokens exceed the context of %lld", n_past, n_tokens,
                (long long)n_ctx);
        return e->status;
    }
    for (uint32_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= e->m->n_vocab) {
            ac_fail(e, LOOM_ERR_INVALID_ARGUMENT, "token %d at %u is outside the vocabulary of %lld", tokens[i], i,
                    (long long)e->m->n_vocab);
            return e->status;
        }
    return LOOM_OK;
}
