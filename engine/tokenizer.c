/*
 * tokenizer.c - the tokenizer object: vocabulary, special tokens, the split of special-token
 * text out of the input, pieces and detokenization. The two algorithms live in
 * tokenizer_spm.c (SentencePiece-style BPE) and tokenizer_bpe.c (byte-level BPE), the
 * tokenizer.json reader in tokenizer_hf.c.
 *
 * The behaviour follows llama.cpp's tokenizer (the reference Loom is compared against, see
 * docs/tokenizers.md), including its rules for special tokens and its defaults.
 */
#include "tokenizer_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================================================ */
/* Small helpers                                                                                */
/* ============================================================================================ */

void tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->oom) return;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) {
            ids->oom = true;
            return;
        }
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
}

uint64_t tok_hash_bytes(const void *data, size_t len, uint64_t seed) {
    /* FNV-1a, 64 bits, then a final mix. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static loom_status hash_alloc(tok_hash *h, uint32_t n) {
    uint32_t size = 16;
    while (size < 2 * (uint64_t)n + 16) size <<= 1;
    h->slots = calloc(size, sizeof *h->slots);
    if (!h->slots) return LOOM_ERR_OUT_OF_MEMORY;
    h->mask = size - 1;
    return LOOM_OK;
}

int32_t tok_find(const loom_tokenizer *tok, const char *text, size_t len) {
    if (!tok->vocab_hash.slots) return -1;
    uint32_t i = (uint32_t)tok_hash_bytes(text, len, 0) & tok->vocab_hash.mask;
    for (;;) {
        uint32_t s = tok->vocab_hash.slots[i];
        if (!s) return -1;
        const tok_entry *e = &tok->tokens[s - 1];
        if (e->len == len && !memcmp(tok->pool + e->off, text, len)) return (int32_t)(s - 1);
        i = (i + 1) & tok->vocab_hash.mask;
    }
}

/* Insert token `id`; a later token with the same text replaces an earlier one (as in llama.cpp). */
static void vocab_insert(loom_tokenizer *tok, uint32_t id) {
    const tok_entry *e = &tok->tokens[id];
    uint32_t i = (uint32_t)tok_hash_bytes(tok->pool + e->off, e->len, 0) & tok->vocab_hash.mask;
    for (;;) {
        uint32_t s = tok->vocab_hash.slots[i];
        if (!s) {
            tok->vocab_hash.slots[i] = id + 1;
            return;
        }
        const tok_entry *o = &tok->tokens[s - 1];
        if (o->len == e->len && !memcmp(tok->pool + o->off, tok->pool + e->off, e->len)) {
            tok->vocab_hash.slots[i] = id + 1;
            return;
        }
        i = (i + 1) & tok->vocab_hash.mask;
    }
}

/* ============================================================================================ */
/* UTF-8 as llama.cpp reads it                                                                  */
/* ============================================================================================ */

size_t tok_utf8_len(unsigned char c) {
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

uint32_t tok_utf8_next(const unsigned char *s, size_t len, size_t *pos) {
    size_t o = *pos;
    unsigned char c = s[o];
    if (!(c & 0x80)) {
        *pos = o + 1;
        return c;
    }
    size_t n = 0;
    uint32_t cpt = 0;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cpt = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cpt = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cpt = c & 0x07;
    }
    /* A continuation byte (10xxxxxx) or 11111xxx as lead: malformed. */
    if (n == 0 || o + n > len) goto bad;
    for (size_t k = 1; k < n; k++) {
        if ((s[o + k] & 0xC0) != 0x80) goto bad;
        cpt = (cpt << 6) | (s[o + k] & 0x3F);
    }
    if (cpt > 0x10FFFF) goto bad;
    *pos = o + n;
    return cpt;
bad:
    *pos = o + 1;
    return 0xFFFD;
}

size_t tok_utf8_put(uint32_t cpt, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cpt < 0x80) {
        o[0] = (unsigned char)cpt;
        return 1;
    }
    if (cpt < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cpt >> 6));
        o[1] = (unsigned char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cpt >> 12));
        o[1] = (unsigned char)(0x80 | ((cpt >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | ((cpt >> 18) & 0x07));
    o[1] = (unsigned char)(0x80 | ((cpt >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cpt >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cpt & 0x3F));
    return 4;
}

/* ============================================================================================ */
/* Creation                                                                                     */
/* ============================================================================================ */

void loom_vocab_desc_init(loom_vocab_desc *d) {
    memset(d, 0, sizeof *d);
    d->bos = d->eos = d->eot = d->eom = d->unk = d->pad = d->sep = -2;
    d->add_bos = d->add_eos = d->add_space_prefix = -1;
}

static uint32_t attr_of_type(int32_t type) {
    switch (type) {
    case 1: return LOOM_TOKEN_ATTR_NORMAL;
    case 2: return LOOM_TOKEN_ATTR_UNKNOWN;
    case 3: return LOOM_TOKEN_ATTR_CONTROL;
    case 4: return LOOM_TOKEN_ATTR_USER_DEFINED;
    case 5: return LOOM_TOKEN_ATTR_UNUSED;
    case 6: return LOOM_TOKEN_ATTR_BYTE;
    default: return LOOM_TOKEN_ATTR_UNDEFINED;
    }
}

/* Tokens that end a turn or the text, found by their text (llama.cpp's list). */
static const char *const eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>", NULL};
static const char *const eog_names[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "[e~[",
                                        NULL};
/* Fill-in-the-middle tokens: pad, repo and file-separator tokens also end generation. */
static const char *const fim_pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const fim_rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_names[] = {"<|file_sep|>", NULL};
static const char *const fim_other_names[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>",
    NULL};

static int32_t find_name(const loom_tokenizer *tok, const char *name) { return tok_find(tok, name, strlen(name)); }

/* First token of the list present in the vocabulary (llama.cpp takes the first one its hash
 * map yields when several are present; Loom takes the first of the list). */
static int32_t find_first(const loom_tokenizer *tok, const char *const *names) {
    for (size_t i = 0; names[i]; i++) {
        int32_t id = find_name(tok, names[i]);
        if (id >= 0) return id;
    }
    return -1;
}

static void mark_control(loom_tokenizer *tok, int32_t id) {
    if (id >= 0) tok->tokens[id].attr |= LOOM_TOKEN_ATTR_CONTROL;
}

static bool eog_has(const loom_tokenizer *tok, int32_t id) {
    for (uint32_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id) return true;
    return false;
}

static void eog_add(loom_tokenizer *tok, int32_t id) {
    if (id < 0 || eog_has(tok, id)) return;
    tok->eog[tok->n_eog++] = id;
}

static void eog_remove(loom_tokenizer *tok, int32_t id) {
    for (uint32_t i = 0; i < tok->n_eog; i++) {
        if (tok->eog[i] == id) {
            tok->eog[i] = tok->eog[--tok->n_eog];
            return;
        }
    }
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const loom_tokenizer *tok = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = tok->tokens[x].len, ly = tok->tokens[y].len;
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Special-token bookkeeping after the vocabulary is in: end-of-generation set, attribute fixes
 * and the list of tokens split out of the text, longest first. */
static loom_status finish_specials(loom_tokenizer *tok, const char *general_name) {
    /* End of turn: metadata, else by text. Tokens found by text are made control tokens. */
    if (tok->eot < 0) {
        tok->eot = find_first(tok, eot_names);
    }
    mark_control(tok, tok->eot);
    int32_t fim_pad = find_first(tok, fim_pad_names), fim_rep = find_first(tok, fim_rep_names),
            fim_sep = find_first(tok, fim_sep_names);
    mark_control(tok, fim_pad);
    mark_control(tok, fim_rep);
    mark_control(tok, fim_sep);
    /* Of each fill-in-the-middle family (prefix, suffix, middle: 7 names each) the first present. */
    for (int fam = 0; fam < 3; fam++) {
        for (int k = 0; k < 7; k++) {
            int32_t id = find_name(tok, fim_other_names[fam * 7 + k]);
            if (id >= 0) {
                mark_control(tok, id);
                break;
            }
        }
    }
    if (tok->eom < 0) tok->eom = find_name(tok, "<|eom_id|>");
    mark_control(tok, tok->eom);

    /* Control tokens named "unused" are unused. */
    for (uint32_t i = 0; i < tok->n_vocab; i++) {
        tok_entry *e = &tok->tokens[i];
        if ((e->attr & LOOM_TOKEN_ATTR_CONTROL) && strstr(tok->pool + e->off, "unused"))
            e->attr |= LOOM_TOKEN_ATTR_UNUSED;
    }

    tok->eog = malloc((size_t)(64 + 8) * sizeof *tok->eog);
    if (!tok->eog) return LOOM_ERR_OUT_OF_MEMORY;
    eog_add(tok, fim_pad);
    eog_add(tok, fim_rep);
    eog_add(tok, fim_sep);
    for (size_t i = 0; eog_names[i]; i++) {
        int32_t id = find_name(tok, eog_names[i]);
        if (id >= 0) {
            eog_add(tok, id);
            mark_control(tok, id);
        }
    }
    /* gpt-oss: these are always rendered. */
    static const char *const user_defined[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL};
    for (size_t i = 0; user_defined[i]; i++) {
        int32_t id = find_name(tok, user_defined[i]);
        if (id >= 0) tok->tokens[id].attr = LOOM_TOKEN_ATTR_USER_DEFINED;
    }
    eog_add(tok, tok->eos);
    eog_add(tok, tok->eot);
    eog_add(tok, tok->eom);
    /* o200k_harmony and solar-open: <|end|> is not the end of generation there. */
    {
        bool has_return = false, has_call = false, has_flush = false;
        int32_t end_id = -1;
        for (uint32_t i = 0; i < tok->n_eog; i++) {
            const char *t = tok_text(tok, tok->eog[i]);
            if (!strcmp(t, "<|return|>")) has_return = true;
            else if (!strcmp(t, "<|call|>") || !strcmp(t, "<|calls|>")) has_call = true;
            else if (!strcmp(t, "<|flush|>")) has_flush = true;
            else if (!strcmp(t, "<|end|>")) end_id = tok->eog[i];
        }
        if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
            eog_remove(tok, end_id);
            tok->tokens[end_id].attr = LOOM_TOKEN_ATTR_USER_DEFINED;
        }
    }
    /* Gemma 4 and PLaMo-2 have an ordinary </s>. */
    {
        bool marker = false;
        int32_t s_id = -1;
        for (uint32_t i = 0; i < tok->n_eog; i++) {
            const char *t = tok_text(tok, tok->eog[i]);
            if (!strcmp(t, "<|tool_response>") || !strcmp(t, "<|plamo:eos|>")) marker = true;
            else if (!strcmp(t, "</s>")) s_id = tok->eog[i];
        }
        if (marker && s_id >= 0) {
            eog_remove(tok, s_id);
            tok->tokens[s_id].attr = LOOM_TOKEN_ATTR_NORMAL;
        }
    }

    /* Tokens split out of the text before the algorithm runs. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < tok->n_vocab; i++)
        if (tok->tokens[i].attr &
            (LOOM_TOKEN_ATTR_CONTROL | LOOM_TOKEN_ATTR_USER_DEFINED | LOOM_TOKEN_ATTR_UNKNOWN))
            n++;
    tok->special = malloc((n ? n : 1) * sizeof *tok->special);
    if (!tok->special) return LOOM_ERR_OUT_OF_MEMORY;
    n = 0;
    for (uint32_t i = 0; i < tok->n_vocab; i++)
        if (tok->tokens[i].attr &
            (LOOM_TOKEN_ATTR_CONTROL | LOOM_TOKEN_ATTR_USER_DEFINED | LOOM_TOKEN_ATTR_UNKNOWN))
            tok->special[n++] = (int32_t)i;
    tok->n_special = n;
    /* Longest first; equal lengths by id (llama.cpp's sort leaves their order unspecified). */
    qsort_r(tok->special, n, sizeof *tok->special, cmp_special, tok);

    /* Per-model attributes (llama.cpp keys them on general.name). */
    if (general_name) {
        char lower[256];
        size_t k = 0;
        for (; general_name[k] && k + 1 < sizeof lower; k++) lower[k] = (char)tolower((unsigned char)general_name[k]);
        lower[k] = '\0';
        if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
            for (uint32_t i = 0; i < tok->n_special; i++) tok->tokens[tok->special[i]].attr |= LOOM_TOKEN_ATTR_RSTRIP;
            int32_t id = find_name(tok, "</s>");
            if (id >= 0) tok->tokens[id].attr |= LOOM_TOKEN_ATTR_RSTRIP;
            static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
            for (size_t i = 0; keep[i]; i++) {
                id = find_name(tok, keep[i]);
                if (id >= 0) tok->tokens[id].attr &= ~(uint32_t)LOOM_TOKEN_ATTR_RSTRIP;
            }
        }
    }
    return LOOM_OK;
}

static int32_t pick_id(int64_t given, int32_t def, uint32_t n_vocab, const char *what) {
    if (def >= 0 && (uint32_t)def >= n_vocab) def = -1;
    if (given == -2) return def;
    if (given < 0) return -1;
    if ((uint64_t)given >= n_vocab) {
        loom_log(LOOM_LOG_WARN, "tokenizer", "%s id %lld is outside the vocabulary (%u tokens), using %d", what,
                 (long long)given, n_vocab, def);
        return def;
    }
    return (int32_t)given;
}

void loom_tokenizer_free(loom_tokenizer *tok) {
    if (!tok) return;
    tok_bpe_release(tok);
    free(tok->pre);
    free(tok->chat_template);
    free(tok->tokens);
    free(tok->pool);
    free(tok->vocab_hash.slots);
    free(tok->merges);
    free(tok->merge_pool);
    free(tok->merge_hash.slots);
    free(tok->special);
    free(tok->eog);
    free(tok);
}

loom_status loom_tokenizer_create(const loom_vocab_desc *d, loom_tokenizer **out, char *err, size_t err_size) {
    if (out) *out = NULL;
    if (!d || !out) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "tokenizer: NULL argument");
    if (!d->model) return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: no tokenizer model given");
    uint32_t kind;
    if (!strcmp(d->model, "llama")) kind = TOK_KIND_SPM;
    else if (!strcmp(d->model, "gpt2")) kind = TOK_KIND_BPE;
    else
        return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED,
                        "tokenizer: tokenizer model '%s' is not supported (Loom supports 'llama' and 'gpt2')",
                        d->model);
    if (d->n_tokens == 0 || !d->tokens)
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: the vocabulary is empty");
    if (d->n_tokens > (1u << 30))
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: absurd vocabulary size %u", d->n_tokens);

    loom_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    loom_status st = LOOM_OK;
    tok->kind = kind;
    tok->n_vocab = d->n_tokens;
    tok->pre = loom_strdup(kind == TOK_KIND_BPE ? (d->pre && *d->pre ? d->pre : "default") : "");
    tok->chat_template = d->chat_template ? loom_strdup(d->chat_template) : NULL;
    tok->tokens = calloc(d->n_tokens, sizeof *tok->tokens);
    if (!tok->pre || !tok->tokens || (d->chat_template && !tok->chat_template)) goto oom;

    /* Texts into one pool; empty texts become "[EMPTY_<id>]" as in llama.cpp. */
    uint64_t total = 0;
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        const char *t = d->tokens[i];
        size_t l = t ? strlen(t) : 0;
        total += (l ? l : 24) + 1;
    }
    if (total > UINT32_MAX) {
        st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: vocabulary texts too large");
        goto fail;
    }
    tok->pool = malloc(total);
    if (!tok->pool) goto oom;
    uint32_t off = 0;
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        const char *t = d->tokens[i];
        size_t l = t ? strlen(t) : 0;
        tok_entry *e = &tok->tokens[i];
        e->off = off;
        if (l) {
            memcpy(tok->pool + off, t, l + 1);
        } else {
            l = (size_t)snprintf(tok->pool + off, 24, "[EMPTY_%u]", i);
            loom_log(LOOM_LOG_WARN, "tokenizer", "empty token at index %u", i);
        }
        e->len = (uint32_t)l;
        off += (uint32_t)l + 1;
        e->score = d->scores ? d->scores[i] : 0.0f;
        e->attr = d->token_attrs ? d->token_attrs[i]
                  : d->token_types ? attr_of_type(d->token_types[i])
                                   : LOOM_TOKEN_ATTR_NORMAL;
    }
    if (hash_alloc(&tok->vocab_hash, d->n_tokens)) goto oom;
    for (uint32_t i = 0; i < d->n_tokens; i++) vocab_insert(tok, i);

    /* A byte vocabulary: id b is byte b (see tokenizer_impl.h). */
    if (kind == TOK_KIND_BPE && d->n_merges == 0 && d->n_tokens == 256) {
        bool bytes = true;
        for (uint32_t i = 0; i < 256 && bytes; i++) {
            char want[4];
            size_t l = tok_utf8_put(tok_bpe_byte_to_cpt((uint8_t)i), want);
            const tok_entry *e = &tok->tokens[i];
            bytes = e->len == l && !memcmp(tok->pool + e->off, want, l) && e->attr == LOOM_TOKEN_ATTR_NORMAL;
        }
        tok->byte_vocab = bytes;
    }

    /* Defaults of the model type, then what the vocabulary says. */
    int32_t def_bos, def_eos, def_unk;
    bool add_bos, add_eos = false, add_space_prefix;
    if (kind == TOK_KIND_SPM) {
        def_bos = 1, def_eos = 2, def_unk = 0;
        add_bos = true;
        add_space_prefix = true;
    } else {
        /* llama.cpp's defaults for byte-level BPE (id 11); a byte vocabulary has no free id for
         * them, so there BOS and EOS exist only when the file names them. */
        def_bos = def_eos = tok->byte_vocab ? -1 : 11;
        def_unk = -1;
        add_bos = false;
        add_space_prefix = false;
    }
    tok->bos = pick_id(d->bos, def_bos, tok->n_vocab, "BOS");
    tok->eos = pick_id(d->eos, def_eos, tok->n_vocab, "EOS");
    tok->eot = pick_id(d->eot, -1, tok->n_vocab, "EOT");
    tok->eom = pick_id(d->eom, -1, tok->n_vocab, "EOM");
    tok->unk = pick_id(d->unk, def_unk, tok->n_vocab, "unknown-token");
    tok->pad = pick_id(d->pad, -1, tok->n_vocab, "padding");
    tok->sep = pick_id(d->sep, -1, tok->n_vocab, "separator");

    if (kind == TOK_KIND_BPE) {
        st = tok_bpe_init(tok, err, err_size); /* may set add_bos / ignore_merges per pre-tokenizer */
        if (st) goto fail;
        if (tok->add_bos) add_bos = true;
    } else {
        st = tok_spm_init(tok, err, err_size);
        if (st) goto fail;
    }
    if (d->add_bos >= 0) add_bos = d->add_bos != 0;
    if (d->add_eos >= 0) add_eos = d->add_eos != 0;
    if (d->add_space_prefix >= 0) add_space_prefix = d->add_space_prefix != 0;
    if (add_bos && tok->bos < 0) {
        loom_log(LOOM_LOG_WARN, "tokenizer", "the vocabulary asks for BOS but has no BOS token; not adding it");
        add_bos = false;
    }
    if (add_eos && tok->eos < 0) add_eos = false;
    tok->add_bos = add_bos;
    tok->add_eos = add_eos;
    tok->add_space_prefix = add_space_prefix;

    /* Merges (byte-level BPE). */
    if (kind == TOK_KIND_BPE) {
        if (!d->merges && d->n_merges) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: merges missing");
            goto fail;
        }
        uint64_t mtotal = 0;
        for (uint32_t i = 0; i < d->n_merges; i++) mtotal += (d->merges[i] ? strlen(d->merges[i]) : 0) + 1;
        if (mtotal > UINT32_MAX) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: merges too large");
            goto fail;
        }
        tok->merge_pool = malloc(mtotal ? mtotal : 1);
        tok->merges = malloc((d->n_merges ? d->n_merges : 1) * sizeof *tok->merges);
        if (!tok->merge_pool || !tok->merges || hash_alloc(&tok->merge_hash, d->n_merges)) goto oom;
        uint32_t moff = 0;
        for (uint32_t i = 0; i < d->n_merges; i++) {
            const char *m = d->merges[i] ? d->merges[i] : "";
            size_t l = strlen(m);
            memcpy(tok->merge_pool + moff, m, l + 1);
            tok_merge *mg = &tok->merges[i];
            /* Split at the first space after the first byte; no space: an empty pair. */
            const char *sp = l > 1 ? memchr(m + 1, ' ', l - 1) : NULL;
            if (sp) {
                mg->a_off = moff;
                mg->a_len = (uint32_t)(sp - m);
                mg->b_off = moff + mg->a_len + 1;
                mg->b_len = (uint32_t)(l - mg->a_len - 1);
            } else {
                mg->a_off = mg->b_off = moff;
                mg->a_len = mg->b_len = 0;
            }
            moff += (uint32_t)l + 1;
            /* Insert; the first occurrence of a pair keeps its rank. */
            uint64_t h = tok_hash_bytes(tok->merge_pool + mg->a_off, mg->a_len, 0);
            h = tok_hash_bytes(tok->merge_pool + mg->b_off, mg->b_len, h);
            uint32_t slot = (uint32_t)h & tok->merge_hash.mask;
            for (;;) {
                uint32_t s = tok->merge_hash.slots[slot];
                if (!s) {
                    tok->merge_hash.slots[slot] = i + 1;
                    break;
                }
                const tok_merge *o = &tok->merges[s - 1];
                if (o->a_len == mg->a_len && o->b_len == mg->b_len &&
                    !memcmp(tok->merge_pool + o->a_off, tok->merge_pool + mg->a_off, mg->a_len) &&
                    !memcmp(tok->merge_pool + o->b_off, tok->merge_pool + mg->b_off, mg->b_len))
                    break;
                slot = (slot + 1) & tok->merge_hash.mask;
            }
        }
        tok->n_merges = d->n_merges;
    }

    st = finish_specials(tok, d->general_name);
    if (st) goto oom;
    if (tok->add_eos && tok->eos < 0) tok->add_eos = false;
    *out = tok;
    return LOOM_OK;
oom:
    st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
fail:
    loom_tokenizer_free(tok);
    return st;
}

/* ============================================================================================ */
/* From a model file                                                                            */
/* ============================================================================================ */

static bool meta_int(const loom_file *file, const char *key, int64_t *out) {
    const loom_meta *m = loom_file_meta_find(file, key);
    if (!m) return false;
    switch (m->type) {
    case LOOM_META_U8:
    case LOOM_META_U16:
    case LOOM_META_U32:
    case LOOM_META_U64: *out = m->v.u64 > INT64_MAX ? -1 : (int64_t)m->v.u64; return true;
    case LOOM_META_I8:
    case LOOM_META_I16:
    case LOOM_META_I32:
    case LOOM_META_I64: *out = m->v.i64; return true;
    default: return false;
    }
}

static int32_t meta_bool(const loom_file *file, const char *key) {
    const loom_meta *m = loom_file_meta_find(file, key);
    if (!m) return -1;
    if (m->type == LOOM_META_BOOL) return m->v.b ? 1 : 0;
    int64_t v;
    if (meta_int(file, key, &v)) return v != 0;
    return -1;
}

static const char *meta_str(const loom_file *file, const char *key) {
    const loom_meta *m = loom_file_meta_find(file, key);
    return m && m->type == LOOM_META_STRING ? m->v.str : NULL;
}

static const loom_meta *meta_array(const loom_file *file, const char *key, uint32_t elem_type, char *err,
                                   size_t err_size, loom_status *st) {
    const loom_meta *m = loom_file_meta_find(file, key);
    if (!m) return NULL;
    if (m->type != LOOM_META_ARRAY || m->elem_type != elem_type || (m->count && !m->v.arr)) {
        *st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: metadata key %s has the wrong type", key);
        return NULL;
    }
    return m;
}

loom_status loom_tokenizer_create_from_file(const loom_file *file, loom_tokenizer **out, char *err, size_t err_size) {
    if (out) *out = NULL;
    if (!file || !out) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "tokenizer: NULL argument");
    const char *json = meta_str(file, "hf.tokenizer_json");
    if (json) return loom_tokenizer_create_from_hf_json(json, out, err, err_size);

    const char *model = meta_str(file, "tokenizer.ggml.model");
    if (!model)
        return loom_err(err, err_size, LOOM_ERR_NOT_FOUND,
                        "tokenizer: the model file has no tokenizer (tokenizer.ggml.model is missing)");
    loom_status st = LOOM_OK;
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    d.model = model;
    d.pre = meta_str(file, "tokenizer.ggml.pre");
    const loom_meta *toks = meta_array(file, "tokenizer.ggml.tokens", LOOM_META_STRING, err, err_size, &st);
    if (st) return st;
    if (!toks) return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is missing");
    if (toks->count == 0 || toks->count > (1u << 30))
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens has %llu entries",
                        (unsigned long long)toks->count);
    d.n_tokens = (uint32_t)toks->count;
    d.tokens = (const char *const *)toks->v.arr;

    float *scores = NULL;
    const loom_meta *sc = loom_file_meta_find(file, "tokenizer.ggml.scores");
    if (sc) {
        if (sc->type != LOOM_META_ARRAY || (sc->elem_type != LOOM_META_F32 && sc->elem_type != LOOM_META_I32) ||
            (sc->count && !sc->v.arr))
            return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores has the wrong type");
        if (sc->count < toks->count)
            return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %llu scores for %llu tokens",
                            (unsigned long long)sc->count, (unsigned long long)toks->count);
        if (sc->elem_type == LOOM_META_F32) {
            d.scores = sc->v.arr;
        } else {
            scores = malloc(d.n_tokens * sizeof *scores);
            if (!scores) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
            for (uint32_t i = 0; i < d.n_tokens; i++) scores[i] = (float)((const int32_t *)sc->v.arr)[i];
            d.scores = scores;
        }
    }
    const loom_meta *tt = meta_array(file, "tokenizer.ggml.token_type", LOOM_META_I32, err, err_size, &st);
    if (st) goto done;
    if (tt) {
        if (tt->count < toks->count) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %llu token types for %llu tokens",
                          (unsigned long long)tt->count, (unsigned long long)toks->count);
            goto done;
        }
        d.token_types = tt->v.arr;
    }
    if (!strcmp(model, "gpt2")) {
        const loom_meta *mg = meta_array(file, "tokenizer.ggml.merges", LOOM_META_STRING, err, err_size, &st);
        if (st) goto done;
        if (!mg) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges is missing");
            goto done;
        }
        if (mg->count > (1u << 30)) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: absurd merge count");
            goto done;
        }
        d.n_merges = (uint32_t)mg->count;
        d.merges = (const char *const *)mg->v.arr;
    }
    static const struct {
        const char *key;
        size_t offset;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(loom_vocab_desc, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(loom_vocab_desc, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(loom_vocab_desc, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(loom_vocab_desc, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(loom_vocab_desc, unk)},
        {"tokenizer.ggml.padding_token_id", offsetof(loom_vocab_desc, pad)},
        {"tokenizer.ggml.seperator_token_id", offsetof(loom_vocab_desc, sep)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int64_t v;
        if (meta_int(file, ids[i].key, &v)) {
            /* An id outside the vocabulary keeps the default (pick_id warns). */
            *(int64_t *)((char *)&d + ids[i].offset) = v < 0 ? (int64_t)UINT32_MAX : v;
        }
    }
    d.add_bos = meta_bool(file, "tokenizer.ggml.add_bos_token");
    d.add_eos = meta_bool(file, "tokenizer.ggml.add_eos_token");
    d.add_space_prefix = meta_bool(file, "tokenizer.ggml.add_space_prefix");
    d.chat_template = meta_str(file, "tokenizer.chat_template");
    d.general_name = meta_str(file, "general.name");
    st = loom_tokenizer_create(&d, out, err, err_size);
done:
    free(scores);
    return st;
}

/* ============================================================================================ */
/* Encoding: special tokens first                                                               */
/* ============================================================================================ */

typedef struct fragment {
    int32_t token; /* -1: text */
    size_t off, len;
} fragment;

typedef struct frag_list {
    fragment *v;
    size_t n, cap;
} frag_list;

static bool frag_push(frag_list *l, int32_t token, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        fragment *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (fragment){token, off, len};
    return true;
}

static bool is_c_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* Split special-token text out of the input: for each special token (longest first), every
 * occurrence in every remaining text fragment becomes a token fragment. Without
 * parse_special only user-defined tokens are split (control and unknown tokens stay text). */
static loom_status split_specials(const loom_tokenizer *tok, const char *text, size_t len, bool parse_special,
                                  frag_list *out) {
    frag_list cur = {0}, next = {0};
    loom_status st = LOOM_OK;
    if (len && !frag_push(&cur, -1, 0, len)) return LOOM_ERR_OUT_OF_MEMORY;
    for (uint32_t s = 0; s < tok->n_special && cur.n; s++) {
        int32_t id = tok->special[s];
        const tok_entry *e = &tok->tokens[id];
        if (!parse_special && (e->attr & (LOOM_TOKEN_ATTR_CONTROL | LOOM_TOKEN_ATTR_UNKNOWN))) continue;
        const char *needle = tok->pool + e->off;
        size_t nlen = e->len;
        bool found_any = false;
        next.n = 0;
        for (size_t f = 0; f < cur.n; f++) {
            fragment fr = cur.v[f];
            if (fr.token >= 0 || fr.len < nlen) {
                if (!frag_push(&next, fr.token, fr.off, fr.len)) goto oom;
                continue;
            }
            size_t base = fr.off, blen = fr.len;
            for (;;) {
                const char *hit = blen >= nlen ? memmem(text + base, blen, needle, nlen) : NULL;
                if (!hit) {
                    if (blen && !frag_push(&next, -1, base, blen)) goto oom;
                    break;
                }
                found_any = true;
                size_t m = (size_t)(hit - text);
                size_t llen = m - base;
                if (e->attr & LOOM_TOKEN_ATTR_LSTRIP)
                    while (llen > 0 && is_c_space(text[base + llen - 1])) llen--;
                if (llen && !frag_push(&next, -1, base, llen)) goto oom;
                if (!frag_push(&next, id, 0, 0)) goto oom;
                size_t roff = m + nlen, rlen = base + blen - roff;
                if (e->attr & LOOM_TOKEN_ATTR_RSTRIP)
                    while (rlen > 0 && is_c_space(text[roff])) roff++, rlen--;
                base = roff;
                blen = rlen;
                if (!blen) break;
            }
        }
        if (found_any) {
            frag_list t = cur;
            cur = next;
            next = t;
        }
    }
    free(next.v);
    *out = cur;
    return st;
oom:
    free(cur.v);
    free(next.v);
    return LOOM_ERR_OUT_OF_MEMORY;
}

loom_status loom_tokenizer_encode(const loom_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                                  int32_t *tokens, size_t cap, size_t *n) {
    if (n) *n = 0;
    if (!tok || !n || (!text && len) || (!tokens && cap)) return LOOM_ERR_INVALID_ARGUMENT;
    bool add_special = (flags & LOOM_TOKENIZE_ADD_BOS) != 0;
    bool parse_special = (flags & LOOM_TOKENIZE_PARSE_SPECIAL) != 0;
    frag_list frags = {0};
    loom_status st = split_specials(tok, text, len, parse_special, &frags);
    if (st) return st;
    tok_ids ids = {0};
    if (add_special && tok->add_bos) tok_ids_push(&ids, tok->bos);
    if (tok->kind == TOK_KIND_SPM) {
        bool prev_special = true; /* a space goes in front of the text and after special tokens */
        char *buf = NULL;
        size_t buf_cap = 0;
        for (size_t f = 0; f < frags.n && !st; f++) {
            const fragment *fr = &frags.v[f];
            if (fr->token >= 0) {
                tok_ids_push(&ids, fr->token);
                prev_special = true;
                continue;
            }
            size_t need = fr->len + 1;
            if (need > buf_cap) {
                char *nb = realloc(buf, need);
                if (!nb) {
                    st = LOOM_ERR_OUT_OF_MEMORY;
                    break;
                }
                buf = nb;
                buf_cap = need;
            }
            size_t bl = 0;
            if (tok->add_space_prefix && prev_special) buf[bl++] = ' ';
            memcpy(buf + bl, text + fr->off, fr->len);
            bl += fr->len;
            st = tok_spm_encode(tok, buf, bl, &ids);
            prev_special = false;
        }
        free(buf);
    } else {
        for (size_t f = 0; f < frags.n && !st; f++) {
            const fragment *fr = &frags.v[f];
            if (fr->token >= 0) {
                tok_ids_push(&ids, fr->token);
            } else if (tok->byte_vocab) {
                /* Every byte its own id, also bytes that are not valid UTF-8 (the general path,
                 * like llama.cpp, would read those as U+FFFD). */
                for (size_t i = 0; i < fr->len; i++)
                    tok_ids_push(&ids, (int32_t)(unsigned char)text[fr->off + i]);
            } else {
                st = tok_bpe_encode(tok, text + fr->off, fr->len, &ids);
            }
        }
    }
    if (add_special && tok->add_eos) tok_ids_push(&ids, tok->eos);
    free(frags.v);
    if (!st && ids.oom) st = LOOM_ERR_OUT_OF_MEMORY;
    if (!st) {
        *n = ids.n;
        if (ids.n > cap) st = LOOM_ERR_BUFFER_TOO_SMALL;
        else if (ids.n) memcpy(tokens, ids.v, ids.n * sizeof *tokens);
    }
    free(ids.v);
    return st;
}

/* ============================================================================================ */
/* Pieces and decoding                                                                          */
/* ============================================================================================ */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte of a <0xXX> token (llama.cpp reads the two characters after "<0x"). */
static unsigned char byte_of_token(const char *t, size_t len) {
    int hi = len > 3 ? hexval(t[3]) : -1, lo = len > 4 ? hexval(t[4]) : -1;
    if (hi < 0) return 0;
    if (lo < 0) return (unsigned char)hi;
    return (unsigned char)(hi * 16 + lo);
}

/* Write the piece of `token` into buf (at most cap bytes); returns its full length. `buf` may be
 * NULL (count only). */
static size_t piece_into(const loom_tokenizer *tok, int32_t token, bool special, char *buf, size_t cap) {
    const tok_entry *e = &tok->tokens[token];
    const char *t = tok->pool + e->off;
    size_t n = 0;
#define PUT(c)                                                                                                         \
    do {                                                                                                               \
        if (buf && n < cap) buf[n] = (char)(c);                                                                        \
        n++;                                                                                                           \
    } while (0)
    uint32_t attr = e->attr;
    if (!special && (attr & (LOOM_TOKEN_ATTR_UNKNOWN | LOOM_TOKEN_ATTR_CONTROL))) return 0;
    if (attr & (LOOM_TOKEN_ATTR_UNKNOWN | LOOM_TOKEN_ATTR_CONTROL | LOOM_TOKEN_ATTR_USER_DEFINED)) {
        for (size_t i = 0; i < e->len; i++) PUT(t[i]);
        return n;
    }
    if (attr & LOOM_TOKEN_ATTR_NORMAL) {
        if (tok->kind == TOK_KIND_SPM) {
            for (size_t i = 0; i < e->len; i++) {
                if (i + 2 < e->len && (unsigned char)t[i] == 0xE2 && (unsigned char)t[i + 1] == 0x96 &&
                    (unsigned char)t[i + 2] == 0x81) {
                    PUT(' ');
                    i += 2;
                } else {
                    PUT(t[i]);
                }
            }
            return n;
        }
        /* Byte-level BPE: every code point stands for a byte. */
        const unsigned char *s = (const unsigned char *)t;
        size_t pos = 0;
        while (pos < e->len) {
            uint32_t cpt = tok_utf8_next(s, e->len, &pos);
            int b = tok_bpe_cpt_to_byte(cpt);
            if (b >= 0) {
                PUT(b);
            } else {
                /* llama.cpp writes "[UNK_BYTE_0x<utf-8 hex>" + token text + "]". */
                char tmp[8];
                size_t l = tok_utf8_put(cpt, tmp);
                const char *pre = "[UNK_BYTE_0x";
                for (const char *p = pre; *p; p++) PUT(*p);
                for (size_t k = 0; k < l; k++) {
                    static const char hx[] = "0123456789abcdef";
                    PUT(hx[(unsigned char)tmp[k] >> 4]);
                    PUT(hx[(unsigned char)tmp[k] & 15]);
                }
                for (size_t k = 0; k < e->len; k++) PUT(t[k]);
                PUT(']');
            }
        }
        return n;
    }
    if (attr & LOOM_TOKEN_ATTR_BYTE) {
        PUT(byte_of_token(t, e->len));
        return n;
    }
#undef PUT
    return 0;
}

loom_status loom_tokenizer_piece(const loom_tokenizer *tok, int32_t token, bool render_special, char *buf,
                                 size_t cap, size_t *len) {
    if (len) *len = 0;
    if (!tok || !len || (!buf && cap)) return LOOM_ERR_INVALID_ARGUMENT;
    if (token < 0 || (uint32_t)token >= tok->n_vocab) return LOOM_ERR_INVALID_ARGUMENT;
    size_t n = piece_into(tok, token, render_special, buf, cap);
    *len = n;
    return n > cap ? LOOM_ERR_BUFFER_TOO_SMALL : LOOM_OK;
}

loom_status loom_tokenizer_decode(const loom_tokenizer *tok, const int32_t *tokens, size_t n, bool render_special,
                                  char *buf, size_t cap, size_t *len) {
    if (len) *len = 0;
    if (!tok || !len || (!tokens && n) || (!buf && cap)) return LOOM_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= tok->n_vocab) return LOOM_ERR_INVALID_ARGUMENT;
    size_t total = 0;
    /* SentencePiece models put a space in front of the text: drop it from the first token
     * after an optional leading BOS. (llama.cpp strips it for any vocabulary with
     * add_space_prefix, but only SentencePiece encoding adds it.) */
    bool strip = tok->kind == TOK_KIND_SPM && tok->add_space_prefix;
    size_t strip_at = strip ? (n > 0 && tokens[0] == tok->bos ? 1 : 0) : (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t room = total < cap ? cap - total : 0;
        char *dst = buf && room ? buf + total : NULL;
        if (i == strip_at) {
            /* Render to find out whether the piece starts with a space. */
            size_t l = piece_into(tok, tokens[i], render_special, NULL, 0);
            if (l == 0) continue;
            char small[64];
            char *tmp = l <= sizeof small ? small : malloc(l);
            if (!tmp) return LOOM_ERR_OUT_OF_MEMORY;
            piece_into(tok, tokens[i], render_special, tmp, l);
            size_t skip = tmp[0] == ' ' ? 1 : 0;
            for (size_t k = skip; k < l; k++, total++)
                if (buf && total < cap) buf[total] = tmp[k];
            if (tmp != small) free(tmp);
            continue;
        }
        total += piece_into(tok, tokens[i], render_special, dst, room);
    }
    *len = total;
    if (total < cap) buf[total] = '\0';
    return total > cap ? LOOM_ERR_BUFFER_TOO_SMALL : LOOM_OK;
}

/* ============================================================================================ */
/* Accessors                                                                                    */
/* ============================================================================================ */

int32_t loom_tokenizer_n_vocab(const loom_tokenizer *tok) { return tok ? (int32_t)tok->n_vocab : 0; }
int32_t loom_tokenizer_bos(const loom_tokenizer *tok) { return tok ? tok->bos : -1; }
int32_t loom_tokenizer_eos(const loom_tokenizer *tok) { return tok ? tok->eos : -1; }
int32_t loom_tokenizer_eot(const loom_tokenizer *tok) { return tok ? tok->eot : -1; }
int32_t loom_tokenizer_unk(const loom_tokenizer *tok) { return tok ? tok->unk : -1; }
int32_t loom_tokenizer_pad(const loom_tokenizer *tok) { return tok ? tok->pad : -1; }
bool loom_tokenizer_add_bos(const loom_tokenizer *tok) { return tok && tok->add_bos; }
bool loom_tokenizer_is_eog(const loom_tokenizer *tok, int32_t token) { return tok && token >= 0 && eog_has(tok, token); }
const char *loom_tokenizer_model(const loom_tokenizer *tok) {
    return !tok ? "" : tok->kind == TOK_KIND_SPM ? "llama" : "gpt2";
}
const char *loom_tokenizer_pre(const loom_tokenizer *tok) { return tok ? tok->pre : ""; }
const char *loom_tokenizer_chat_template(const loom_tokenizer *tok) { return tok ? tok->chat_template : NULL; }
const char *loom_tokenizer_token_text(const loom_tokenizer *tok, int32_t token) {
    if (!tok || token < 0 || (uint32_t)token >= tok->n_vocab) return NULL;
    return tok_text(tok, token);
}
uint32_t loom_tokenizer_token_attr(const loom_tokenizer *tok, int32_t token) {
    if (!tok || token < 0 || (uint32_t)token >= tok->n_vocab) return 0;
    return tok->tokens[token].attr;
}
float loom_tokenizer_token_score(const loom_tokenizer *tok, int32_t token) {
    if (!tok || token < 0 || (uint32_t)token >= tok->n_vocab) return 0.0f;
    return tok->tokens[token].score;
}
bool loom_tokenizer_is_byte_vocab(const loom_tokenizer *tok) { return tok && tok->byte_vocab; }
size_t loom_tokenizer_byte_text(uint8_t b, char out[4]) { return tok_utf8_put(tok_bpe_byte_to_cpt(b), out); }
