/* chat.c - the Gemma 4 chat template, generation with streamed text, and an interactive chat
 * that keeps the KV cache between turns (spec 6; image/audio placement spec 2.4 and 3 item 4).
 *
 * Template (the checkpoint's chat_template.jinja, text/image/audio subset, no tools):
 *   <bos>
 *   if thinking or the first message is system/developer:
 *       <|turn>system\n [<|think|>\n if thinking] [system text, trimmed] <turn|>\n
 *   for each other message:
 *       <|turn>ROLE\n  (ROLE = model for "assistant"; omitted when this is an assistant message
 *                       right after another assistant message: the same model turn goes on)
 *       parts in order: text trimmed (model turns: earlier thoughts <|channel>...<channel|>
 *                       removed, then trimmed), an image as <|image> + N x <|image|> + <image|>,
 *                       audio as <|audio> + n x <|audio|> + <audio|> (the processor's expansion
 *                       of the template's single placeholder; no newlines around them)
 *       <turn|>\n
 *   generation prompt: <|turn>model\n, plus the empty thought channel <|channel>thought\n<channel|>
 *   when thinking is off.
 * Example (no system, thinking off):
 *   <bos><|turn>user\nHello<turn|>\n<|turn>model\n<|channel>thought\n<channel|>
 *
 * Token ids: the template's special tokens are looked up by piece in the vocabulary (so the
 * real Gemma 4 ids 2, 105, 106, 98, 100, 101, ... and the tiny model's both work) and inserted
 * as ids; the text between them is tokenized as one fragment with allow_special = 0, exactly as
 * the reference tokenizes the rendered string, except that control-token text typed by the user
 * stays text (no prompt injection of <|turn> and friends).
 *
 * Output g4_prompt: ids[n], mm_mask[n] (1 on the soft tokens, which take embedder rows), and for
 * each image / audio clip the [start, end) of its soft tokens as indices into ids; g4_generate
 * shifts them to absolute cache positions (images become the decoder's bidirectional blocks).
 *
 * Multi-turn with a kept KV cache (g4_chat_loop): the reply's stop token is not fed to the model,
 * so the next turn starts with "<turn|>\n" (closing the reply), then the user turn and the
 * generation prompt. The cache therefore holds the model's replies as generated, including the
 * empty (or, with thinking, the full) thought channel, where a re-render of the whole history
 * by the template would strip earlier thoughts; re-rendering would mean recomputing the cache.
 */
#include "g4.h"

#include <stdlib.h>
#include <string.h>

/* ---- the prompt buffer ------------------------------------------------------------------- */

void g4_prompt_free(g4_prompt *p)
{
    free(p->ids); free(p->mm_mask); free(p->images); free(p->audio);
    memset(p, 0, sizeof *p);
}

static int push_id(g4_prompt *p, int id, int mm, g4_err *err)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        int *ids = realloc(p->ids, (size_t)cap * sizeof *ids);
        if (!ids) return g4_fail(err, "chat: out of memory");
        p->ids = ids;
        uint8_t *mk = realloc(p->mm_mask, (size_t)cap);
        if (!mk) return g4_fail(err, "chat: out of memory");
        p->mm_mask = mk;
        p->cap = cap;
    }
    p->ids[p->n] = id;
    p->mm_mask[p->n] = (uint8_t)mm;
    p->n++;
    return 0;
}

static int push_block(g4_block **arr, int *n, int *cap, int start, int end, g4_err *err)
{
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 8;
        g4_block *b = realloc(*arr, (size_t)c * sizeof *b);
        if (!b) return g4_fail(err, "chat: out of memory");
        *arr = b; *cap = c;
    }
    (*arr)[*n].start = start;
    (*arr)[*n].end = end;
    (*n)++;
    return 0;
}

/* ---- ids ------------------------------------------------------------------------------------ */

int g4_chat_ids_get(const g4_tokenizer *t, g4_chat_ids *c, g4_err *err)
{
    c->bos = g4_tok_bos(t);
    c->eos = g4_tok_eos(t);
    c->turn_start = g4_tok_id(t, "<|turn>");
    c->turn_end = g4_tok_id(t, "<turn|>");
    c->nl = g4_tok_id(t, "\n");
    c->think = g4_tok_id(t, "<|think|>");
    c->chan_start = g4_tok_id(t, "<|channel>");
    c->chan_end = g4_tok_id(t, "<channel|>");
    c->tool_response = g4_tok_id(t, "<|tool_response>");
    c->boi = g4_tok_id(t, "<|image>");
    c->eoi = g4_tok_id(t, "<image|>");
    c->image = g4_tok_id(t, "<|image|>");
    c->boa = g4_tok_id(t, "<|audio>");
    c->eoa = g4_tok_id(t, "<audio|>");
    c->audio = g4_tok_id(t, "<|audio|>");
    if (c->bos < 0 || c->turn_start < 0 || c->turn_end < 0)
        return g4_fail(err, "%s: not a Gemma 4 chat vocabulary (no %s token)", g4_tok_source(t),
                       c->bos < 0 ? "<bos>" : c->turn_start < 0 ? "<|turn>" : "<turn|>");
    return 0;
}

int g4_chat_stop_ids(const g4_tokenizer *t, int *stop, int cap)
{
    int ids[3] = { g4_tok_eos(t), g4_tok_id(t, "<turn|>"), g4_tok_id(t, "<|tool_response>") }, n = 0;
    for (int i = 0; i < 3; i++) if (ids[i] >= 0 && n < cap) stop[n++] = ids[i];
    return n;
}

/* ---- text helpers --------------------------------------------------------------------------- */

/* Python's str.isspace() for the code point at s (n bytes left): the set Jinja's trim removes.
 * Returns the byte length of the whitespace character, 0 if s does not start with one. */
static int space_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n >= 1 && (u[0] == ' ' || (u[0] >= 0x09 && u[0] <= 0x0d) || (u[0] >= 0x1c && u[0] <= 0x1f))) return 1;
    if (n >= 2 && u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0)) return 2;             /* U+0085, U+00A0 */
    if (n >= 3 && u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80) return 3;                /* U+1680 */
    if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 && (u[2] <= 0x8a || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf))
        return 3;                                           /* U+2000..200A, U+2028, U+2029, U+202F */
    if (n >= 3 && u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f) return 3;                /* U+205F */
    if (n >= 3 && u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80) return 3;                /* U+3000 */
    return 0;
}

/* trim s[0..n) in place: returns the new start and sets *n */
static const char *trim(const char *s, size_t *n)
{
    size_t a = 0, b = *n;
    for (int l; a < b && (l = space_len(s + a, b - a)) > 0;) a += (size_t)l;
    /* from the end: try each possible width of a trailing whitespace character */
    for (int again = 1; again && b > a;) {
        again = 0;
        for (int w = 1; w <= 3 && (size_t)w <= b - a; w++)
            if (space_len(s + b - w, (size_t)w) == w) { b -= (size_t)w; again = 1; break; }
    }
    *n = b - a;
    return s + a;
}

/* growable byte buffer for the text between special tokens */
typedef struct { char *s; size_t n, cap; } sbuf;

static int sb_add(sbuf *b, const char *s, size_t n, g4_err *err)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return g4_fail(err, "chat: out of memory");
        b->s = p; b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

/* The template's strip_thinking: drop every "<|channel>...<channel|>" (and an unclosed
 * "<|channel>..." up to the next "<channel|>" or the end), then trim. */
static int add_model_text(sbuf *b, const char *s, size_t n, g4_err *err)
{
    sbuf tmp = {0};
    static const char OPEN[] = "<|channel>", CLOSE[] = "<channel|>";
    size_t i = 0;
    int rc = 0;
    while (i <= n && !rc) {
        /* part = s[i .. next CLOSE or end) */
        const char *c = NULL;
        for (size_t k = i; k + sizeof CLOSE - 1 <= n; k++)
            if (memcmp(s + k, CLOSE, sizeof CLOSE - 1) == 0) { c = s + k; break; }
        size_t pe = c ? (size_t)(c - s) : n;
        size_t keep = pe;
        for (size_t k = i; k + sizeof OPEN - 1 <= pe; k++)
            if (memcmp(s + k, OPEN, sizeof OPEN - 1) == 0) { keep = k; break; }
        rc = sb_add(&tmp, s + i, keep - i, err);
        if (!c) break;
        i = pe + sizeof CLOSE - 1;
    }
    if (!rc) {
        size_t tn = tmp.n;
        const char *ts = trim(tmp.s ? tmp.s : "", &tn);
        rc = sb_add(b, ts, tn, err);
    }
    free(tmp.s);
    return rc;
}

/* ---- building ------------------------------------------------------------------------------- */

typedef struct {
    const g4_tokenizer *t;
    g4_chat_ids id;
    g4_prompt *p;
    sbuf text;                 /* text waiting to be tokenized */
    g4_err *err;
} builder;

/* tokenize the pending text (no special tokens recognised) and append it */
static int flush(builder *b)
{
    if (!b->text.n) return 0;
    int *ids, n;
    if (g4_tokenize(b->t, b->text.s, b->text.n, 0, &ids, &n, b->err)) return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = push_id(b->p, ids[i], 0, b->err);
    free(ids);
    b->text.n = 0;
    return rc;
}

static int special(builder *b, int id, const char *what)
{
    if (id < 0) return g4_fail(b->err, "%s: the vocabulary has no %s token", g4_tok_source(b->t), what);
    return flush(b) || push_id(b->p, id, 0, b->err);
}

static int text(builder *b, const char *s) { return sb_add(&b->text, s, strlen(s), b->err); }

static int media(builder *b, const g4_chat_part *part)
{
    int img = part->kind == G4_PART_IMAGE;
    int begin = img ? b->id.boi : b->id.boa, soft = img ? b->id.image : b->id.audio, end = img ? b->id.eoi : b->id.eoa;
    const char *name = img ? "image" : "audio";
    if (part->n_soft < 1 || part->n_soft > (1 << 20))
        return g4_fail(b->err, "chat: an %s part needs 1..%d soft tokens, not %d", name, 1 << 20, part->n_soft);
    if (begin < 0 || soft < 0 || end < 0)
        return g4_fail(b->err, "%s: the vocabulary lacks the %s tokens (%s)", g4_tok_source(b->t), name,
                       img ? "<|image>, <|image|>, <image|>" : "<|audio>, <|audio|>, <audio|>");
    if (special(b, begin, name)) return -1;
    int start = b->p->n;
    for (int i = 0; i < part->n_soft; i++) if (push_id(b->p, soft, 1, b->err)) return -1;
    if (img ? push_block(&b->p->images, &b->p->n_images, &b->p->cap_img, start, b->p->n, b->err)
            : push_block(&b->p->audio, &b->p->n_audio, &b->p->cap_aud, start, b->p->n, b->err)) return -1;
    return special(b, end, name);
}

static int is_role(const char *r, const char *a) { return r && strcmp(r, a) == 0; }

int g4_chat_build(const g4_tokenizer *t, const g4_chat_msg *msgs, int n_msgs, const g4_chat_opts *o,
                  g4_prompt *p, g4_err *err)
{
    g4_chat_opts def = { 0, 1, 0 };
    if (!o) o = &def;
    builder b = { .t = t, .p = p, .err = err };
    if (g4_chat_ids_get(t, &b.id, err)) return -1;
    if (n_msgs < 0 || (n_msgs && !msgs)) return g4_fail(err, "chat: bad message list");
    int rc = 0, first = 0;
#define TRY(x) do { if ((rc = (x)) != 0) goto done; } while (0)
    if (!o->continuation) {
        TRY(special(&b, b.id.bos, "<bos>"));
        int has_sys = n_msgs > 0 && (is_role(msgs[0].role, "system") || is_role(msgs[0].role, "developer"));
        if (o->thinking || has_sys) {
            TRY(special(&b, b.id.turn_start, "<|turn>"));
            TRY(text(&b, "system\n"));
            if (o->thinking) { TRY(special(&b, b.id.think, "<|think|>")); TRY(text(&b, "\n")); }
            if (has_sys) {
                const g4_chat_msg *m = &msgs[0];
                for (int k = 0; k < m->n_parts; k++) {
                    const g4_chat_part *pt = &m->parts[k];
                    if (pt->kind != G4_PART_TEXT) { rc = g4_fail(err, "chat: a system message holds text only"); goto done; }
                    size_t n = pt->text ? strlen(pt->text) : 0;
                    const char *s = trim(pt->text ? pt->text : "", &n);
                    TRY(sb_add(&b.text, s, n, err));
                    if (m->n_parts > 1) TRY(text(&b, " "));   /* the template's list form: item|trim + ' ' */
                }
                first = 1;
            }
            TRY(special(&b, b.id.turn_end, "<turn|>"));
            TRY(text(&b, "\n"));
        }
    }
    for (int i = first; i < n_msgs; i++) {
        const g4_chat_msg *m = &msgs[i];
        if (!m->role || !m->role[0]) { rc = g4_fail(err, "chat: message %d has no role", i); goto done; }
        if (m->n_parts < 0 || (m->n_parts && !m->parts)) { rc = g4_fail(err, "chat: message %d has a bad part list", i); goto done; }
        int model = is_role(m->role, "assistant") || is_role(m->role, "model");
        const char *role = is_role(m->role, "assistant") ? "model" : m->role;
        /* an assistant message right after an assistant message continues the same model turn */
        int cont = is_role(m->role, "assistant") && i > 0 && is_role(msgs[i - 1].role, "assistant");
        if (!cont) {
            TRY(special(&b, b.id.turn_start, "<|turn>"));
            TRY(text(&b, role));
            TRY(text(&b, "\n"));
        }
        for (int k = 0; k < m->n_parts; k++) {
            const g4_chat_part *pt = &m->parts[k];
            if (pt->kind == G4_PART_TEXT) {
                const char *s0 = pt->text ? pt->text : "";
                size_t n = strlen(s0);
                if (model) TRY(add_model_text(&b.text, s0, n, err));
                else { const char *s = trim(s0, &n); TRY(sb_add(&b.text, s, n, err)); }
            } else if (pt->kind == G4_PART_IMAGE || pt->kind == G4_PART_AUDIO) {
                TRY(media(&b, pt));
            } else { rc = g4_fail(err, "chat: message %d part %d has an unknown kind %d", i, k, (int)pt->kind); goto done; }
        }
        TRY(special(&b, b.id.turn_end, "<turn|>"));
        TRY(text(&b, "\n"));
    }
    if (o->add_generation_prompt) {
        TRY(special(&b, b.id.turn_start, "<|turn>"));
        TRY(text(&b, "model\n"));
        if (!o->thinking) {
            TRY(special(&b, b.id.chan_start, "<|channel>"));
            TRY(text(&b, "thought\n"));
            TRY(special(&b, b.id.chan_end, "<channel|>"));
        }
    }
    TRY(flush(&b));
#undef TRY
done:
    free(b.text.s);
    return rc ? -1 : 0;
}

/* ---- generation -------------------------------------------------------------------------- */

static int is_stop(const g4_config *c, int id)
{
    for (int i = 0; i < c->n_stop; i++) if (c->stop[i] == id) return 1;
    return 0;
}

int g4_generate(g4_state *s, g4_sampler *smp, const g4_tokenizer *t, const g4_prompt *p,
                const float *mm, int n_max, FILE *out, g4_gen_stats *st, g4_err *err)
{
    const g4_config *c = &s->m->cfg;
    g4_gen_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    st->stop_id = -1;
    if (p->n < 1) return g4_fail(err, "generate: empty prompt");
    for (int i = 0; i < p->n; i++)
        if (p->ids[i] < 0 || p->ids[i] >= c->vocab)
            return g4_fail(err, "generate: prompt token %d (position %d) is outside the model's vocabulary of %d",
                           p->ids[i], i, c->vocab);
    if (s->pos + p->n + (n_max > 0 ? n_max - 1 : 0) > s->max_ctx)
        return g4_fail(err, "context full: %d cached + %d prompt + %d new tokens > context %d (raise --ctx)",
                       s->pos, p->n, n_max, s->max_ctx);
    int has_mm = 0;
    for (int i = 0; i < p->n; i++) has_mm |= p->mm_mask[i];
    if (has_mm && !mm) return g4_fail(err, "generate: the prompt has image/audio positions but no embedder rows");
    /* image blocks in absolute cache positions */
    g4_block *blocks = NULL;
    if (p->n_images) {
        blocks = malloc((size_t)p->n_images * sizeof *blocks);
        if (!blocks) return g4_fail(err, "generate: out of memory");
        for (int i = 0; i < p->n_images; i++) {
            blocks[i].start = p->images[i].start + s->pos;
            blocks[i].end = p->images[i].end + s->pos;
        }
    }
    g4_detok d;
    if (g4_detok_init(&d, t, 1, err)) { free(blocks); return -1; }
    float *lg = malloc((size_t)c->vocab * sizeof *lg);   /* [vocab] the sampler's copy */
    int rc = -1;
    if (!lg) { g4_fail(err, "generate: out of memory"); goto done; }
    double t0 = g4_now();
    if (g4_forward(s, p->ids, p->n, has_mm ? mm : NULL, has_mm ? p->mm_mask : NULL, blocks, p->n_images, err)) goto done;
    st->n_prompt = p->n;
    st->t_prefill = g4_now() - t0;
    t0 = g4_now();
    /* the last position's logits (a state with all_logits keeps one row per prompt position) */
    const float *last = s->all_logits ? s->logits + (size_t)(p->n - 1) * c->vocab : s->logits;
    const char *txt; size_t len;
    for (int i = 0; i < n_max; i++) {
        memcpy(lg, last, (size_t)c->vocab * sizeof *lg);
        int tok = g4_sample(smp, lg, c->suppress, c->n_suppress);
        st->n_gen++;
        if (is_stop(c, tok)) { st->stop_id = tok; break; }
        if (tok < g4_tok_n_vocab(t)) {           /* an id past the vocabulary prints nothing */
            if (g4_detok_push(&d, tok, &txt, &len, err)) goto done;
            if (out && len) { fwrite(txt, 1, len, out); fflush(out); }
        }
        if (i == n_max - 1) break;               /* the last sampled token is not fed */
        if (g4_forward(s, &tok, 1, NULL, NULL, NULL, 0, err)) goto done;
        last = s->logits;
    }
    g4_detok_flush(&d, &txt, &len);
    if (out && len) { fwrite(txt, 1, len, out); fflush(out); }
    st->t_decode = g4_now() - t0;
    rc = 0;
done:
    free(lg);
    free(blocks);
    g4_detok_free(&d);
    return rc;
}

/* ---- interactive chat ------------------------------------------------------------------------ */

/* read one line (without the newline) into a malloc'd buffer; NULL at EOF */
static char *read_line(FILE *in)
{
    size_t cap = 256, n = 0;
    char *s = malloc(cap);
    int ch;
    if (!s) return NULL;
    while ((ch = fgetc(in)) != EOF && ch != '\n') {
        if (n + 1 == cap) {
            char *q = realloc(s, cap * 2);
            if (!q) { free(s); return NULL; }
            s = q; cap *= 2;
        }
        s[n++] = (char)ch;
    }
    if (ch == EOF && n == 0) { free(s); return NULL; }
    if (n && s[n - 1] == '\r') n--;
    s[n] = 0;
    return s;
}

int g4_chat_loop(g4_state *s, g4_sampler *smp, const g4_tokenizer *t, const g4_chat_cfg *cfg,
                 FILE *in, FILE *out, g4_err *err)
{
    g4_chat_ids id;
    if (g4_chat_ids_get(t, &id, err)) return -1;
    int turn = 0, rc = 0;
    for (;;) {
        if (cfg->prompt && out) { fputs(cfg->prompt, out); fflush(out); }
        char *line = read_line(in);
        if (!line) break;
        size_t n = strlen(line);
        trim(line, &n);
        if (n == 0) { free(line); continue; }
        g4_chat_part part = { G4_PART_TEXT, line, 0 };
        g4_chat_part sys_part = { G4_PART_TEXT, cfg->system, 0 };
        g4_chat_msg msgs[2];
        int nm = 0;
        if (turn == 0 && cfg->system) msgs[nm++] = (g4_chat_msg){ "system", &sys_part, 1 };
        msgs[nm++] = (g4_chat_msg){ "user", &part, 1 };
        g4_chat_opts o = { cfg->thinking, 1, turn > 0 };
        g4_prompt p = {0};
        /* a later turn first closes the previous reply: its stop token was not fed */
        if (turn > 0 && (push_id(&p, id.turn_end, 0, err) || (id.nl >= 0 && push_id(&p, id.nl, 0, err)))) {
            free(line); g4_prompt_free(&p); rc = -1; break;
        }
        if (g4_chat_build(t, msgs, nm, &o, &p, err)) { free(line); g4_prompt_free(&p); rc = -1; break; }
        free(line);
        g4_gen_stats st;
        rc = g4_generate(s, smp, t, &p, NULL, cfg->n_max, out, &st, err);
        g4_prompt_free(&p);
        if (rc) break;
        if (out) { fputc('\n', out); fflush(out); }
        turn++;
    }
    return rc;
}
