/*
 * test_chat.c - loom_chat_apply against the chat templates rendered by Jinja2 as Hugging Face
 * renders them (fixtures/chat.json, written by scripts/tokenizer_reference.py): SmolLM2's own
 * template, Qwen2's and a plain ChatML, Llama-2 and Llama-3. Conversations Jinja refuses
 * (raise_exception) must fail in Loom too. Plus the error for unknown templates and the buffer
 * contract.
 */
#include "tok_test.h"

#include <json-c/json.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/chat.json", argv[1]);
    json_object *cases = json_object_from_file(path);
    if (!cases) {
        fprintf(stderr, "skip: %s missing\n", path);
        return 77;
    }
    size_t n = json_object_array_length(cases), ok = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cases, i), *v;
#define S(key) (json_object_object_get_ex(c, key, &v) ? json_object_get_string(v) : NULL)
        const char *name = S("name"), *tmpl = S("template"), *bos = S("bos"), *eos = S("eos");
        json_object *exp = NULL, *msgs = NULL, *gen = NULL;
        json_object_object_get_ex(c, "expected", &exp);
        json_object_object_get_ex(c, "messages", &msgs);
        json_object_object_get_ex(c, "add_generation_prompt", &gen);
#undef S
        size_t m = json_object_array_length(msgs);
        loom_chat_message cm[16];
        for (size_t k = 0; k < m && k < 16; k++) {
            json_object *pair = json_object_array_get_idx(msgs, k);
            cm[k] = (loom_chat_message){sizeof cm[k], 0, json_object_get_string(json_object_array_get_idx(pair, 0)),
                                        json_object_get_string(json_object_array_get_idx(pair, 1))};
        }
        char buf[4096], err[512] = "";
        size_t len = 0;
        loom_status st = loom_chat_apply(tmpl, bos, eos, cm, m, json_object_get_boolean(gen), buf, sizeof buf, &len,
                                         err, sizeof err);
        const char *want = exp && json_object_is_type(exp, json_type_string) ? json_object_get_string(exp) : NULL;
        bool good = want ? (st == LOOM_OK && len == strlen(want) && !strcmp(buf, want)) : st != LOOM_OK;
        if (!good) {
            tt_failures++;
            fprintf(stderr, "case %zu (%s, %zu messages, generation prompt %d): status %s %s\n  loom:  ", i, name, m,
                    json_object_get_boolean(gen), loom_status_string(st), err);
            tt_print_text(stderr, st ? "" : buf, st ? 0 : len);
            fprintf(stderr, "\n  jinja: ");
            if (want) tt_print_text(stderr, want, strlen(want));
            else fprintf(stderr, "(raises)");
            fputc('\n', stderr);
        } else {
            ok++;
        }
    }
    printf("chat: %zu of %zu conversations render as Jinja renders them\n", ok, n);
    json_object_put(cases);

    /* Families, unknown templates, NULL template (ChatML), the buffer contract. */
    CHECK(!strcmp(loom_chat_template_family(NULL), "chatml"));
    const char *gemma = "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
                        "{{ message['content'] }}<end_of_turn>\n{% endfor %}";
    CHECK(loom_chat_template_family(gemma) == NULL);
    loom_chat_message hi = {sizeof hi, 0, "user", "hi"};
    char buf[256], err[256] = "";
    size_t len = 0;
    CHECK(loom_chat_apply(gemma, "<bos>", "<eos>", &hi, 1, true, buf, sizeof buf, &len, err, sizeof err) ==
          LOOM_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err, "start_of_turn") != NULL, "the error names the template: %s", err);
    CHECK(loom_chat_apply(NULL, NULL, NULL, &hi, 1, true, buf, sizeof buf, &len, err, sizeof err) == LOOM_OK &&
          !strcmp(buf, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"));
    size_t need = len;
    CHECK(loom_chat_apply(NULL, NULL, NULL, &hi, 1, true, buf, need, &len, err, sizeof err) ==
              LOOM_ERR_BUFFER_TOO_SMALL &&
          len == need);
    CHECK(loom_chat_apply(NULL, NULL, NULL, &hi, 1, true, NULL, 0, &len, err, sizeof err) == LOOM_ERR_BUFFER_TOO_SMALL);
    loom_chat_message bad = {sizeof bad, 0, "user", NULL};
    CHECK(loom_chat_apply(NULL, NULL, NULL, &bad, 1, true, buf, sizeof buf, &len, err, sizeof err) ==
          LOOM_ERR_INVALID_ARGUMENT);
    CHECK(loom_chat_apply(NULL, NULL, NULL, NULL, 0, true, buf, sizeof buf, &len, err, sizeof err) == LOOM_OK &&
          !strcmp(buf, "<|im_start|>assistant\n"));
    if (tt_failures) fprintf(stderr, "%d check(s) failed\n", tt_failures);
    return tt_failures ? 1 : 0;
}
