/*
 * tokenizer_impl.h - what the tokenizer's source files (tokenizer.c, tokenizer_spm.c,
 * tokenizer_bpe.c, tokenizer_hf.c) share. Nothing else includes it.
 */
#ifndef LOOM_TOKENIZER_IMPL_H
#define LOOM_TOKENIZER_IMPL_H

#include "internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

enum { TOK_KIND_SPM = 1, TOK_KIND_BPE = 2 };

/* At most this many regular expressions run one after the other in a pre-tokenizer. */
#define TOK_MAX_REGEX 4

typedef struct tok_entry {
    uint32_t off; /* into pool */
    uint32_t len;
    float score;
    uint32_t attr; /* LOOM_TOKEN_ATTR_* */
} tok_entry;

/* Open-addressing hash set of strings kept elsewhere; slots hold index + 1 (0 = empty). */
typedef struct tok_hash {
    uint32_t *slots;
    uint32_t mask;
} tok_hash;

typedef struct tok_merge {
    uint32_t a_off, a_len; /* into merge_pool */
    uint32_t b_off, b_len;
} tok_merge;

struct loom_tokenizer {
    uint32_t kind;
    char *pre;     /* pre-tokenizer name ("" for SentencePiece) */
    char *chat_template;
    uint32_t n_vocab;
    tok_entry *tokens;
    char *pool; /* token texts, each NUL-terminated */
    tok_hash vocab_hash;

    uint32_t n_merges;
    tok_merge *merges;
    char *merge_pool;
    tok_hash merge_hash;

    int32_t *special; /* control / user-defined / unknown tokens, longest text first */
    uint32_t n_special;
    int32_t *eog;
    uint32_t n_eog;

    int32_t bos, eos, eot, eom, unk, pad, sep;
    bool add_bos, add_eos, add_space_prefix;
    bool ignore_merges;
    /* A byte vocabulary (byte-level BPE, exactly 256 normal tokens, token b = the GPT-2
     * character of byte b, no merges): every input byte is its own id, valid UTF-8 or not. */
    bool byte_vocab;

    /* Byte-level BPE: the pre-tokenizer's expressions, applied one after the other. */
    pcre2_code *re[TOK_MAX_REGEX];
    uint32_t n_re;
    /* SentencePiece: token of each byte (<0xXX>, else the byte itself), -1 when none. */
    int32_t byte_token[256];
};

/* ---- a growable list of token ids ---- */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
    bool oom;
} tok_ids;

void tok_ids_push(tok_ids *ids, int32_t id);

/* ---- tokenizer.c helpers ---- */
uint64_t tok_hash_bytes(const void *data, size_t len, uint64_t seed);
/* Id of the token whose text is exactly `text` (len bytes), or -1. */
int32_t tok_find(const loom_tokenizer *tok, const char *text, size_t len);
static inline const char *tok_text(const loom_tokenizer *tok, int32_t id) { return tok->pool + tok->tokens[id].off; }

/* ---- UTF-8, as llama.cpp reads it ---- */
/* Length of the sequence a lead byte announces (1 for continuation and invalid bytes). */
size_t tok_utf8_len(unsigned char c);
/* Decode the code point at *pos like llama.cpp: a malformed sequence yields U+FFFD and
 * advances one byte. Overlong forms and surrogates are accepted; values above U+10FFFF are
 * treated as malformed (llama.cpp aborts on them). */
uint32_t tok_utf8_next(const unsigned char *s, size_t len, size_t *pos);
/* Encode a code point (<= 0x10FFFF; surrogates too) into out[4]; returns the length. */
size_t tok_utf8_put(uint32_t cpt, char *out);

/* ---- tokenizer_spm.c ---- */
loom_status tok_spm_encode(const loom_tokenizer *tok, const char *text, size_t len, tok_ids *out);
loom_status tok_spm_init(loom_tokenizer *tok, char *err, size_t err_size);

/* ---- tokenizer_bpe.c ---- */
loom_status tok_bpe_init(loom_tokenizer *tok, char *err, size_t err_size);
void tok_bpe_release(loom_tokenizer *tok);
loom_status tok_bpe_encode(const loom_tokenizer *tok, const char *text, size_t len, tok_ids *out);
/* GPT-2's byte-to-unicode mapping: code point standing for byte b, and the byte of a code
 * point (-1 when the code point stands for no byte). */
uint32_t tok_bpe_byte_to_cpt(uint8_t b);
int tok_bpe_cpt_to_byte(uint32_t cpt);

#endif
