/*
 * cmd_tokenize.c - `loom tokenize -m MODEL [-p TEXT | -f FILE] [--ids|--pieces] [--json]
 * [--no-bos] [--special]`: text to token ids and pieces with the model's tokenizer. An
 * application of the public API only.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tokenize_usage(FILE *f) {
    fprintf(f,
            "usage: loom tokenize [-m MODEL] [-p TEXT | -f FILE] [--ids|--pieces] [--json] [--no-bos] [--special]\n"
            "  -m, --model MODEL  a .gguf file or a Hugging Face folder (default: $LOOM_MODEL or the cached\n"
            "                     SmolLM2 model)\n"
            "  -p, --prompt TEXT  the text to tokenize\n"
            "  -f, --file FILE    read the text from FILE ('-' for standard input; the default without -p)\n"
            "  --ids              print only the ids, as [1, 2, 3]\n"
            "  --pieces           print only the pieces, one per line\n"
            "  --json             JSON output: {\"n_tokens\": N, \"tokens\": [{\"id\": .., \"piece\": ..}, ..]}\n"
            "  --no-bos           do not add BOS/EOS even where the model asks for them\n"
            "  --special          turn special-token text such as <|im_start|> into its id\n"
            "Without --ids/--pieces every token is printed as its id and its piece. Bytes that are not\n"
            "valid UTF-8 on their own are shown as \\xNN (text) or replaced by U+FFFD with a \"hex\" field (JSON).\n");
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t min, cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq((const unsigned char *)s + i, n - i);
        if (!l) return false;
        i += l;
    }
    return true;
}

/* A piece for a terminal: quoted, escapes for control characters and stray bytes. */
static void print_piece_text(FILE *f, const char *s, size_t n) {
    fputc('\'', f);
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        size_t l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l > 1) {
            fwrite(s + i, 1, l, f);
            i += l;
            continue;
        }
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c == '\'') fputs("\\'", f);
        else if (c < 0x20 || c >= 0x7F) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
        i++;
    }
    fputc('\'', f);
}

/* A piece as a JSON string; invalid bytes become U+FFFD (the caller adds "hex"). */
static void print_piece_json(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        size_t l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l == 0) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (l > 1) {
            fwrite(s + i, 1, l, f);
            i += l;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

int loom_cmd_tokenize(int argc, char **argv) {
    loom_options *options = NULL;
    int rc = loom_cli_common_options(&argc, argv, &options);
    if (rc) return rc;
    const char *path = NULL, *prompt = NULL, *file = NULL;
    bool ids_only = false, pieces_only = false, json = false, bos = true, special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_next = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            loom_options_free(options);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_next) {
            path = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_next) {
            prompt = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_next) {
            file = argv[++i];
        } else if (!strcmp(a, "--ids")) {
            ids_only = true;
        } else if (!strcmp(a, "--pieces")) {
            pieces_only = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--no-bos")) {
            bos = false;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else {
            loom_cli_error("tokenize", "unexpected argument '%s'", a);
            tokenize_usage(stderr);
            loom_options_free(options);
            return 2;
        }
    }
    if ((prompt && file) || (ids_only && pieces_only)) {
        loom_cli_error("tokenize", "%s", prompt && file ? "give -p or -f, not both" : "give --ids or --pieces, not both");
        loom_options_free(options);
        return 2;
    }
    if (!path) path = loom_cli_default_model();
    if (!path) {
        loom_cli_error("tokenize", "no model given (-m MODEL; no $LOOM_MODEL or cached default model either)");
        loom_options_free(options);
        return 2;
    }
    /* The text. */
    char *text = NULL;
    size_t len = 0;
    if (prompt) {
        len = strlen(prompt);
        text = malloc(len + 1);
        if (text) memcpy(text, prompt, len + 1);
    } else {
        FILE *f = !file || !strcmp(file, "-") ? stdin : fopen(file, "rb");
        if (!f) {
            loom_cli_error("tokenize", "cannot open '%s'", file);
            loom_options_free(options);
            return 1;
        }
        text = read_all(f, &len);
        if (f != stdin) fclose(f);
    }
    if (!text) {
        loom_cli_error("tokenize", "out of memory");
        loom_options_free(options);
        return 1;
    }

    loom_engine *engine = loom_cli_engine(options);
    loom_options_free(options);
    if (!engine) {
        free(text);
        return 1;
    }
    loom_model *model = NULL;
    loom_status st = loom_model_load(engine, path, NULL, &model);
    if (st) {
        loom_cli_error("tokenize", "cannot load '%s': %s (%s)", path, loom_engine_last_error(engine),
                       loom_status_string(st));
        loom_engine_free(engine);
        free(text);
        return 1;
    }
    uint32_t flags = (bos ? LOOM_TOKENIZE_ADD_BOS : 0) | (special ? LOOM_TOKENIZE_PARSE_SPECIAL : 0);
    size_t n = 0, cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    st = ids ? loom_model_tokenize(model, text, len, flags, ids, cap, &n) : LOOM_ERR_OUT_OF_MEMORY;
    if (st == LOOM_ERR_BUFFER_TOO_SMALL) {
        int32_t *more = realloc(ids, n * sizeof *ids);
        if (more) {
            ids = more;
            cap = n;
            st = loom_model_tokenize(model, text, len, flags, ids, cap, &n);
        }
    }
    if (st) {
        loom_cli_error("tokenize", "%s (%s)", loom_model_last_error(model), loom_status_string(st));
        rc = 1;
        goto done;
    }
    char small[256];
    char *piece = small;
    size_t piece_cap = sizeof small;
    if (json) printf("{\"n_tokens\": %zu, \"tokens\": [", n);
    else if (ids_only) printf("[");
    for (size_t i = 0; i < n; i++) {
        size_t plen = 0;
        if (!ids_only) {
            st = loom_model_token_piece(model, ids[i], true, piece, piece_cap, &plen);
            if (st == LOOM_ERR_BUFFER_TOO_SMALL) {
                char *np = malloc(plen);
                if (np) {
                    if (piece != small) free(piece);
                    piece = np;
                    piece_cap = plen;
                    st = loom_model_token_piece(model, ids[i], true, piece, piece_cap, &plen);
                }
            }
            if (st) {
                loom_cli_error("tokenize", "no piece for token %d (%s)", ids[i], loom_status_string(st));
                rc = 1;
                break;
            }
        }
        if (json) {
            printf("%s{\"id\": %d", i ? ", " : "", ids[i]);
            if (!ids_only) {
                printf(", \"piece\": ");
                print_piece_json(stdout, piece, plen);
                if (!valid_utf8(piece, plen)) {
                    printf(", \"hex\": \"");
                    for (size_t k = 0; k < plen; k++) printf("%02x", (unsigned char)piece[k]);
                    printf("\"");
                }
            }
            printf("}");
        } else if (ids_only) {
            printf("%s%d", i ? ", " : "", ids[i]);
        } else if (pieces_only) {
            print_piece_text(stdout, piece, plen);
            putchar('\n');
        } else {
            printf("%6d ", ids[i]);
            print_piece_text(stdout, piece, plen);
            putchar('\n');
        }
    }
    if (json) printf("]}\n");
    else if (ids_only) printf("]\n");
    if (piece != small) free(piece);
    if (!json && !ids_only && !pieces_only) fprintf(stderr, "%zu tokens\n", n);
done:
    free(ids);
    free(text);
    loom_model_free(model);
    loom_engine_free(engine);
    return rc;
}
