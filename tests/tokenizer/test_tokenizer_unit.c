/*
 * test_tokenizer_unit.c - the tokenizer algorithms on small vocabularies built here, with the
 * expected ids worked out by hand (see the comments), plus API contracts and hostile input.
 */
#include "tok_test.h"
#include "tokenizer_impl.h"

/* ---- a byte-level BPE vocabulary: ids 0..255 are the bytes (GPT-2 encoded), then merges ---- */
/* merges, by rank:  0 "h e"  1 "l l"  2 "he ll"  3 "hell o"  4 "Ġ w"  5 "o r"  6 "Ġw or"  7 "l d"
 *                   8 "Ġwor ld"  9 "a a" */
static const char *const bpe_extra[] = {"he",  "ll", "hell",          "hello",    "\xc4\xa0w", "or",
                                        "\xc4\xa0wor", "ld", "\xc4\xa0world", "<|endoftext|>", "<|user|>", "aa"};
enum { T_HE = 256, T_LL, T_HELL, T_HELLO, T_GW, T_OR, T_GWOR, T_LD, T_GWORLD, T_EOT, T_USER, T_AA };
static const char *const bpe_merges[] = {"h e",  "l l", "he ll",  "hell o", "\xc4\xa0 w", "o r", "\xc4\xa0w or", "l d",
                                         "\xc4\xa0wor ld", "a a"};

static loom_tokenizer *make_bpe(const char *pre) {
    static char bytes[256][4];
    const char *tokens[256 + 12];
    int32_t types[256 + 12];
    for (int b = 0; b < 256; b++) {
        size_t n = tok_utf8_put(tok_bpe_byte_to_cpt((uint8_t)b), bytes[b]);
        bytes[b][n] = '\0';
        tokens[b] = bytes[b];
        types[b] = 1;
    }
    for (int i = 0; i < 12; i++) {
        tokens[256 + i] = bpe_extra[i];
        types[256 + i] = 1;
    }
    types[T_EOT] = 3; /* control */
    types[T_USER] = 4; /* user-defined */
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = pre;
    d.n_tokens = 256 + 12;
    d.tokens = tokens;
    d.token_types = types;
    d.n_merges = 10;
    d.merges = bpe_merges;
    d.bos = T_EOT;
    d.eos = T_EOT;
    loom_tokenizer *tok = NULL;
    char err[256];
    loom_status st = loom_tokenizer_create(&d, &tok, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "%s", err);
    return tok;
}

static void expect(const loom_tokenizer *tok, const char *text, size_t len, uint32_t flags, const int32_t *want,
                   size_t n_want) {
    size_t n = 0;
    loom_status st;
    int32_t *ids = tt_encode(tok, text, len, flags, &n, &st);
    bool ok = ids && n == n_want && (!n || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        tt_failures++;
        fprintf(stderr, "encode ");
        tt_print_text(stderr, text, len);
        fprintf(stderr, " (flags %u): got ", flags);
        if (ids) tt_print_ids(stderr, ids, n);
        else fprintf(stderr, "error %s", loom_status_string(st));
        fprintf(stderr, ", want ");
        tt_print_ids(stderr, want, n_want);
        fputc('\n', stderr);
    }
    free(ids);
}
#define EXPECT(tok, text, flags, ...)                                                                                  \
    do {                                                                                                               \
        const int32_t w_[] = {__VA_ARGS__};                                                                            \
        expect(tok, text, sizeof(text) - 1, flags, w_, sizeof w_ / sizeof w_[0]);                                      \
    } while (0)
#define EXPECT_NONE(tok, text, flags) expect(tok, text, sizeof(text) - 1, flags, NULL, 0)

static void roundtrip(const loom_tokenizer *tok, const char *text, size_t len) {
    size_t n = 0;
    int32_t *ids = tt_encode(tok, text, len, 0, &n, NULL);
    CHECK(ids != NULL);
    char buf[1024];
    size_t blen = 0;
    CHECK(loom_tokenizer_decode(tok, ids, n, false, buf, sizeof buf, &blen) == LOOM_OK);
    CHECK_MSG(blen == len && !memcmp(buf, text, len), "round trip of %.*s", (int)len, text);
    free(ids);
}

static void test_bpe(void) {
    loom_tokenizer *tok = make_bpe("gpt-2");
    if (!tok) return;
    CHECK(!strcmp(loom_tokenizer_model(tok), "gpt2"));
    /* "hello": h e l l o -> (h e) -> he l l o -> (l l) -> he ll o -> hell o -> hello */
    EXPECT(tok, "hello", 0, T_HELLO);
    /* " world": Ġw(4) before or(5) before ld(7); then Ġw+or(6), then Ġwor+ld(8) */
    EXPECT(tok, "hello world", 0, T_HELLO, T_GWORLD);
    /* two spaces: \s+(?!\S) leaves the last space to the word */
    EXPECT(tok, "hello  world", 0, T_HELLO, ' ', T_GWORLD);
    /* trailing spaces at the end of the text stay one piece (no merge for "ĠĠ") */
    EXPECT(tok, "hello  ", 0, T_HELLO, ' ', ' ');
    /* digits: " 123" is one word, no merges apply */
    EXPECT(tok, "a 123", 0, 'a', ' ', '1', '2', '3');
    /* "aaa": (a a) at positions 0-1 wins the tie against 1-2: aa a */
    EXPECT(tok, "aaa", 0, T_AA, 'a');
    /* contractions are split off: "'s" is its own word */
    EXPECT(tok, "he's", 0, T_HE, '\'', 's');
    /* invalid UTF-8: 0xFF becomes U+FFFD = EF BF BD */
    EXPECT(tok, "\xff", 0, 0xEF, 0xBF, 0xBD);
    /* overlong NUL (C0 80) is read as U+0000 */
    EXPECT(tok, "\xc0\x80", 0, 0);
    /* F7 BF BF BF would be above U+10FFFF: four malformed bytes (llama.cpp aborts here) */
    EXPECT(tok, "\xf7\xbf\xbf\xbf", 0, 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD);
    /* a surrogate (ED A0 80) is kept as its three bytes, one word */
    EXPECT(tok, "a\xed\xa0\x80", 0, 'a', 0xED, 0xA0, 0x80);
    /* control token text: split out only with PARSE_SPECIAL */
    EXPECT(tok, "<|endoftext|>he", LOOM_TOKENIZE_PARSE_SPECIAL, T_EOT, T_HE);
    EXPECT(tok, "<|endoftext|>he", 0, '<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>', T_HE);
    /* user-defined tokens are always split out */
    EXPECT(tok, "a<|user|>b", 0, 'a', T_USER, 'b');
    /* no BOS for this vocabulary (byte-level BPE does not add one by default) */
    EXPECT(tok, "he", LOOM_TOKENIZE_ADD_BOS, T_HE);
    EXPECT_NONE(tok, "", LOOM_TOKENIZE_ADD_BOS);

    char buf[64];
    size_t len = 0;
    CHECK(loom_tokenizer_piece(tok, T_GWORLD, false, buf, sizeof buf, &len) == LOOM_OK && len == 6 &&
          !memcmp(buf, " world", 6));
    CHECK(loom_tokenizer_piece(tok, T_EOT, false, buf, sizeof buf, &len) == LOOM_OK && len == 0);
    CHECK(loom_tokenizer_piece(tok, T_EOT, true, buf, sizeof buf, &len) == LOOM_OK && len == 13);
    CHECK(loom_tokenizer_piece(tok, T_USER, false, buf, sizeof buf, &len) == LOOM_OK && len == 8);
    CHECK(loom_tokenizer_piece(tok, T_GWORLD, false, buf, 3, &len) == LOOM_ERR_BUFFER_TOO_SMALL && len == 6);
    CHECK(loom_tokenizer_piece(tok, 100000, false, buf, sizeof buf, &len) == LOOM_ERR_INVALID_ARGUMENT);
    CHECK(loom_tokenizer_piece(tok, -1, false, buf, sizeof buf, &len) == LOOM_ERR_INVALID_ARGUMENT);
    /* byte 0x00 is token 0, encoded as U+0100 'Ā' */
    CHECK(loom_tokenizer_piece(tok, 0, false, buf, sizeof buf, &len) == LOOM_OK && len == 1 && buf[0] == 0);

    /* the buffer contract of encode */
    int32_t ids[4];
    size_t n = 0;
    CHECK(loom_tokenizer_encode(tok, "hello world a b c", 17, 0, ids, 2, &n) == LOOM_ERR_BUFFER_TOO_SMALL && n == 8);
    CHECK(loom_tokenizer_encode(tok, "hello world a b c", 17, 0, NULL, 0, &n) == LOOM_ERR_BUFFER_TOO_SMALL && n == 8);
    CHECK(loom_tokenizer_encode(tok, NULL, 3, 0, ids, 4, &n) == LOOM_ERR_INVALID_ARGUMENT);
    CHECK(loom_tokenizer_encode(tok, NULL, 0, 0, ids, 4, &n) == LOOM_OK && n == 0);
    /* decode: buffer too small reports the size, and out-of-range ids are refused */
    int32_t hw[] = {T_HELLO, T_GWORLD};
    CHECK(loom_tokenizer_decode(tok, hw, 2, false, buf, 4, &len) == LOOM_ERR_BUFFER_TOO_SMALL && len == 11);
    CHECK(loom_tokenizer_decode(tok, hw, 2, false, buf, sizeof buf, &len) == LOOM_OK && len == 11 &&
          !strcmp(buf, "hello world"));
    int32_t badid[] = {T_HELLO, 5000};
    CHECK(loom_tokenizer_decode(tok, badid, 2, false, buf, sizeof buf, &len) == LOOM_ERR_INVALID_ARGUMENT);

    roundtrip(tok, "hello world", 11);
    roundtrip(tok, "  leading and trailing  \n\t", 26);
    roundtrip(tok, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82", 17);
    CHECK(loom_tokenizer_is_eog(tok, T_EOT));
    CHECK(!loom_tokenizer_is_eog(tok, T_HELLO));
    CHECK(loom_tokenizer_eot(tok) == T_EOT); /* found by its text */
    loom_tokenizer_free(tok);

    /* the smollm pre-tokenizer isolates every digit first */
    tok = make_bpe("smollm");
    if (tok) {
        /* "a  1": \p{N} cuts "a  " | "1"; in "a  " the two spaces end the piece, so they stay together */
        EXPECT(tok, "a  1", 0, 'a', ' ', ' ', '1');
        loom_tokenizer_free(tok);
    }
    /* unknown pre-tokenizers are refused with their name */
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    const char *one[] = {"a"};
    d.model = "gpt2";
    d.pre = "no-such-pre";
    d.n_tokens = 1;
    d.tokens = one;
    char err[256] = "";
    loom_tokenizer *bad = NULL;
    CHECK(loom_tokenizer_create(&d, &bad, err, sizeof err) == LOOM_ERR_UNSUPPORTED && !bad);
    CHECK(strstr(err, "no-such-pre") != NULL);
    d.model = "t5";
    CHECK(loom_tokenizer_create(&d, &bad, err, sizeof err) == LOOM_ERR_UNSUPPORTED && strstr(err, "t5"));
    d.model = "llama";
    d.n_tokens = 0;
    CHECK(loom_tokenizer_create(&d, &bad, err, sizeof err) == LOOM_ERR_FORMAT);
}

/* ---- a SentencePiece-style vocabulary ---- */
enum { S_UNK, S_BOS, S_EOS, S_BYTE0, S_SP = 259, S_A, S_B, S_SPA, S_AB, S_SPAB, S_AA, S_CTRL, S_MASK };
static loom_tokenizer *make_spm(bool with_spab) {
    static char bytes[256][8];
    const char *tokens[S_MASK + 1];
    float scores[S_MASK + 1];
    int32_t types[S_MASK + 1];
    tokens[S_UNK] = "<unk>", types[S_UNK] = 2;
    tokens[S_BOS] = "<s>", types[S_BOS] = 3;
    tokens[S_EOS] = "</s>", types[S_EOS] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tokens[S_BYTE0 + b] = bytes[b];
        types[S_BYTE0 + b] = 6;
    }
    for (int i = 0; i <= S_MASK; i++) scores[i] = 0.0f;
    tokens[S_SP] = "\xe2\x96\x81", scores[S_SP] = -1;
    tokens[S_A] = "a", scores[S_A] = -2;
    tokens[S_B] = "b", scores[S_B] = -3;
    tokens[S_SPA] = "\xe2\x96\x81" "a", scores[S_SPA] = -4;
    tokens[S_AB] = "ab", scores[S_AB] = -1;
    tokens[S_SPAB] = with_spab ? "\xe2\x96\x81" "ab" : "unused-\xe2\x96\x81" "ab", scores[S_SPAB] = -6;
    tokens[S_AA] = "aa", scores[S_AA] = -2;
    tokens[S_CTRL] = "<ctrl>";
    tokens[S_MASK] = "<mask>";
    for (int i = S_SP; i <= S_AA; i++) types[i] = 1;
    types[S_CTRL] = 3;
    types[S_MASK] = 4;
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = S_MASK + 1;
    d.tokens = tokens;
    d.scores = scores;
    d.token_types = types;
    loom_tokenizer *tok = NULL;
    char err[256];
    CHECK_MSG(loom_tokenizer_create(&d, &tok, err, sizeof err) == LOOM_OK, "%s", err);
    return tok;
}

static void test_spm(void) {
    loom_tokenizer *tok = make_spm(true);
    if (!tok) return;
    CHECK(loom_tokenizer_bos(tok) == 1 && loom_tokenizer_eos(tok) == 2 && loom_tokenizer_add_bos(tok));
    /* " ab" escaped: ▁ a b. "ab" (-1) beats "▁a" (-4); then "▁" + "ab" -> "▁ab" */
    EXPECT(tok, "ab", LOOM_TOKENIZE_ADD_BOS, S_BOS, S_SPAB);
    EXPECT(tok, "ab", 0, S_SPAB);
    /* ties go to the leftmost pair: ▁ a a a -> "aa" at 1-2 (-2) beats "▁a" (-4): ▁ aa a */
    EXPECT(tok, "aaa", 0, S_SP, S_AA, S_A);
    /* byte fallback: é = C3 A9 has no token */
    EXPECT(tok, "\xc3\xa9", 0, S_SP, S_BYTE0 + 0xC3, S_BYTE0 + 0xA9);
    /* a truncated sequence at the end is one symbol of one byte */
    EXPECT(tok, "a\xc3", 0, S_SPA, S_BYTE0 + 0xC3);
    /* spaces: every space is ▁; "a b" -> ▁a ▁ b */
    EXPECT(tok, "a b", 0, S_SPA, S_SP, S_B);
    /* control text only with PARSE_SPECIAL; after a special token a space is put in front again */
    EXPECT(tok, "<ctrl>ab", LOOM_TOKENIZE_PARSE_SPECIAL, S_CTRL, S_SPAB);
    /* user-defined tokens always; the text after one gets the space prefix too */
    EXPECT(tok, "a<mask>b", 0, S_SPA, S_MASK, S_SP, S_B);
    EXPECT(tok, "", LOOM_TOKENIZE_ADD_BOS, S_BOS);
    EXPECT_NONE(tok, "", 0);

    char buf[64];
    size_t len = 0;
    CHECK(loom_tokenizer_piece(tok, S_SPAB, false, buf, sizeof buf, &len) == LOOM_OK && len == 3 &&
          !memcmp(buf, " ab", 3));
    CHECK(loom_tokenizer_piece(tok, S_BYTE0 + 0x41, false, buf, sizeof buf, &len) == LOOM_OK && len == 1 &&
          buf[0] == 'A');
    CHECK(loom_tokenizer_piece(tok, S_BOS, false, buf, sizeof buf, &len) == LOOM_OK && len == 0);
    CHECK(loom_tokenizer_piece(tok, S_BOS, true, buf, sizeof buf, &len) == LOOM_OK && len == 3);
    /* decode drops the space SentencePiece puts in front, also after BOS */
    int32_t seq[] = {S_BOS, S_SPAB, S_SP, S_B};
    CHECK(loom_tokenizer_decode(tok, seq, 4, false, buf, sizeof buf, &len) == LOOM_OK && !strcmp(buf, "ab b"));
    CHECK(loom_tokenizer_decode(tok, seq, 4, true, buf, sizeof buf, &len) == LOOM_OK && !strcmp(buf, "<s>ab b"));
    roundtrip(tok, "  two leading spaces", 20);
    roundtrip(tok, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\n", 13);
    /* invalid UTF-8 is cut by the lead bytes' lengths (llama.cpp's rule), so a space can end up
     * inside a byte-fallback symbol: FF FE ▁(E2 96) is one symbol, and it decodes as bytes */
    EXPECT(tok, "\xff\xfe a", 0, S_SP, S_BYTE0 + 0xFF, S_BYTE0 + 0xFE, S_BYTE0 + 0xE2, S_BYTE0 + 0x96,
           S_BYTE0 + 0x81, S_A);
    loom_tokenizer_free(tok);

    /* without "▁ab": ▁ ab */
    tok = make_spm(false);
    if (tok) {
        EXPECT(tok, "ab", 0, S_SP, S_AB);
        loom_tokenizer_free(tok);
    }
}

/* Random bytes must never crash, and valid UTF-8 without special text must round-trip. */
static void test_random(void) {
    loom_tokenizer *toks[2] = {make_bpe("smollm"), make_spm(true)};
    uint64_t s = 0x9E3779B97F4A7C15ull;
    char text[256], back[2048];
    for (int iter = 0; iter < 4000; iter++) {
        size_t len = 0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = (s >> 33) % sizeof text;
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            text[i] = iter & 1 ? (char)(s >> 40) : " abhelowrd1\n\t\xc3\xa9"[(s >> 40) % 15];
        }
        for (int k = 0; k < 2; k++) {
            if (!toks[k]) continue;
            size_t m = 0;
            int32_t *ids = tt_encode(toks[k], text, n, (uint32_t)iter & 3, &m, NULL);
            CHECK(ids != NULL);
            if (ids && !(iter & 1) && !(iter & 2)) {
                bool valid = true;
                for (size_t i = 0; i + 1 < n || i < n; i++) {
                    if ((unsigned char)text[i] == 0xC3) {
                        if (i + 1 >= n || (unsigned char)text[i + 1] != 0xA9) valid = false;
                        i++;
                    } else if ((unsigned char)text[i] == 0xA9) {
                        valid = false;
                    }
                }
                if (valid) {
                    CHECK(loom_tokenizer_decode(toks[k], ids, m, false, back, sizeof back, &len) == LOOM_OK);
                    CHECK_MSG(len == n && !memcmp(back, text, n), "random round trip %d/%d", iter, k);
                }
            }
            free(ids);
        }
    }
    loom_tokenizer_free(toks[0]);
    loom_tokenizer_free(toks[1]);
}

/* tokenizer.json: a SentencePiece-style (Llama) file and a refused pre-tokenizer. */
static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_hf_json(void) {
    char dir[] = "/tmp/loom-tok-unit-XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[256], cfg[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    /* merges by rank: 0 "a b", 1 "▁ ab", 2 "▁ a" -> scores ab 0, ▁ab -1, ▁a -2 */
    char *json = malloc(1 << 16);
    size_t o = (size_t)sprintf(json,
                               "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
                               " {\"id\": 1, \"content\": \"<s>\", \"special\": true},"
                               " {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
                               " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
                               "{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
                               " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
                               " \"pre_tokenizer\": null,"
                               " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"unk_token\": \"<unk>\","
                               " \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int b = 0; b < 256; b++) o += (size_t)sprintf(json + o, ", \"<0x%02X>\": %d", b, 3 + b);
    sprintf(json + o, ", \"\\u2581\": 259, \"a\": 260, \"b\": 261, \"ab\": 262, \"\\u2581ab\": 263, \"\\u2581a\": 264},"
                      " \"merges\": [\"a b\", \"\\u2581 ab\", \"\\u2581 a\"]}}");
    write_file(path, json);
    loom_tokenizer *tok = NULL;
    char err[512] = "";
    loom_status st = loom_tokenizer_create_from_hf_json(path, &tok, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "%s", err);
    if (tok) {
        CHECK(!strcmp(loom_tokenizer_model(tok), "llama"));
        CHECK(loom_tokenizer_bos(tok) == 1 && loom_tokenizer_eos(tok) == 2 && loom_tokenizer_add_bos(tok));
        /* ▁ a b: "ab" (0) before "▁a" (-2); then "▁ab" (-1) */
        EXPECT(tok, "ab", LOOM_TOKENIZE_ADD_BOS, 1, 263);
        EXPECT(tok, "ba", 0, 259, 261, 260);
        EXPECT(tok, "\xc3\xa9", 0, 259, 3 + 0xC3, 3 + 0xA9);
        roundtrip(tok, "ab ba  \xc3\xa9", 9);
        loom_tokenizer_free(tok);
    }
    /* tokenizer_config.json turns BOS off */
    write_file(cfg, "{\"add_bos_token\": false, \"bos_token\": \"<s>\", \"chat_template\": \"x<|im_start|>\"}");
    st = loom_tokenizer_create_from_hf_json(path, &tok, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "%s", err);
    if (tok) {
        EXPECT(tok, "ab", LOOM_TOKENIZE_ADD_BOS, 263);
        CHECK(loom_tokenizer_chat_template(tok) && !strcmp(loom_tokenizer_chat_template(tok), "x<|im_start|>"));
        loom_tokenizer_free(tok);
    }
    /* an unknown Split pattern in front of ByteLevel is refused, quoting the pattern */
    write_file(path, "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\","
                     " \"pattern\": {\"Regex\": \"[a-z]+\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\","
                     " \"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    CHECK(loom_tokenizer_create_from_hf_json(path, &tok, err, sizeof err) == LOOM_ERR_UNSUPPORTED && !tok);
    CHECK_MSG(strstr(err, "[a-z]+") != NULL, "%s", err);
    write_file(path, "{\"model\": {\"type\": \"Unigram\"}}");
    CHECK(loom_tokenizer_create_from_hf_json(path, &tok, err, sizeof err) == LOOM_ERR_UNSUPPORTED);
    write_file(path, "{\"model\": ");
    CHECK(loom_tokenizer_create_from_hf_json(path, &tok, err, sizeof err) == LOOM_ERR_FORMAT);
    write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -5}}}");
    CHECK(loom_tokenizer_create_from_hf_json(path, &tok, err, sizeof err) == LOOM_ERR_FORMAT);
    unlink(path);
    unlink(cfg);
    rmdir(dir);
    free(json);
}

/* ---- the byte vocabulary of `loom convert --tokenizer bytes`: 256 byte tokens, no merges ---- */
static loom_tokenizer *make_bytes(int32_t type_255, uint32_t n_merges, int64_t eos) {
    static char bytes[256][4];
    const char *tokens[256];
    int32_t types[256];
    for (int b = 0; b < 256; b++) {
        char ref[4];
        size_t n = loom_tokenizer_byte_text((uint8_t)b, bytes[b]);
        /* GPT-2: printable Latin-1 bytes stand for themselves, the 68 others for U+0100.. in order */
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        CHECK(n == tok_utf8_put(printable ? (uint32_t)b : tok_bpe_byte_to_cpt((uint8_t)b), ref) &&
              !memcmp(ref, bytes[b], n));
        bytes[b][n] = '\0';
        tokens[b] = bytes[b];
        types[b] = 1;
    }
    CHECK(!strcmp(bytes[0], "\xc4\x80") && !strcmp(bytes[' '], "\xc4\xa0") && !strcmp(bytes[0xFF], "\xc3\xbf"));
    types[255] = type_255;
    static const char *const merges[] = {"a b"};
    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    d.model = "gpt2";
    d.n_tokens = 256;
    d.tokens = tokens;
    d.token_types = types;
    d.n_merges = n_merges;
    d.merges = n_merges ? merges : NULL;
    d.eos = eos;
    d.add_bos = 0;
    loom_tokenizer *tok = NULL;
    char err[256];
    loom_status st = loom_tokenizer_create(&d, &tok, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "%s", err);
    return tok;
}

static void test_byte_vocab(void) {
    loom_tokenizer *tok = make_bytes(1, 0, -2);
    if (!tok) return;
    CHECK(loom_tokenizer_is_byte_vocab(tok));
    /* no free id for BOS/EOS: none unless the file names them (llama.cpp's gpt2 default is 11) */
    CHECK(loom_tokenizer_bos(tok) == -1 && loom_tokenizer_eos(tok) == -1 && !loom_tokenizer_add_bos(tok));
    CHECK(!loom_tokenizer_is_eog(tok, 11));
    /* every byte value, NUL and bytes that are not valid UTF-8 included, is its own id */
    char all[512];
    for (int i = 0; i < 512; i++)
        all[i] = (char)(unsigned char)((i * 167 + 13) & 0xFF);
    size_t n = 0;
    int32_t *ids = tt_encode(tok, all, sizeof all, LOOM_TOKENIZE_ADD_BOS | LOOM_TOKENIZE_PARSE_SPECIAL, &n, NULL);
    CHECK(ids && n == sizeof all);
    for (size_t i = 0; ids && i < n && i < sizeof all; i++)
        CHECK_MSG(ids[i] == (unsigned char)all[i], "byte %zu: id %d for 0x%02x", i, ids[i], (unsigned char)all[i]);
    char back[600];
    size_t blen = 0;
    CHECK(ids && loom_tokenizer_decode(tok, ids, n, false, back, sizeof back, &blen) == LOOM_OK);
    CHECK(blen == sizeof all && !memcmp(back, all, sizeof all));
    free(ids);
    for (int b = 0; b < 256; b++) {
        char piece[8];
        size_t pl = 0;
        CHECK(loom_tokenizer_piece(tok, b, false, piece, sizeof piece, &pl) == LOOM_OK && pl == 1 &&
              (unsigned char)piece[0] == b);
    }
    EXPECT(tok, "h\xc3\xa9 \xff", 0, 'h', 0xC3, 0xA9, ' ', 0xFF);
    roundtrip(tok, "Once upon a time\n", 17);
    loom_tokenizer_free(tok);

    /* not a byte vocabulary: a merge, or a control token. Empty merge lists are accepted by
     * the general byte-level BPE path, which gives the same ids for valid UTF-8. */
    tok = make_bytes(1, 1, -2);
    if (tok) {
        CHECK(!loom_tokenizer_is_byte_vocab(tok) && loom_tokenizer_eos(tok) == 11);
        loom_tokenizer_free(tok);
    }
    tok = make_bytes(3, 0, 255);
    if (tok) {
        CHECK(!loom_tokenizer_is_byte_vocab(tok) && loom_tokenizer_eos(tok) == 255);
        EXPECT(tok, "h\xc3\xa9 ~", 0, 'h', 0xC3, 0xA9, ' ', '~');
        roundtrip(tok, "h\xc3\xa9llo w\xc3\xb6rld", 14);
        loom_tokenizer_free(tok);
    }
    /* a byte vocabulary may still name an EOS */
    tok = make_bytes(1, 0, 0);
    if (tok) {
        CHECK(loom_tokenizer_is_byte_vocab(tok) && loom_tokenizer_eos(tok) == 0);
        loom_tokenizer_free(tok);
    }
}

int main(void) {
    test_byte_vocab();
    test_bpe();
    test_spm();
    test_random();
    test_hf_json();
    if (tt_failures) fprintf(stderr, "%d check(s) failed\n", tt_failures);
    return tt_failures ? 1 : 0;
}
