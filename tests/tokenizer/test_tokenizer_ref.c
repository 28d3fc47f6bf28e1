/*
 * test_tokenizer_ref.c - Loom's token ids against llama.cpp's (fixtures written by
 * scripts/tokenizer_reference.py through llama-cpp-python; see docs/tokenizers.md).
 *
 *   test_tokenizer_ref smollm2 FIXDIR WIKI   the default model (SmolLM2, byte-level BPE "smollm")
 *   test_tokenizer_ref spm FIXDIR WIKI       the SentencePiece-style vocabulary fixtures/spm-vocab.gguf
 *   test_tokenizer_ref pre NAME FIXDIR WIKI  SmolLM2's vocabulary + digit tokens with pre-tokenizer NAME
 *   test_tokenizer_ref hf FIXDIR WIKI        SmolLM2's vocabulary written as a tokenizer.json
 *
 * Compared: WikiText-2 test as one string (ids) and line by line (a hash of each line's ids), the
 * hard cases with (add_special, parse_special) in {(1,0), (1,1), (0,0)}, every token's piece,
 * the special ids, and decode(encode(x)) == x for every WikiText line and the whole text.
 * The model comes from $LOOM_TEST_MODEL, then ~/.cache/loom; absent: skip (77).
 */
#include "tok_test.h"

#include <json-c/json.h>

static const char *fixdir, *wiki_path;

static uint32_t flags_of(const tt_record *r) {
    return (r->add_special ? LOOM_TOKENIZE_ADD_BOS : 0) | (r->parse_special ? LOOM_TOKENIZE_PARSE_SPECIAL : 0);
}

static void compare_ids(const char *label, const char *text, size_t len, const int32_t *got, size_t n_got,
                        const tt_record *r) {
    bool same = n_got == r->n;
    size_t first = 0;
    for (; same && first < n_got; first++)
        if ((uint64_t)(uint32_t)got[first] != tt_elem(r, (uint32_t)first)) same = false;
    if (same) return;
    tt_failures++;
    fprintf(stderr, "%s: ids differ (add_special %d, parse_special %d) for ", label, r->add_special, r->parse_special);
    tt_print_text(stderr, text, len);
    fprintf(stderr, "\n  loom     (%zu) ", n_got);
    tt_print_ids(stderr, got, n_got);
    fprintf(stderr, "\n  llama.cpp (%u) [", r->n);
    for (uint32_t i = 0; i < r->n && i < 64; i++) fprintf(stderr, "%s%llu", i ? " " : "", (unsigned long long)tt_elem(r, i));
    fprintf(stderr, "%s]\n", r->n > 64 ? " ..." : "");
}

/* The whole fixture: returns the number of failures it added. */
static int check_fixture(const loom_tokenizer *tok, const char *fixname, const char *wiki, size_t wiki_len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixdir, fixname);
    tt_fixture fx;
    if (!tt_fixture_load(path, &fx)) {
        tt_failures++;
        return 1;
    }
    int before = tt_failures;
    tt_lines lines;
    tt_split_lines(wiki, wiki_len, &lines);
    const tt_record *pieces = NULL;
    uint32_t n_cases = 0, n_case_fail = 0;
    for (uint32_t i = 0; i < fx.n_rec; i++) {
        const tt_record *r = &fx.rec[i];
        if (r->src == TT_SRC_WIKI_WHOLE) {
            double t0 = loom_now();
            size_t n = 0;
            loom_status st;
            int32_t *ids = tt_encode(tok, wiki, wiki_len, flags_of(r), &n, &st);
            double dt = loom_now() - t0;
            CHECK_MSG(ids != NULL, "encode failed: %s", loom_status_string(st));
            if (!ids) continue;
            if (r->elem_size == 8) {
                CHECK_MSG(tt_ids_hash(ids, n) == tt_elem(r, 0), "%s: WikiText as one string: hash differs", fixname);
            } else {
                bool same = n == r->n;
                size_t k = 0;
                for (; k < n && k < r->n; k++)
                    if ((uint64_t)(uint32_t)ids[k] != tt_elem(r, (uint32_t)k)) break;
                if (k < n || k < r->n) same = false;
                CHECK_MSG(same, "%s: WikiText as one string: %zu ids vs llama.cpp %u, first difference at %zu", fixname,
                          n, r->n, k);
            }
            printf("%s: WikiText-2 test as one string: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)\n", fixname,
                   wiki_len, n, dt, (double)wiki_len / 1e6 / (dt > 0 ? dt : 1e-9));
            /* round trip */
            char *back = malloc(wiki_len + 1);
            size_t blen = 0;
            loom_status ds = loom_tokenizer_decode(tok, ids, n, false, back, wiki_len + 1, &blen);
            CHECK_MSG(ds == LOOM_OK && blen == wiki_len && !memcmp(back, wiki, wiki_len),
                      "%s: decode(encode(WikiText)) != WikiText", fixname);
            free(back);
            free(ids);
        } else if (r->src == TT_SRC_WIKI_LINES) {
            CHECK_MSG(r->aux == lines.n, "%s: %u lines in the fixture, %zu in the WikiText file", fixname, r->aux,
                      lines.n);
            uint32_t bad = 0, bad_trip = 0;
            for (size_t l = 0; l < lines.n && l < r->n; l++) {
                size_t n = 0;
                int32_t *ids = tt_encode(tok, wiki + lines.off[l], lines.len[l], flags_of(r), &n, NULL);
                if (!ids || tt_ids_hash(ids, n) != tt_elem(r, (uint32_t)l)) {
                    if (bad < 5) {
                        fprintf(stderr, "%s: line %zu differs: ", fixname, l);
                        tt_print_text(stderr, wiki + lines.off[l], lines.len[l]);
                        fprintf(stderr, "\n  loom ");
                        if (ids) tt_print_ids(stderr, ids, n);
                        fputc('\n', stderr);
                    }
                    bad++;
                }
                if (ids) {
                    char *back = malloc(lines.len[l] + 1);
                    size_t blen = 0;
                    if (loom_tokenizer_decode(tok, ids, n, false, back, lines.len[l] + 1, &blen) != LOOM_OK ||
                        blen != lines.len[l] || memcmp(back, wiki + lines.off[l], blen))
                        bad_trip++;
                    free(back);
                }
                free(ids);
            }
            CHECK_MSG(bad == 0, "%s: %u of %zu WikiText lines differ from llama.cpp", fixname, bad, lines.n);
            CHECK_MSG(bad_trip == 0, "%s: %u WikiText lines do not round-trip", fixname, bad_trip);
            printf("%s: WikiText-2 test line by line: %zu lines, %u differ from llama.cpp, %u fail to round-trip\n",
                   fixname, lines.n, bad, bad_trip);
        } else if (r->src == TT_SRC_INLINE) {
            n_cases++;
            size_t n = 0;
            loom_status st;
            int32_t *ids = tt_encode(tok, r->text, r->aux, flags_of(r), &n, &st);
            int f0 = tt_failures;
            if (!ids) {
                tt_failures++;
                fprintf(stderr, "%s: encode failed (%s) for ", fixname, loom_status_string(st));
                tt_print_text(stderr, r->text, r->aux);
                fputc('\n', stderr);
            } else if (r->elem_size == 8) {
                if (tt_ids_hash(ids, n) != tt_elem(r, 0)) {
                    tt_failures++;
                    fprintf(stderr, "%s: ids differ (hash; add_special %d, parse_special %d) for ", fixname,
                            r->add_special, r->parse_special);
                    tt_print_text(stderr, r->text, r->aux);
                    fprintf(stderr, "\n  loom ");
                    tt_print_ids(stderr, ids, n);
                    fputc('\n', stderr);
                }
            } else {
                compare_ids(fixname, r->text, r->aux, ids, n, r);
            }
            if (tt_failures != f0) n_case_fail++;
            free(ids);
        } else if (r->src == TT_SRC_PIECES) {
            pieces = r;
            CHECK_MSG(r->n == (uint32_t)loom_tokenizer_n_vocab(tok), "%s: %u pieces for %d tokens", fixname, r->n,
                      loom_tokenizer_n_vocab(tok));
            size_t off = 0;
            uint32_t bad = 0;
            char buf[4096];
            for (uint32_t t = 0; t < r->n; t++) {
                size_t want = (size_t)tt_elem(r, t), len = 0;
                loom_status st = loom_tokenizer_piece(tok, (int32_t)t, true, buf, sizeof buf, &len);
                if (st || len != want || off + want > r->aux || memcmp(buf, r->text + off, want)) {
                    if (bad < 5) fprintf(stderr, "%s: piece of token %u differs\n", fixname, t);
                    bad++;
                }
                off += want;
            }
            CHECK_MSG(bad == 0, "%s: %u pieces differ", fixname, bad);
            printf("%s: %u pieces (special tokens rendered) compared, %u differ\n", fixname, r->n, bad);
        } else if (r->src == TT_SRC_PIECES_EMPTY && pieces) {
            uint32_t bad = 0;
            size_t off = 0;
            char buf[4096];
            uint32_t e = 0;
            for (uint32_t t = 0; t < pieces->n; t++) {
                size_t want = (size_t)tt_elem(pieces, t), len = 0;
                bool empty = e < r->n && tt_elem(r, e) == t;
                if (empty) e++;
                loom_status st = loom_tokenizer_piece(tok, (int32_t)t, false, buf, sizeof buf, &len);
                bool ok = !st && (empty ? len == 0 : (len == want && !memcmp(buf, pieces->text + off, want)));
                if (!ok) bad++;
                off += want;
            }
            CHECK_MSG(bad == 0, "%s: %u pieces (special tokens not rendered) differ", fixname, bad);
        }
    }
    printf("%s: %u hard cases (text x flags), %u differ from llama.cpp\n", fixname, n_cases, n_case_fail);
    free(lines.off);
    free(lines.len);
    tt_fixture_free(&fx);
    return tt_failures - before;
}

/* Special ids and flags against facts.json. */
static void check_facts(const loom_tokenizer *tok, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/facts.json", fixdir);
    json_object *root = json_object_from_file(path), *f = NULL;
    CHECK_MSG(root && json_object_object_get_ex(root, name, &f), "facts.json: no entry %s", name);
    if (!f) {
        json_object_put(root);
        return;
    }
    json_object *v;
#define INT_OF(key) (json_object_object_get_ex(f, key, &v) ? json_object_get_int(v) : -99)
    CHECK_MSG(loom_tokenizer_n_vocab(tok) == INT_OF("n_vocab"), "%s: n_vocab %d vs %d", name,
              loom_tokenizer_n_vocab(tok), INT_OF("n_vocab"));
    CHECK_MSG(loom_tokenizer_bos(tok) == INT_OF("bos"), "%s: bos %d vs %d", name, loom_tokenizer_bos(tok), INT_OF("bos"));
    CHECK_MSG(loom_tokenizer_eos(tok) == INT_OF("eos"), "%s: eos %d vs %d", name, loom_tokenizer_eos(tok), INT_OF("eos"));
    CHECK_MSG(loom_tokenizer_add_bos(tok) == (json_object_object_get_ex(f, "add_bos", &v) && json_object_get_boolean(v)),
              "%s: add_bos differs", name);
#undef INT_OF
    /* End-of-generation and control sets. */
    const char *sets[] = {"eog", "control"};
    for (int s = 0; s < 2; s++) {
        json_object *arr;
        if (!json_object_object_get_ex(f, sets[s], &arr)) continue;
        size_t n = json_object_array_length(arr), k = 0;
        uint32_t bad = 0;
        for (int32_t t = 0; t < loom_tokenizer_n_vocab(tok); t++) {
            bool want = k < n && json_object_get_int(json_object_array_get_idx(arr, k)) == t;
            if (want) k++;
            bool got = s == 0 ? loom_tokenizer_is_eog(tok, t)
                              : (loom_tokenizer_token_attr(tok, t) & LOOM_TOKEN_ATTR_CONTROL) != 0;
            if (got != want) {
                if (bad < 5) fprintf(stderr, "%s: token %d: %s %d vs llama.cpp %d\n", name, t, sets[s], got, want);
                bad++;
            }
        }
        CHECK_MSG(bad == 0, "%s: %u tokens differ in the %s set", name, bad, sets[s]);
    }
    json_object_put(root);
}

static loom_tokenizer *open_tok(const char *path) {
    loom_file *file = NULL;
    char err[512] = "";
    loom_status st = loom_file_open(path, &file, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "open %s: %s", path, err);
    if (st) return NULL;
    loom_tokenizer *tok = NULL;
    st = loom_tokenizer_create_from_file(file, &tok, err, sizeof err);
    CHECK_MSG(st == LOOM_OK, "tokenizer of %s: %s", path, err);
    loom_file_close(file);
    return tok;
}

/* SmolLM2's vocabulary as a descriptor (borrowing the file's arrays), with 00..99 and 000..999
 * appended as the reference script does for the pre-tokenizer variants. */
typedef struct built_vocab {
    loom_vocab_desc d;
    const char **tokens, **merges;
    int32_t *types;
    char *digits;
} built_vocab;

static bool build_variant(const loom_file *file, const char *pre, built_vocab *b) {
    memset(b, 0, sizeof *b);
    const loom_meta *tk = loom_file_meta_find(file, "tokenizer.ggml.tokens");
    const loom_meta *ty = loom_file_meta_find(file, "tokenizer.ggml.token_type");
    const loom_meta *mg = loom_file_meta_find(file, "tokenizer.ggml.merges");
    if (!tk || !ty || !mg) return false;
    size_t nt = tk->count, nm = mg->count, extra = 1100;
    b->tokens = malloc((nt + extra) * sizeof *b->tokens);
    b->merges = malloc((nm + extra) * sizeof *b->merges);
    b->types = malloc((nt + extra) * sizeof *b->types);
    b->digits = malloc(extra * 16);
    memcpy(b->tokens, tk->v.arr, nt * sizeof *b->tokens);
    memcpy(b->merges, mg->v.arr, nm * sizeof *b->merges);
    memcpy(b->types, ty->v.arr, nt * sizeof *b->types);
    size_t k = 0;
    for (int a = 0; a < 100; a++, k++) {
        char *t = b->digits + k * 16;
        snprintf(t, 8, "%02d", a);
        snprintf(t + 8, 8, "%d %d", a / 10, a % 10);
        b->tokens[nt + k] = t, b->merges[nm + k] = t + 8, b->types[nt + k] = 1;
    }
    for (int ab = 0; ab < 100; ab++)
        for (int c = 0; c < 10; c++, k++) {
            char *t = b->digits + k * 16;
            snprintf(t, 8, "%02d%d", ab, c);
            snprintf(t + 8, 8, "%02d %d", ab, c);
            b->tokens[nt + k] = t, b->merges[nm + k] = t + 8, b->types[nt + k] = 1;
        }
    loom_vocab_desc_init(&b->d);
    b->d.model = "gpt2";
    b->d.pre = pre;
    b->d.n_tokens = (uint32_t)(nt + extra);
    b->d.tokens = b->tokens;
    b->d.token_types = b->types;
    b->d.n_merges = (uint32_t)(nm + extra);
    b->d.merges = b->merges;
    b->d.bos = 1;
    b->d.eos = 2;
    b->d.add_bos = 0;
    return true;
}

static void free_variant(built_vocab *b) {
    free(b->tokens);
    free(b->merges);
    free(b->types);
    free(b->digits);
}

/* SmolLM2's GGUF vocabulary written out as a Hugging Face tokenizer.json + tokenizer_config.json
 * (the layout of the model's published files: BPE, Split(\p{N}) + ByteLevel, 17 special added
 * tokens). Returns the tokenizer.json path or NULL. */
static const char *write_hf_json(const loom_file *file, char *dir, size_t dir_size) {
    snprintf(dir, dir_size, "/tmp/loom-tok-hf-XXXXXX");
    if (!mkdtemp(dir)) return NULL;
    const loom_meta *tk = loom_file_meta_find(file, "tokenizer.ggml.tokens");
    const loom_meta *ty = loom_file_meta_find(file, "tokenizer.ggml.token_type");
    const loom_meta *mg = loom_file_meta_find(file, "tokenizer.ggml.merges");
    const char *tmpl = NULL;
    loom_file_meta_string(file, "tokenizer.chat_template", &tmpl);
    if (!tk || !ty || !mg) return NULL;
    const char *const *toks = tk->v.arr;
    const int32_t *types = ty->v.arr;
    json_object *root = json_object_new_object(), *model = json_object_new_object();
    json_object *vocab = json_object_new_object(), *merges = json_object_new_array();
    json_object *added = json_object_new_array();
    for (uint64_t i = 0; i < tk->count; i++) {
        json_object_object_add(vocab, toks[i], json_object_new_int((int32_t)i));
        if (types[i] == 3) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "id", json_object_new_int((int32_t)i));
            json_object_object_add(a, "content", json_object_new_string(toks[i]));
            json_object_object_add(a, "single_word", json_object_new_boolean(0));
            json_object_object_add(a, "lstrip", json_object_new_boolean(0));
            json_object_object_add(a, "rstrip", json_object_new_boolean(0));
            json_object_object_add(a, "normalized", json_object_new_boolean(0));
            json_object_object_add(a, "special", json_object_new_boolean(1));
            json_object_array_add(added, a);
        }
    }
    for (uint64_t i = 0; i < mg->count; i++)
        json_object_array_add(merges, json_object_new_string(((const char *const *)mg->v.arr)[i]));
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", merges);
    json_object *pre = json_object_new_object(), *list = json_object_new_array();
    json_object *split = json_object_new_object(), *pat = json_object_new_object(), *bl = json_object_new_object();
    json_object_object_add(pat, "Regex", json_object_new_string("\\p{N}"));
    json_object_object_add(split, "type", json_object_new_string("Split"));
    json_object_object_add(split, "pattern", pat);
    json_object_object_add(split, "behavior", json_object_new_string("Isolated"));
    json_object_object_add(split, "invert", json_object_new_boolean(0));
    json_object_object_add(bl, "type", json_object_new_string("ByteLevel"));
    json_object_object_add(bl, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(bl, "trim_offsets", json_object_new_boolean(1));
    json_object_object_add(bl, "use_regex", json_object_new_boolean(1));
    json_object_array_add(list, split);
    json_object_array_add(list, bl);
    json_object_object_add(pre, "type", json_object_new_string("Sequence"));
    json_object_object_add(pre, "pretokenizers", list);
    json_object_object_add(root, "version", json_object_new_string("1.0"));
    json_object_object_add(root, "added_tokens", added);
    json_object_object_add(root, "normalizer", NULL);
    json_object_object_add(root, "pre_tokenizer", pre);
    json_object_object_add(root, "model", model);
    static char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc = json_object_to_file_ext(path, root, JSON_C_TO_STRING_PLAIN);
    json_object_put(root);
    json_object *cfg = json_object_new_object();
    json_object_object_add(cfg, "bos_token", json_object_new_string("<|im_start|>"));
    json_object_object_add(cfg, "eos_token", json_object_new_string("<|im_end|>"));
    json_object_object_add(cfg, "pad_token", json_object_new_string("<|im_end|>"));
    json_object_object_add(cfg, "add_bos_token", json_object_new_boolean(0));
    if (tmpl) json_object_object_add(cfg, "chat_template", json_object_new_string(tmpl));
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    rc |= json_object_to_file_ext(cpath, cfg, JSON_C_TO_STRING_PLAIN);
    json_object_put(cfg);
    return rc == 0 ? path : NULL;
}

static void remove_hf_dir(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s smollm2|spm|hf FIXDIR WIKI | pre NAME FIXDIR WIKI\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    const char *pre = NULL;
    int a = 2;
    if (!strcmp(mode, "pre")) pre = argv[a++];
    if (argc < a + 2) return 2;
    fixdir = argv[a];
    wiki_path = argv[a + 1];
    size_t wiki_len = 0;
    char *wiki = tt_read_file(wiki_path, &wiki_len);
    if (!wiki) {
        fprintf(stderr, "skip: WikiText not found at %s\n", wiki_path);
        return 77;
    }
    char mbuf[4096];
    const char *model = tt_find_model(mbuf, sizeof mbuf);
    loom_tokenizer *tok = NULL;
    const char *fix = NULL, *facts = NULL;
    if (!strcmp(mode, "spm")) {
        char path[4096];
        snprintf(path, sizeof path, "%s/spm-vocab.gguf", fixdir);
        tok = open_tok(path);
        fix = "spm.fix", facts = "spm";
    } else {
        if (!model) {
            fprintf(stderr, "skip: no model (set LOOM_TEST_MODEL)\n");
            free(wiki);
            return 77;
        }
        if (!strcmp(mode, "smollm2")) {
            tok = open_tok(model);
            fix = "smollm2.fix", facts = "smollm2";
        } else if (!strcmp(mode, "hf")) {
            loom_file *file = NULL;
            char err[512] = "", dir[256];
            CHECK_MSG(loom_file_open(model, &file, err, sizeof err) == LOOM_OK, "%s", err);
            const char *json = file ? write_hf_json(file, dir, sizeof dir) : NULL;
            CHECK_MSG(json != NULL, "could not write tokenizer.json");
            if (json) {
                loom_status st = loom_tokenizer_create_from_hf_json(json, &tok, err, sizeof err);
                CHECK_MSG(st == LOOM_OK, "%s", err);
                if (tok) {
                    CHECK(!strcmp(loom_tokenizer_pre(tok), "smollm"));
                    CHECK(loom_tokenizer_chat_template(tok) != NULL);
                }
                remove_hf_dir(dir);
            }
            loom_file_close(file);
            fix = "smollm2.fix", facts = "smollm2";
        } else if (pre) {
            loom_file *file = NULL;
            char err[512] = "";
            CHECK_MSG(loom_file_open(model, &file, err, sizeof err) == LOOM_OK, "%s", err);
            built_vocab b;
            if (file && build_variant(file, pre, &b)) {
                loom_status st = loom_tokenizer_create(&b.d, &tok, err, sizeof err);
                CHECK_MSG(st == LOOM_OK, "%s", err);
                free_variant(&b);
            }
            loom_file_close(file);
            static char fixname[256], factname[256];
            snprintf(fixname, sizeof fixname, "pre-%s.fix", pre);
            snprintf(factname, sizeof factname, "pre-%s", pre);
            fix = fixname, facts = factname;
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            free(wiki);
            return 2;
        }
    }
    if (tok) {
        check_facts(tok, facts);
        check_fixture(tok, fix, wiki, wiki_len);
        loom_tokenizer_free(tok);
    }
    free(wiki);
    if (tt_failures) fprintf(stderr, "%d check(s) failed\n", tt_failures);
    return tt_failures ? 1 : 0;
}
