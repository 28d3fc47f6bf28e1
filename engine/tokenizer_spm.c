/*
 * tokenizer_spm.c - SentencePiece-style BPE (GGUF tokenizer.ggml.model = "llama").
 *
 * The text (with a space put in front by the caller where the model wants one) has its spaces
 * replaced by U+2581, is cut into UTF-8 characters, and adjacent symbols are merged greedily:
 * always the pair whose concatenation is the vocabulary token with the highest score (the
 * leftmost pair on ties), until no adjacent pair forms a token. Symbols that are not tokens
 * become byte tokens <0xXX> (byte fallback).
 */
#include "tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct spm_sym {
    int32_t prev, next;
    uint32_t off, n; /* bytes of the escaped text */
} spm_sym;

typedef struct spm_bigram {
    int32_t left, right;
    float score;
    uint32_t size;
} spm_bigram;

typedef struct spm_heap {
    spm_bigram *v;
    size_t n, cap;
} spm_heap;

/* a goes first: higher score, then the leftmost pair. */
static bool spm_before(const spm_bigram *a, const spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(spm_heap *h, spm_bigram b) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        spm_bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_before(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return true;
}

static spm_bigram heap_pop(spm_heap *h) {
    spm_bigram top = h->v[0];
    spm_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const spm_bigram *best = &last;
        if (l < h->n && spm_before(&h->v[l], best)) m = l, best = &h->v[l];
        if (r < h->n && spm_before(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

loom_status tok_spm_init(loom_tokenizer *tok, char *err, size_t err_size) {
    (void)err;
    (void)err_size;
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        int32_t id = tok_find(tok, name, 6);
        if (id < 0) {
            char one = (char)b;
            id = tok_find(tok, &one, 1);
        }
        tok->byte_token[b] = id;
    }
    return LOOM_OK;
}

static void try_bigram(const loom_tokenizer *tok, const char *text, const spm_sym *syms, int32_t left, int32_t right,
                       spm_heap *heap, bool *oom) {
    if (left < 0 || right < 0) return;
    uint32_t size = syms[left].n + syms[right].n;
    int32_t id = tok_find(tok, text + syms[left].off, size);
    if (id < 0) return;
    spm_bigram b = {left, right, tok->tokens[id].score, size};
    if (!heap_push(heap, b)) *oom = true;
}

loom_status tok_spm_encode(const loom_tokenizer *tok, const char *raw, size_t raw_len, tok_ids *out) {
    if (raw_len == 0) return LOOM_OK;
    if (raw_len > UINT32_MAX / 3 - 8) return LOOM_ERR_INVALID_ARGUMENT;
    /* Spaces become U+2581 (3 bytes). */
    size_t n_sp = 0;
    for (size_t i = 0; i < raw_len; i++) n_sp += raw[i] == ' ';
    size_t len = raw_len + 2 * n_sp;
    char *text = malloc(len);
    spm_sym *syms = malloc(len * sizeof *syms);
    spm_heap heap = {0};
    loom_status st = LOOM_OK;
    if (!text || !syms) {
        st = LOOM_ERR_OUT_OF_MEMORY;
        goto done;
    }
    size_t w = 0;
    for (size_t i = 0; i < raw_len; i++) {
        if (raw[i] == ' ') {
            text[w++] = (char)0xE2;
            text[w++] = (char)0x96;
            text[w++] = (char)0x81;
        } else {
            text[w++] = raw[i];
        }
    }

    /* Symbols: one per UTF-8 character, by the lead byte's announced length. */
    int32_t n_syms = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok_utf8_len((unsigned char)text[off]);
        if (l > len - off) l = len - off;
        spm_sym *s = &syms[n_syms];
        s->off = (uint32_t)off;
        s->n = (uint32_t)l;
        s->prev = n_syms - 1;
        off += l;
        s->next = off == len ? -1 : n_syms + 1;
        n_syms++;
    }

    bool oom = false;
    for (int32_t i = 1; i < n_syms; i++) try_bigram(tok, text, syms, i - 1, i, &heap, &oom);
    while (heap.n && !oom) {
        spm_bigram b = heap_pop(&heap);
        spm_sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = b.left;
        try_bigram(tok, text, syms, l->prev, b.left, &heap, &oom);
        try_bigram(tok, text, syms, b.left, l->next, &heap, &oom);
    }
    if (oom) {
        st = LOOM_ERR_OUT_OF_MEMORY;
        goto done;
    }

    for (int32_t i = 0; i != -1 && n_syms > 0; i = syms[i].next) {
        const spm_sym *s = &syms[i];
        int32_t id = tok_find(tok, text + s->off, s->n);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        /* Byte fallback. llama.cpp aborts when a byte has no token; Loom uses <unk>. */
        for (uint32_t k = 0; k < s->n; k++) {
            int32_t bt = tok->byte_token[(unsigned char)text[s->off + k]];
            if (bt < 0) bt = tok->unk;
            if (bt < 0) {
                st = LOOM_ERR_TOKENIZER;
                goto done;
            }
            tok_ids_push(out, bt);
        }
    }
done:
    free(text);
    free(syms);
    free(heap.v);
    return st;
}
