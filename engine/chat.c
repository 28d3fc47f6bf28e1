/*
 * chat.c - chat templates. The model's Jinja template is not interpreted: its family is
 * recognised from marker strings and the conversation is rendered by hand-written code that
 * produces what the family's reference template (rendered by Jinja as Hugging Face does it)
 * produces. Families:
 *   chatml  <|im_start|>role\ncontent<|im_end|>\n ... (SmolLM2, Qwen2, ...); a default system
 *           message the template inserts when the conversation has none is taken from the
 *           template text.
 *   llama2  <s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] assistant </s> ... (Llama-2 chat)
 *   llama3  <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> ...
 * Anything else: LOOM_ERR_UNSUPPORTED naming the template.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *s, const char *t, size_t n) {
    if (s->oom || !n) return;
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n + 1) cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np) {
            s->oom = true;
            return;
        }
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->n, t, n);
    s->n += n;
    s->p[s->n] = '\0';
}

static void puts_(sbuf *s, const char *t) { put(s, t, t ? strlen(t) : 0); }

/* Jinja's str.strip() / trim: whitespace off both ends. */
static void put_trimmed(sbuf *s, const char *t) {
    if (!t) return;
    size_t a = 0, b = strlen(t);
    while (a < b && isspace((unsigned char)t[a])) a++;
    while (b > a && isspace((unsigned char)t[b - 1])) b--;
    put(s, t + a, b - a);
}

const char *loom_chat_template_family(const char *t) {
    if (!t) return "chatml";
    if (strstr(t, "<|im_start|>")) return "chatml";
    if (strstr(t, "[INST]") && strstr(t, "<<SYS>>")) return "llama2";
    if (strstr(t, "<|start_header_id|>") && strstr(t, "<|end_header_id|>") && !strstr(t, "Cutting Knowledge"))
        return "llama3";
    return NULL;
}

/* The default system message of a ChatML template: the literal the template prints when the
 * first message is not a system message, e.g.
 *   {% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are ...<|im_end|>\n' }}
 * Returns a malloc'd string or NULL. */
static char *chatml_default_system(const char *t) {
    const char *cond = strstr(t, "messages[0]['role'] != 'system'");
    if (!cond) cond = strstr(t, "messages[0][\"role\"] != \"system\"");
    if (!cond) cond = strstr(t, "messages[0].role != 'system'");
    if (!cond) return NULL;
    const char *endif = strstr(cond, "endif");
    const char *m = strstr(cond, "<|im_start|>system");
    if (!m || (endif && m > endif)) return NULL;
    m += strlen("<|im_start|>system");
    if (*m == '\n') m++;
    else if (m[0] == '\\' && m[1] == 'n') m += 2;
    else return NULL;
    const char *e = strstr(m, "<|im_end|>");
    if (!e || (endif && e > endif)) return NULL;
    char *out = malloc((size_t)(e - m) + 1);
    if (!out) return NULL;
    size_t n = 0;
    for (const char *p = m; p < e; p++) {
        if (*p == '\\' && p + 1 < e) {
            p++;
            switch (*p) {
            case 'n': out[n++] = '\n'; break;
            case 't': out[n++] = '\t'; break;
            case 'r': out[n++] = '\r'; break;
            default: out[n++] = *p; break; /* \' \" \\ */
            }
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

static loom_status render_chatml(const char *tmpl, const loom_chat_message *msgs, size_t n, bool add_assistant,
                                 sbuf *s) {
    if (tmpl && n > 0 && strcmp(msgs[0].role, "system")) {
        char *sys = chatml_default_system(tmpl);
        if (sys) {
            puts_(s, "<|im_start|>system\n");
            puts_(s, sys);
            puts_(s, "<|im_end|>\n");
            free(sys);
        }
    }
    for (size_t i = 0; i < n; i++) {
        puts_(s, "<|im_start|>");
        puts_(s, msgs[i].role);
        puts_(s, "\n");
        puts_(s, msgs[i].content);
        puts_(s, "<|im_end|>\n");
    }
    if (add_assistant) puts_(s, "<|im_start|>assistant\n");
    return LOOM_OK;
}

/* Meta's Llama-2 chat template: an optional leading system message goes into the first user
 * turn; user and assistant must alternate, starting with the user. */
static loom_status render_llama2(const loom_chat_message *msgs, size_t n, const char *bos, const char *eos, sbuf *s,
                                 char *err, size_t err_size) {
    const char *system = NULL;
    size_t first = 0;
    if (n > 0 && !strcmp(msgs[0].role, "system")) system = msgs[0].content, first = 1;
    for (size_t i = first; i < n; i++) {
        bool user_turn = (i - first) % 2 == 0;
        if (!strcmp(msgs[i].role, "user") != user_turn)
            return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT,
                            "chat: the llama2 template needs user and assistant messages to alternate, starting "
                            "with the user (message %zu is '%s')",
                            i, msgs[i].role);
        if (user_turn) {
            puts_(s, bos);
            puts_(s, "[INST] ");
            if (i == first && system) {
                sbuf c = {0};
                puts_(&c, "<<SYS>>\n");
                puts_(&c, system);
                puts_(&c, "\n<</SYS>>\n\n");
                puts_(&c, msgs[i].content);
                if (c.oom) s->oom = true;
                put_trimmed(s, c.p ? c.p : "");
                free(c.p);
            } else {
                put_trimmed(s, msgs[i].content);
            }
            puts_(s, " [/INST]");
        } else {
            puts_(s, " ");
            put_trimmed(s, msgs[i].content);
            puts_(s, " ");
            puts_(s, eos);
        }
    }
    return LOOM_OK;
}

static loom_status render_llama3(const loom_chat_message *msgs, size_t n, bool add_assistant, const char *bos,
                                 sbuf *s) {
    for (size_t i = 0; i < n; i++) {
        if (i == 0) puts_(s, bos);
        puts_(s, "<|start_header_id|>");
        puts_(s, msgs[i].role);
        puts_(s, "<|end_header_id|>\n\n");
        put_trimmed(s, msgs[i].content);
        puts_(s, "<|eot_id|>");
    }
    if (add_assistant) puts_(s, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return LOOM_OK;
}

loom_status loom_chat_apply(const char *template_text, const char *bos, const char *eos, const loom_chat_message *msgs,
                            size_t n, bool add_assistant, char *buf, size_t cap, size_t *len, char *err,
                            size_t err_size) {
    if (len) *len = 0;
    if (!len || (!msgs && n) || (!buf && cap))
        return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "chat: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "chat: message %zu has no %s", i,
                            msgs[i].role ? "content" : "role");
    const char *family = loom_chat_template_family(template_text);
    if (!family) {
        char head[64];
        size_t k = 0;
        for (const char *p = template_text; *p && k + 3 < sizeof head; p++) {
            if (*p == '\n') head[k++] = '\\', head[k++] = 'n';
            else head[k++] = *p;
        }
        head[k] = '\0';
        return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED,
                        "chat: template not recognised (Loom knows ChatML, Llama-2 [INST] and Llama-3 templates); "
                        "it starts with \"%s%s\"",
                        head, strlen(template_text) > k ? "..." : "");
    }
    if (!bos) bos = "";
    if (!eos) eos = "";
    sbuf s = {0};
    loom_status st;
    if (!strcmp(family, "chatml")) st = render_chatml(template_text, msgs, n, add_assistant, &s);
    else if (!strcmp(family, "llama2")) st = render_llama2(msgs, n, bos, eos, &s, err, err_size);
    else st = render_llama3(msgs, n, add_assistant, bos, &s);
    if (!st && s.oom) st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "chat: out of memory");
    if (!st) {
        *len = s.n;
        if (s.n + 1 > cap) {
            st = LOOM_ERR_BUFFER_TOO_SMALL;
            if (cap) {
                memcpy(buf, s.p ? s.p : "", cap - 1);
                buf[cap - 1] = '\0';
            }
        } else {
            if (s.n) memcpy(buf, s.p, s.n);
            buf[s.n] = '\0';
        }
    }
    free(s.p);
    return st;
}
