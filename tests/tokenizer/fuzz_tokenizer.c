/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizers and chat templates.
 *
 * Input: byte 0 selects the vocabulary (bits 0-1: the default model's if found through
 * $LOOM_TEST_MODEL or ~/.cache/loom, the SentencePiece fixture vocabulary, a small byte-level
 * BPE and a small SentencePiece vocabulary built here; missing ones fall back to the small
 * ones), bit 2 LOOM_TOKENIZE_ADD_BOS, bit 3 LOOM_TOKENIZE_PARSE_SPECIAL, bit 4 also render a chat
 * with the rest taken as the template text. The rest is the text.
 *
 * Checked: encode succeeds with ids inside the vocabulary; every piece renders; for valid UTF-8
 * whose ids hold no special token, made of bytes the vocabulary has tokens for (and, for
 * SentencePiece, without U+2581), decode(encode(text)) == text. A violation aborts (a finding).
 */
#include "internal.h"
#include "tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LOOM_TOK_FIXDIR
#define LOOM_TOK_FIXDIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static loom_tokenizer *vocabs[4];
static bool ready;

static loom_tokenizer *from_path(const char *path) {
    loom_file *file = NULL;
    loom_tokenizer *tok = NULL;
    if (access(path, R_OK) != 0) return NULL;
    if (loom_file_open(path, &file, NULL, 0) == LOOM_OK) loom_tokenizer_create_from_file(file, &tok, NULL, 0);
    loom_file_close(file);
    return tok;
}

static loom_tokenizer *small_bpe(void) {
    static char bytes[256][4];
    const char *tokens[256 + 6];
    int32_t types[256 + 6];
    for (int b = 0; b < 256; b++) {
        size_t n = tok_utf8_put(tok_bpe_byte_to_cpt((uint8_t)b), bytes[b]);
        bytes[b][n] = '\0';
        tokens[b] = bytes[b];
        types[b] = 1;
    }
    const char *extra[] = {"he", "ll", "hell", "\xc4\xa0t", "<|im_end|>", "<|user|>"};
    for (int i = 0; i < 6; i++) tokens[256 + i] = extra[i], types[256 + i] = 1;
    types[260] = 3;
    types[261] = 4;
    const char *merges[] = {"h e", "l l", "he ll", "\xc4\xa0 t"};
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = "smollm";
    d.n_tokens = 262;
    d.tokens = tokens;
    d.token_types = types;
    d.n_merges = 4;
    d.merges = merges;
    loom_tokenizer *tok = NULL;
    loom_tokenizer_create(&d, &tok, NULL, 0);
    return tok;
}

static loom_tokenizer *small_spm(void) {
    static char bytes[256][8];
    const char *tokens[3 + 256 + 5];
    float scores[3 + 256 + 5] = {0};
    int32_t types[3 + 256 + 5];
    tokens[0] = "<unk>", types[0] = 2;
    tokens[1] = "<s>", types[1] = 3;
    tokens[2] = "</s>", types[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tokens[3 + b] = bytes[b], types[3 + b] = 6;
    }
    const char *extra[] = {"\xe2\x96\x81", "a", "ab", ("\xe2\x96\x81" "ab"), "<mask>"};
    for (int i = 0; i < 5; i++) tokens[259 + i] = extra[i], types[259 + i] = 1, scores[259 + i] = (float)-i;
    types[263] = 4;
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = 264;
    d.tokens = tokens;
    d.scores = scores;
    d.token_types = types;
    loom_tokenizer *tok = NULL;
    loom_tokenizer_create(&d, &tok, NULL, 0);
    return tok;
}

static void init(void) {
    loom_log_set_callback(NULL, NULL, LOOM_LOG_ERROR);
    char path[4096];
    const char *model = getenv("LOOM_TEST_MODEL");
    const char *home = getenv("HOME");
    if (!(model && *model) && home) {
        snprintf(path, sizeof path, "%s/.cache/loom/SmolLM2-135M-Instruct.Q4_1.gguf", home);
        model = path;
    }
    vocabs[2] = small_bpe();
    vocabs[3] = small_spm();
    vocabs[0] = model ? from_path(model) : NULL;
    snprintf(path, sizeof path, "%s/spm-vocab.gguf", LOOM_TOK_FIXDIR);
    vocabs[1] = from_path(path);
    if (!vocabs[0]) vocabs[0] = vocabs[2];
    if (!vocabs[1]) vocabs[1] = vocabs[3];
    ready = true;
}

static bool strict_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
        else return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/* Does the vocabulary have a token for every byte of the text? (SmolLM2's lacks a few bytes,
 * 0x04 for one; llama.cpp drops such bytes and so does Loom, so those texts cannot round-trip.) */
static bool bytes_representable(const loom_tokenizer *tok, const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)text[i];
        if (tok->kind == TOK_KIND_SPM) {
            if (tok->byte_token[b] < 0) return false;
        } else {
            char enc[4];
            size_t n = tok_utf8_put(tok_bpe_byte_to_cpt(b), enc);
            if (tok_find(tok, enc, n) < 0) return false;
        }
    }
    return true;
}

/* A violated property: report and abort (libFuzzer records the input). */
static void finding(const char *what, int value) {
    fprintf(stderr, "fuzz_tokenizer: %s (%d)\n", what, value);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) init();
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    loom_tokenizer *tok = vocabs[sel & 3];
    if (!tok) return 0;
    uint32_t flags = (sel & 4 ? LOOM_TOKENIZE_ADD_BOS : 0) | (sel & 8 ? LOOM_TOKENIZE_PARSE_SPECIAL : 0);
    size_t n = 0;
    loom_status st = loom_tokenizer_encode(tok, text, len, flags, NULL, 0, &n);
    if (st != LOOM_OK && st != LOOM_ERR_BUFFER_TOO_SMALL) {
        if (st != LOOM_ERR_OUT_OF_MEMORY) finding("encode failed", st);
        return 0;
    }
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return 0;
    size_t n2 = 0;
    st = loom_tokenizer_encode(tok, text, len, flags, ids, n, &n2);
    if (st != LOOM_OK || n2 != n) finding("second encode differs", st);
    bool special = false;
    int32_t nv = loom_tokenizer_n_vocab(tok);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= nv) finding("id outside the vocabulary", ids[i]);
        char piece[512];
        size_t plen = 0;
        st = loom_tokenizer_piece(tok, ids[i], true, piece, sizeof piece, &plen);
        if (st != LOOM_OK && st != LOOM_ERR_BUFFER_TOO_SMALL) finding("piece failed", st);
        if (loom_tokenizer_token_attr(tok, ids[i]) &
            (LOOM_TOKEN_ATTR_CONTROL | LOOM_TOKEN_ATTR_USER_DEFINED | LOOM_TOKEN_ATTR_UNKNOWN))
            special = true;
    }
    /* SentencePiece writes spaces as U+2581, so a U+2581 in the text comes back as a space. */
    bool spm_marker = !strcmp(loom_tokenizer_model(tok), "llama") && len >= 3 && memmem(text, len, "\xe2\x96\x81", 3);
    if (!special && !spm_marker && !(flags & LOOM_TOKENIZE_ADD_BOS) && strict_utf8((const uint8_t *)text, len) &&
        bytes_representable(tok, text, len)) {
        char *back = malloc(len + 1);
        size_t blen = 0;
        if (back) {
            st = loom_tokenizer_decode(tok, ids, n, false, back, len + 1, &blen);
            if (st != LOOM_OK || blen != len || memcmp(back, text, len)) finding("decode(encode(text)) != text", st);
            free(back);
        }
    }
    free(ids);
    if (sel & 16) {
        char *tmpl = malloc(len + 1);
        if (tmpl) {
            memcpy(tmpl, text, len);
            tmpl[len] = '\0';
            loom_chat_message msgs[3] = {{sizeof msgs[0], 0, "system", "S"},
                                         {sizeof msgs[0], 0, "user", " u "},
                                         {sizeof msgs[0], 0, "assistant", "a"}};
            char out[1024];
            size_t olen = 0;
            loom_chat_apply(tmpl, "<s>", "</s>", msgs, (size_t)(sel >> 5) % 4, sel & 0x80, out, sizeof out, &olen,
                            NULL, 0);
            free(tmpl);
        }
    }
    return 0;
}
