/*
 * tokenizer_bpe.c - byte-level BPE (GGUF tokenizer.ggml.model = "gpt2").
 *
 * 1. The text is read as code points the way llama.cpp reads it (a malformed byte becomes
 *    U+FFFD; overlong forms are accepted and re-encoded in their shortest form).
 * 2. The pre-tokenizer cuts it into words: the model's regular expressions (chosen by
 *    tokenizer.ggml.pre) run one after the other, each cutting the pieces the previous one left
 *    (matches and the text between matches both become pieces). PCRE2 runs them, in UTF mode
 *    with Unicode properties.
 * 3. Every byte of a word is mapped to a printable code point (GPT-2's byte-to-unicode table),
 *    and the word's symbols are merged pair by pair, lowest merge rank first (leftmost on ties).
 * 4. Each final symbol is looked up in the vocabulary.
 */
#include "tokenizer_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================================================ */
/* Character classes of the pre-tokenizer expressions                                           */
/* ============================================================================================ */

/*
 * \s is Unicode's White_Space property (PCRE2 10.42's \s leaves out U+0085). \p{L}, \p{N} and
 * \p{P} are extended by the code points Unicode 15.0 and 15.1 assigned to those categories:
 * PCRE2 10.42 knows Unicode 14 only, while llama.cpp's tables are from Unicode 15.1. With a newer
 * PCRE2 the additions are simply redundant.
 */
#define WS "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define LX                                                                                                             \
    "\\p{L}\\x{1123F}\\x{11240}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}\\x{1342F}\\x{13441}-\\x{13446}"   \
    "\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{2B739}"                    \
    "\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}"
#define NX "\\p{N}\\x{11F50}-\\x{11F59}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}"
#define PX "\\p{P}\\x{11B00}-\\x{11B09}\\x{11F43}-\\x{11F4F}"

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
#define RE_GPT2                                                                                                        \
    "'s|'t|'re|'ve|'m|'ll|'d| ?[" LX "]+| ?[" NX "]+| ?[^" WS LX NX "]+|[" WS "]+(?![^" WS "])|[" WS "]+"
/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
 * \s+(?!\S)|\s+ (the case-insensitive part spelled out: (?i) would also let U+017F match 's') */
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3_LIKE(DIGITS)                                                                                         \
    RE_CONTRACTIONS "|[^\\r\\n" LX NX "]?[" LX "]+|[" NX "]" DIGITS "| ?[^" WS LX NX "]+[\\r\\n]*|[" WS                \
                    "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"

typedef struct pre_spec {
    const char *const *names;
    const char *regex[TOK_MAX_REGEX];
    bool ignore_merges;
    bool add_bos;
} pre_spec;

static const char *const names_default[] = {"default", NULL};
static const char *const names_gpt2[] = {"gpt-2",      "phi-2",       "jina-es",      "jina-de",    "gigachat",
                                         "jina-v2-es", "jina-v2-de",  "a.x-4.0",      "mellum",     "modern-bert",
                                         "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4",    "mpt",
                                         "olmo",       "jais",        "trillion",     "granite-docling", NULL};
static const char *const names_starcoder[] = {"starcoder", "refact",  "command-r",  "smollm",
                                              "codeshell", "exaone",  "minerva-7b", "mellum2", NULL};
static const char *const names_llama3[] = {"llama3", "llama-v3",  "llama-bpe", "falcon3",      "falcon-h1",
                                           "pixtral", "midm-2.0", "lfm2",      "jina-v5-nano", NULL};
static const char *const names_llama3_plain[] = {"dbrx", "smaug-bpe", NULL};
static const char *const names_qwen2[] = {"qwen2",     "deepseek-r1-qwen", "kormo",      "f2llmv2",
                                          "megrez",    "stablelm2",        "hunyuan",    "solar-open", NULL};

static const pre_spec pre_specs[] = {
    {names_default, {"[" PX "\\$\\+<=>\\^~\\|]+", RE_GPT2, "[" NX "]+", "[0-9][0-9][0-9]"}, false, false},
    {names_gpt2, {RE_GPT2}, false, false},
    {names_starcoder, {"[" NX "]", RE_GPT2}, false, false},
    {names_llama3, {RE_LLAMA3_LIKE("{1,3}")}, true, true},
    {names_llama3_plain, {RE_LLAMA3_LIKE("{1,3}")}, false, false},
    {names_qwen2, {RE_LLAMA3_LIKE("")}, false, false},
};

/* ============================================================================================ */
/* GPT-2 byte <-> code point                                                                    */
/* ============================================================================================ */

static bool byte_is_printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

uint32_t tok_bpe_byte_to_cpt(uint8_t b) {
    if (byte_is_printable(b)) return b;
    /* The others get 256, 257, ... in byte order. */
    uint32_t n = 0;
    for (int c = 0; c < b; c++)
        if (!byte_is_printable(c)) n++;
    return 256 + n;
}

int tok_bpe_cpt_to_byte(uint32_t cpt) {
    if (cpt < 256) return byte_is_printable((int)cpt) ? (int)cpt : -1;
    if (cpt >= 256 + 68) return -1; /* 68 bytes are not printable */
    uint32_t n = cpt - 256;
    for (int c = 0; c < 256; c++) {
        if (!byte_is_printable(c)) {
            if (n == 0) return c;
            n--;
        }
    }
    return -1;
}

/* UTF-8 of each byte's code point, built once. */
typedef struct byte_enc {
    char s[2];
    uint8_t n;
} byte_enc;

static byte_enc enc_table[256];
static pthread_once_t enc_once = PTHREAD_ONCE_INIT;

static void enc_init(void) {
    for (int b = 0; b < 256; b++) {
        char tmp[4];
        size_t n = tok_utf8_put(tok_bpe_byte_to_cpt((uint8_t)b), tmp);
        enc_table[b].s[0] = tmp[0];
        enc_table[b].s[1] = n > 1 ? tmp[1] : 0;
        enc_table[b].n = (uint8_t)n;
    }
}

/* ============================================================================================ */
/* Setup                                                                                        */
/* ============================================================================================ */

void tok_bpe_release(loom_tokenizer *tok) {
    for (uint32_t i = 0; i < tok->n_re; i++) pcre2_code_free(tok->re[i]);
    tok->n_re = 0;
}

loom_status tok_bpe_init(loom_tokenizer *tok, char *err, size_t err_size) {
    pthread_once(&enc_once, enc_init);
    const pre_spec *spec = NULL;
    for (size_t i = 0; i < sizeof pre_specs / sizeof pre_specs[0] && !spec; i++)
        for (size_t k = 0; pre_specs[i].names[k]; k++)
            if (!strcmp(pre_specs[i].names[k], tok->pre)) spec = &pre_specs[i];
    if (!spec)
        return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED,
                        "tokenizer: pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported", tok->pre);
    tok->ignore_merges = spec->ignore_merges;
    tok->add_bos = spec->add_bos;
    for (uint32_t i = 0; i < TOK_MAX_REGEX && spec->regex[i]; i++) {
        int code;
        PCRE2_SIZE at;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)spec->regex[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                       &code, &at, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            return loom_err(err, err_size, LOOM_ERR_INTERNAL,
                            "tokenizer: pre-tokenizer expression %u of '%s' does not compile at %zu: %s", i,
                            tok->pre, (size_t)at, (const char *)msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is the fallback */
        tok->re[tok->n_re++] = re;
    }
    return LOOM_OK;
}

/* ============================================================================================ */
/* Pre-tokenization                                                                             */
/* ============================================================================================ */

typedef struct span {
    size_t off, len; /* bytes of the normalised text */
} span;

typedef struct span_list {
    span *v;
    size_t n, cap;
} span_list;

static bool span_push(span_list *l, size_t off, size_t len) {
    if (!len) return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        span *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (span){off, len};
    return true;
}

/* Cut every piece of `in` with `re`: matches and the gaps between them become pieces. */
static loom_status split_with(const pcre2_code *re, const char *subject, const span_list *in, span_list *out,
                              pcre2_match_data *md) {
    out->n = 0;
    for (size_t p = 0; p < in->n; p++) {
        const char *s = subject + in->v[p].off;
        size_t len = in->v[p].len, start = 0, gap = 0;
        while (start < len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) return LOOM_ERR_TOKENIZER; /* resource limits: not expected */
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) {
                /* Empty match: step over one character. */
                start = ms + 1;
                while (start < len && ((unsigned char)s[start] & 0xC0) == 0x80) start++;
                continue;
            }
            if (!span_push(out, in->v[p].off + gap, ms - gap)) return LOOM_ERR_OUT_OF_MEMORY;
            if (!span_push(out, in->v[p].off + ms, me - ms)) return LOOM_ERR_OUT_OF_MEMORY;
            start = gap = me;
        }
        if (!span_push(out, in->v[p].off + gap, len - gap)) return LOOM_ERR_OUT_OF_MEMORY;
    }
    return LOOM_OK;
}

/* ============================================================================================ */
/* Merging                                                                                      */
/* ============================================================================================ */

typedef struct bpe_sym {
    int32_t prev, next;
    uint32_t off, n;
} bpe_sym;

typedef struct bpe_bigram {
    int32_t left, right;
    uint32_t rank, size;
} bpe_bigram;

typedef struct bpe_work {
    bpe_sym *syms;
    size_t syms_cap;
    bpe_bigram *heap;
    size_t heap_n, heap_cap;
    char *word; /* byte-encoded word */
    size_t word_cap;
} bpe_work;

static bool bg_before(const bpe_bigram *a, const bpe_bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool bg_push(bpe_work *w, bpe_bigram b) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        bpe_bigram *v = realloc(w->heap, cap * sizeof *v);
        if (!v) return false;
        w->heap = v;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(&b, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return true;
}

static bpe_bigram bg_pop(bpe_work *w) {
    bpe_bigram top = w->heap[0];
    bpe_bigram last = w->heap[--w->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bpe_bigram *best = &last;
        if (l < w->heap_n && bg_before(&w->heap[l], best)) m = l, best = &w->heap[l];
        if (r < w->heap_n && bg_before(&w->heap[r], best)) m = r;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->heap_n) w->heap[i] = last;
    return top;
}

/* Rank of the merge (a, b), or -1. */
static int64_t merge_rank(const loom_tokenizer *tok, const char *a, size_t alen, const char *b, size_t blen) {
    if (!tok->merge_hash.slots) return -1;
    uint64_t h = tok_hash_bytes(a, alen, 0);
    h = tok_hash_bytes(b, blen, h);
    uint32_t i = (uint32_t)h & tok->merge_hash.mask;
    for (;;) {
        uint32_t s = tok->merge_hash.slots[i];
        if (!s) return -1;
        const tok_merge *m = &tok->merges[s - 1];
        if (m->a_len == alen && m->b_len == blen && !memcmp(tok->merge_pool + m->a_off, a, alen) &&
            !memcmp(tok->merge_pool + m->b_off, b, blen))
            return (int64_t)(s - 1);
        i = (i + 1) & tok->merge_hash.mask;
    }
}

static bool add_bigram(const loom_tokenizer *tok, bpe_work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const bpe_sym *l = &w->syms[left], *r = &w->syms[right];
    int64_t rank = merge_rank(tok, w->word + l->off, l->n, w->word + r->off, r->n);
    if (rank < 0) return true;
    return bg_push(w, (bpe_bigram){left, right, (uint32_t)rank, l->n + r->n});
}

/* BPE over one word (raw bytes); appends its tokens. */
static loom_status bpe_word(const loom_tokenizer *tok, bpe_work *w, const char *raw, size_t raw_len, tok_ids *out) {
    if (raw_len > UINT32_MAX / 4) return LOOM_ERR_INVALID_ARGUMENT; /* symbol offsets are 32-bit */
    size_t need = raw_len * 2;
    if (need > w->word_cap) {
        char *nw = realloc(w->word, need);
        if (!nw) return LOOM_ERR_OUT_OF_MEMORY;
        w->word = nw;
        w->word_cap = need;
    }
    if (raw_len > w->syms_cap) {
        bpe_sym *ns = realloc(w->syms, raw_len * sizeof *ns);
        if (!ns) return LOOM_ERR_OUT_OF_MEMORY;
        w->syms = ns;
        w->syms_cap = raw_len;
    }
    size_t len = 0;
    for (size_t i = 0; i < raw_len; i++) {
        const byte_enc *e = &enc_table[(unsigned char)raw[i]];
        w->word[len++] = e->s[0];
        if (e->n > 1) w->word[len++] = e->s[1];
    }
    if (tok->ignore_merges) {
        int32_t id = tok_find(tok, w->word, len);
        if (id >= 0) {
            tok_ids_push(out, id);
            return LOOM_OK;
        }
    }
    /* One symbol per byte-encoded character. */
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok_utf8_len((unsigned char)w->word[off]);
        if (l > len - off) l = len - off;
        bpe_sym *s = &w->syms[n];
        s->off = (uint32_t)off;
        s->n = (uint32_t)l;
        s->prev = n - 1;
        off += l;
        s->next = off == len ? -1 : n + 1;
        n++;
    }
    w->heap_n = 0;
    for (int32_t i = 1; i < n; i++)
        if (!add_bigram(tok, w, i - 1, i)) return LOOM_ERR_OUT_OF_MEMORY;
    while (w->heap_n) {
        bpe_bigram b = bg_pop(w);
        bpe_sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = b.left;
        if (!add_bigram(tok, w, l->prev, b.left) || !add_bigram(tok, w, b.left, l->next))
            return LOOM_ERR_OUT_OF_MEMORY;
    }
    for (int32_t i = 0; i < n; i++) {
        const bpe_sym *s = &w->syms[i];
        if (!s->n) continue;
        int32_t id = tok_find(tok, w->word + s->off, s->n);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        /* Not a token: llama.cpp looks up each byte of the encoded text alone (only ASCII
         * characters can be found that way) and drops the rest. */
        for (uint32_t k = 0; k < s->n; k++) {
            int32_t bid = tok_find(tok, w->word + s->off + k, 1);
            if (bid >= 0) tok_ids_push(out, bid);
        }
    }
    return LOOM_OK;
}

/* ============================================================================================ */
/* Encoding                                                                                     */
/* ============================================================================================ */

loom_status tok_bpe_encode(const loom_tokenizer *tok, const char *text, size_t len, tok_ids *out) {
    if (len == 0) return LOOM_OK;
    if (len > (SIZE_MAX / 8)) return LOOM_ERR_INVALID_ARGUMENT;
    /* The text as llama.cpp sees it (`norm`: code points re-encoded), and the same with
     * surrogates replaced by U+E000 (`subj`) so that PCRE2 gets valid UTF-8. Both have the same
     * length: every code point keeps its encoded length (surrogates and U+E000 take 3 bytes). */
    const unsigned char *s = (const unsigned char *)text;
    char *norm = malloc(len * 3 + 4);
    char *subj = NULL;
    span_list a = {0}, b = {0};
    bpe_work w = {0};
    pcre2_match_data *md = NULL;
    loom_status st = LOOM_OK;
    if (!norm) return LOOM_ERR_OUT_OF_MEMORY;
    size_t n = 0, pos = 0;
    bool surrogates = false;
    while (pos < len) {
        uint32_t cpt = tok_utf8_next(s, len, &pos);
        if (cpt >= 0xD800 && cpt <= 0xDFFF) surrogates = true;
        n += tok_utf8_put(cpt, norm + n);
    }
    if (surrogates) {
        subj = malloc(n ? n : 1);
        if (!subj) {
            st = LOOM_ERR_OUT_OF_MEMORY;
            goto done;
        }
        memcpy(subj, norm, n);
        for (size_t i = 0; i + 2 < n; i++) {
            if ((unsigned char)subj[i] == 0xED && ((unsigned char)subj[i + 1] & 0xE0) == 0xA0) {
                subj[i] = (char)0xEE, subj[i + 1] = (char)0x80, subj[i + 2] = (char)0x80;
                i += 2;
            }
        }
    }
    const char *subject = subj ? subj : norm;

    if (!span_push(&a, 0, n)) goto oom;
    if (tok->n_re) {
        md = pcre2_match_data_create(4, NULL);
        if (!md) goto oom;
    }
    for (uint32_t r = 0; r < tok->n_re; r++) {
        st = split_with(tok->re[r], subject, &a, &b, md);
        if (st) goto done;
        span_list t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < a.n && !st; i++) st = bpe_word(tok, &w, norm + a.v[i].off, a.v[i].len, out);
    goto done;
oom:
    st = LOOM_ERR_OUT_OF_MEMORY;
done:
    pcre2_match_data_free(md);
    free(norm);
    free(subj);
    free(a.v);
    free(b.v);
    free(w.syms);
    free(w.heap);
    free(w.word);
    return st;
}
