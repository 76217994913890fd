/* test_config.c - ref/config.c: built-in shapes, parameter counts, config.json files written by
 * the installed transformers (tests/data/config/, made by tests/data/config/make.py, which also
 * prints what transformers derives from each: the expected values below), GGUF metadata built
 * here with the GGUF writer, and g4_config_check.
 *
 * Expected parameter counts: 12b = 11 907 350 320 (spec 1.7, from the tensor inventory);
 * tiny = 1 003 142 and the class-default config = 3 010 758 430, both counted by instantiating
 * transformers' Gemma4UnifiedTextModel on the meta device (parameters 1 003 136 / 3 010 758 400
 * plus the per-layer layer_scalar buffers, 6 / 30).
 * Run from the repository root.
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_DIR "tests/data/config"
static char tmpdir[64];

/* the multimodal fields (spec 2.4, 3); prints each difference */
static int same_mm(const g4_config *a, const g4_config *b, const char *what)
{
    int bad = 0;
#define F(f) if (a->f != b->f) { printf("    %s: " #f " %d vs %d\n", what, a->f, b->f); bad++; }
    F(boi) F(eoi) F(image_tok) F(boa) F(eoa) F(audio_tok) F(mm_dim) F(mm_posemb) F(audio_dim)
#undef F
    return bad == 0;
}

/* a config with no multimodal part: ids 0, sizes 0, nothing suppressed */
static void strip_mm(g4_config *c)
{
    c->boi = c->eoi = c->image_tok = c->boa = c->eoa = c->audio_tok = 0;
    c->mm_dim = c->mm_posemb = c->audio_dim = 0;
    c->n_suppress = 0;
}

/* field-by-field comparison of the text fields (names ignored); prints each difference */
static int same_config(const g4_config *a, const g4_config *b, const char *what)
{
    int bad = 0;
#define F(f, fmt) if (a->f != b->f) { printf("    %s: " #f " " fmt " vs " fmt "\n", what, a->f, b->f); bad++; }
    F(n_layers, "%d") F(d_model, "%d") F(d_ff, "%d") F(n_heads, "%d") F(n_kv_swa, "%d") F(n_kv_full, "%d")
    F(hd_swa, "%d") F(hd_full, "%d") F(vocab, "%d") F(window, "%d") F(rope_theta_swa, "%g")
    F(rope_theta_full, "%g") F(rope_partial_full, "%g") F(eps, "%g") F(softcap, "%g") F(k_eq_v, "%d")
    F(bos, "%d") F(eos, "%d") F(pad, "%d") F(n_stop, "%d") F(n_suppress, "%d")
#undef F
    for (int l = 0; l < G4_MAX_LAYERS; l++)
        if (a->is_global[l] != b->is_global[l]) { printf("    %s: is_global[%d] differs\n", what, l); bad++; }
    for (int k = 0; k < a->n_stop && k < b->n_stop; k++)
        if (a->stop[k] != b->stop[k]) { printf("    %s: stop[%d] %d vs %d\n", what, k, a->stop[k], b->stop[k]); bad++; }
    for (int k = 0; k < a->n_suppress && k < b->n_suppress; k++)
        if (a->suppress[k] != b->suppress[k]) { printf("    %s: suppress[%d] differs\n", what, k); bad++; }
    return bad == 0;
}

static void test_builtins(void)
{
    g4_config c;
    g4_err e = {{0}};
    CHECK(g4_config_builtin("12b", &c) == 0, "12b exists");
    CHECK(strcmp(c.name, "12b") == 0, "name");
    CHECK(c.n_layers == 48 && c.d_model == 3840 && c.d_ff == 15360 && c.n_heads == 16, "12b sizes");
    CHECK(c.n_kv_swa == 8 && c.n_kv_full == 1 && c.hd_swa == 256 && c.hd_full == 512, "12b heads");
    CHECK(c.vocab == 262144 && c.window == 1024, "12b vocab/window");
    CHECK(c.rope_theta_swa == 1e4f && c.rope_theta_full == 1e6f && c.rope_partial_full == 0.25f, "12b rope");
    CHECK(c.eps == 1e-6f && c.softcap == 30.0f && c.k_eq_v == 1, "12b eps/softcap/k_eq_v");
    CHECK(c.bos == 2 && c.eos == 1 && c.pad == 0, "12b ids");
    CHECK(c.n_stop == 3 && c.stop[0] == 1 && c.stop[1] == 106 && c.stop[2] == 50, "12b stop");
    CHECK(c.n_suppress == 2 && c.suppress[0] == 258883 && c.suppress[1] == 258882, "12b suppress");
    CHECK(c.boi == 255999 && c.eoi == 258882 && c.image_tok == 258880, "12b image ids (spec 2.4)");
    CHECK(c.boa == 256000 && c.eoa == 258883 && c.audio_tok == 258881, "12b audio ids (spec 3)");
    CHECK(c.mm_dim == 3840 && c.mm_posemb == 1120 && c.audio_dim == 640, "12b embedder sizes");
    int ng = 0, pattern_ok = 1;
    for (int l = 0; l < G4_MAX_LAYERS; l++) {
        ng += c.is_global[l];
        if (l < 48 && c.is_global[l] != ((l + 1) % 6 == 0)) pattern_ok = 0;
    }
    CHECK(ng == 8 && pattern_ok && c.is_global[5] && c.is_global[47], "12b global layers 5, 11, ..., 47");
    CHECK(g4_hd(&c, 5) == 512 && g4_hd(&c, 4) == 256 && g4_nkv(&c, 5) == 1 && g4_nkv(&c, 0) == 8, "12b per-layer helpers");
    CHECK(g4_config_check(&c, &e) == 0, "12b passes check: %s", e.msg);
    int64_t np = g4_config_nparams(&c);
    printf("    12b text params %lld (spec 1.7: 11907350320)\n", (long long)np);
    CHECK(np == 11907350320LL, "12b nparams %lld", (long long)np);
    CHECK(np - (int64_t)c.vocab * c.d_model == 10900717360LL, "12b non-embedding params (spec 1.7)");

    CHECK(g4_config_builtin("tiny", &c) == 0, "tiny exists");
    CHECK(c.n_layers == 6 && c.d_model == 128 && c.d_ff == 256 && c.n_heads == 4, "tiny sizes");
    CHECK(c.n_kv_swa == 2 && c.n_kv_full == 1 && c.hd_swa == 32 && c.hd_full == 64, "tiny heads");
    CHECK(c.vocab == 512 && c.window == 8, "tiny vocab/window");
    CHECK(c.rope_theta_swa == 1e4f && c.rope_theta_full == 1e6f && c.rope_partial_full == 0.25f, "tiny rope");
    CHECK(c.eps == 1e-6f && c.softcap == 30.0f && c.k_eq_v == 1, "tiny eps/softcap/k_eq_v");
    CHECK(c.bos == 2 && c.eos == 1 && c.pad == 0, "tiny ids");
    CHECK(c.n_stop == 3 && c.stop[0] == 1 && c.stop[1] == 106 && c.stop[2] == 50, "tiny stop");
    CHECK(c.n_suppress == 2 && c.suppress[0] == 505 && c.suppress[1] == 504, "tiny suppresses <audio|> 505, <image|> 504");
    CHECK(c.boi == 500 && c.boa == 501 && c.image_tok == 502 && c.audio_tok == 503 && c.eoi == 504 && c.eoa == 505,
          "tiny multimodal ids");
    CHECK(c.mm_dim == 96 && c.mm_dim != c.d_model && c.mm_posemb == 64 && c.audio_dim == 640, "tiny embedder sizes");
    ng = 0;
    for (int l = 0; l < G4_MAX_LAYERS; l++) ng += c.is_global[l];
    CHECK(ng == 2 && c.is_global[2] && c.is_global[5], "tiny global layers 2 and 5");
    CHECK(g4_config_check(&c, &e) == 0, "tiny passes check: %s", e.msg);
    np = g4_config_nparams(&c);
    printf("    tiny text params %lld (transformers: 1003136 + 6 layer scalars)\n", (long long)np);
    CHECK(np == 1003142, "tiny nparams %lld", (long long)np);

    CHECK(g4_config_builtin("13b", &c) == -1, "unknown builtin");
    CHECK(g4_config_builtin(NULL, &c) == -1, "NULL builtin");
}

/* text_only: the file has no vision/audio part (compare against the builtin without it) */
static void from_json_equals(const char *dir, const char *builtin, int text_only)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s/config.json", CFG_DIR, dir);
    g4_config c, want;
    g4_err e = {{0}};
    int rc = g4_config_from_json(path, &c, &e);
    CHECK(rc == 0, "%s: %s", path, e.msg);
    if (rc) return;
    g4_config_builtin(builtin, &want);
    if (text_only) strip_mm(&want);
    CHECK(same_config(&c, &want, path), "%s equals builtin %s", path, builtin);
    CHECK(same_mm(&c, &want, path), "%s: multimodal fields equal builtin %s%s", path, builtin,
          text_only ? " without vision/audio" : "");
    CHECK(strcmp(c.name, "file") == 0, "name 'file'");
    CHECK(g4_config_check(&c, &e) == 0, "%s passes check: %s", path, e.msg);
}

static void test_from_json(void)
{
    from_json_equals("tiny", "tiny", 0);     /* composite, per_layer_config, tiny ids, vision+audio */
    from_json_equals("tiny_text", "tiny", 1);   /* bare text config */
    from_json_equals("tiny_textonly", "tiny", 1); /* composite, vision/audio null, 12b ids beyond the vocab */
    from_json_equals("12b", "12b", 0);       /* composite, eos [1,106], suppress from eoa/eoi */
    from_json_equals("12b_hub", "12b", 0);   /* global_head_dim form + generation_config.json */
    /* the text goldens' config (text only, like tiny_textonly) */
    {
        g4_config c, want;
        g4_err e = {{0}};
        g4_config_builtin("tiny", &want);
        strip_mm(&want);
        CHECK(g4_config_from_json("golden/tiny/config.json", &c, &e) == 0, "golden/tiny: %s", e.msg);
        CHECK(same_config(&c, &want, "golden/tiny") && same_mm(&c, &want, "golden/tiny"), "golden/tiny/config.json");
    }

    /* generation_config.json beside config.json: eos ids join the stop list, suppress replaces */
    g4_config c;
    g4_err e = {{0}};
    CHECK(g4_config_from_json(CFG_DIR "/tiny_gen/config.json", &c, &e) == 0, "tiny_gen: %s", e.msg);
    CHECK(c.n_stop == 4 && c.stop[0] == 1 && c.stop[1] == 106 && c.stop[2] == 50 && c.stop[3] == 3,
          "tiny_gen stop ids (n %d)", c.n_stop);
    CHECK(c.n_suppress == 2 && c.suppress[0] == 5 && c.suppress[1] == 7, "tiny_gen suppress (n %d)", c.n_suppress);

    /* eoa_token_id (not eoa_token_index) is accepted; ids of an absent modality inside the vocab stay */
    {
        char d[128], p[192];
        snprintf(d, sizeof d, "%s/eoa", tmpdir);
        mkdir(d, 0755);
        snprintf(p, sizeof p, "%s/config.json", d);
        FILE *f = fopen(p, "wb");
        fputs("{\"model_type\":\"gemma4_unified\",\"text_config\":{\"vocab_size\":512},\"boa_token_id\":7,"
              "\"eoa_token_id\":9,\"audio_token_id\":8,\"boi_token_id\":10,\"eoi_token_id\":11,\"image_token_id\":12,"
              "\"audio_config\":{\"audio_embed_dim\":640},\"vision_config\":null}", f);
        fclose(f);
        int rc = g4_config_from_json(p, &c, &e);
        CHECK(rc == 0 && c.eoa == 9 && c.boa == 7 && c.audio_tok == 8 && c.audio_dim == 640 && c.mm_dim == 0 &&
              c.mm_posemb == 0 && c.boi == 10 && c.eoi == 11 && c.image_tok == 12,
              "eoa_token_id alias, audio only: %s", rc ? e.msg : "");
        CHECK(rc == 0 && c.n_suppress == 2 && c.suppress[0] == 9 && c.suppress[1] == 11, "suppress {eoa, eoi}");
        CHECK(rc == 0 && g4_config_check(&c, &e) == 0, "audio-only config passes check: %s", e.msg);
        unlink(p);
        rmdir(d);
    }

    /* {"model_type": "gemma4_unified_text"}: the class defaults, as transformers derives them */
    CHECK(g4_config_from_json(CFG_DIR "/defaults/config.json", &c, &e) == 0, "defaults: %s", e.msg);
    CHECK(c.n_layers == 30 && c.d_model == 2304 && c.d_ff == 9216 && c.n_heads == 8, "default sizes");
    CHECK(c.n_kv_swa == 4 && c.n_kv_full == 4 && c.hd_swa == 256 && c.hd_full == 512, "default heads (K=V off)");
    CHECK(c.vocab == 262144 && c.window == 1024 && c.k_eq_v == 0 && c.softcap == 0.0f, "default vocab/window/kv/cap");
    CHECK(c.rope_theta_swa == 1e4f && c.rope_theta_full == 1e6f && c.rope_partial_full == 0.25f && c.eps == 1e-6f,
          "default rope/eps");
    int ng = 0;
    for (int l = 0; l < 30; l++) ng += c.is_global[l];
    CHECK(ng == 5 && c.is_global[5] && c.is_global[29] && !c.is_global[28], "default pattern: 5, 11, ..., 29");
    CHECK(c.n_suppress == 0 && c.n_stop == 3, "defaults: no suppress, stop {1,106,50}");
    CHECK(c.mm_dim == 0 && c.audio_dim == 0 && c.boi == 0 && c.image_tok == 0 && c.audio_tok == 0,
          "bare text config: no multimodal part");
    CHECK(g4_config_nparams(&c) == 3010758430LL, "default nparams %lld", (long long)g4_config_nparams(&c));
}

/* write `text` to tmpdir/<name>/config.json and expect from_json to fail naming the file */
static void json_rejects(const char *name, const char *text, const char *want)
{
    char d[128], p[192];
    snprintf(d, sizeof d, "%s/%s", tmpdir, name);
    mkdir(d, 0755);
    snprintf(p, sizeof p, "%s/config.json", d);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    g4_config c;
    g4_err e = {{0}};
    int rc = g4_config_from_json(p, &c, &e);
    CHECK(rc != 0 && strstr(e.msg, p) && strstr(e.msg, want), "%s must fail with '%s': got %s", name, want,
          rc ? e.msg : "(accepted)");
    unlink(p);
    rmdir(d);
}

static void test_json_errors(void)
{
    const char *T = "{\"model_type\":\"gemma4_unified_text\",";
    char b[1024];
    json_rejects("j1", "{\"model_type\": ", "json: ");
    json_rejects("j2", "{\"model_type\": \"llama\"}", "model_type is llama");
    json_rejects("j3", "{\"hidden_size\": 5}", "model_type is (none)");
    json_rejects("j4", "[1]", "not a JSON object");
    json_rejects("j5", "{\"model_type\":\"gemma4_unified\",\"text_config\":5}", "text_config must be an object");
    snprintf(b, sizeof b, "%s\"hidden_size\":\"big\"}", T);   json_rejects("j6", b, "hidden_size must be an integer");
    snprintf(b, sizeof b, "%s\"hidden_size\":-3}", T);        json_rejects("j7", b, "hidden_size");
    snprintf(b, sizeof b, "%s\"head_dim\":2.5}", T);          json_rejects("j8", b, "head_dim");
    snprintf(b, sizeof b, "%s\"num_hidden_layers\":65}", T);  json_rejects("j9", b, "exceeds the maximum of 64");
    snprintf(b, sizeof b, "%s\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\"]}", T);
    json_rejects("j10", b, "layer_types must list 2");
    snprintf(b, sizeof b, "%s\"num_hidden_layers\":2,\"layer_types\":[\"chunked\",\"full_attention\"]}", T);
    json_rejects("j11", b, "layer_types[0]");
    snprintf(b, sizeof b, "%s\"num_hidden_layers\":3,\"layer_types\":[\"sliding_attention\",\"sliding_attention\",\"full_attention\"],"
             "\"per_layer_config\":{\"0\":{\"head_dim\":64}}}", T);
    json_rejects("j12", b, "vary among sliding_attention");
    snprintf(b, sizeof b, "%s\"per_layer_config\":{\"99\":{\"head_dim\":64}}}", T);
    json_rejects("j13", b, "per_layer_config key '99'");
    snprintf(b, sizeof b, "%s\"per_layer_config\":{\"5\":{\"intermediate_size\":64}}}", T);
    json_rejects("j14", b, "per_layer_config.5.intermediate_size is unsupported");
    snprintf(b, sizeof b, "%s\"rope_parameters\":{\"sliding_attention\":{\"rope_theta\":10000.0},"
             "\"full_attention\":{\"rope_type\":\"yarn\",\"rope_theta\":1e6}}}", T);
    json_rejects("j15", b, "rope_type 'yarn' is unsupported");
    snprintf(b, sizeof b, "%s\"rope_parameters\":{\"sliding_attention\":{\"rope_theta\":10000.0},"
             "\"full_attention\":{\"rope_type\":\"proportional\",\"rope_theta\":1e6,\"factor\":8.0}}}", T);
    json_rejects("j16", b, "RoPE scaling is unsupported");
    snprintf(b, sizeof b, "%s\"rope_parameters\":{\"full_attention\":{\"rope_theta\":1e6}}}", T);
    json_rejects("j17", b, "no sliding_attention object");
    snprintf(b, sizeof b, "%s\"rope_parameters\":{\"sliding_attention\":{\"rope_theta\":10000.0,\"partial_rotary_factor\":0.5},"
             "\"full_attention\":{\"rope_theta\":1e6}}}", T);
    json_rejects("j18", b, "partial_rotary_factor 0.5");
    snprintf(b, sizeof b, "%s\"hidden_activation\":\"gelu\"}", T);        json_rejects("j19", b, "gelu_pytorch_tanh");
    snprintf(b, sizeof b, "%s\"num_kv_shared_layers\":4}", T);           json_rejects("j20", b, "KV sharing");
    snprintf(b, sizeof b, "%s\"use_bidirectional_attention\":\"all\"}", T); json_rejects("j21", b, "\"all\"");
    snprintf(b, sizeof b, "%s\"enable_moe_block\":true}", T);            json_rejects("j22", b, "enable_moe_block");
    snprintf(b, sizeof b, "%s\"tie_word_embeddings\":false}", T);        json_rejects("j23", b, "tie_word_embeddings");
    snprintf(b, sizeof b, "%s\"eos_token_id\":\"one\"}", T);             json_rejects("j24", b, "eos_token_id");
    snprintf(b, sizeof b, "%s\"vocab_size\":100,\"eos_token_id\":[1,106]}", T);
    json_rejects("j25", b, "stop id 106 outside the vocab of 100");
    snprintf(b, sizeof b, "%s\"attention_k_eq_v\":1}", T);               json_rejects("j26", b, "true or false");

    /* multimodal parts of a composite config */
    const char *U = "{\"model_type\":\"gemma4_unified\",\"text_config\":{\"vocab_size\":512},";
    snprintf(b, sizeof b, "%s\"vision_config\":{\"mm_embed_dim\":96,\"output_proj_dims\":128}}", U);
    json_rejects("m1", b, "output_proj_dims 128 != mm_embed_dim 96");
    snprintf(b, sizeof b, "%s\"vision_config\":{\"patch_size\":14}}", U);
    json_rejects("m2", b, "model patches of 42");
    snprintf(b, sizeof b, "%s\"vision_config\":{\"model_patch_size\":32}}", U);
    json_rejects("m3", b, "model_patch_size 32");
    snprintf(b, sizeof b, "%s\"vision_config\":{}}", U);      /* default ids 255999.. beyond 512 */
    json_rejects("m4", b, "boi_token_id 255999 outside the vocab of 512");
    snprintf(b, sizeof b, "%s\"boa_token_id\":1,\"eoa_token_index\":3,\"audio_token_id\":4,"
             "\"audio_config\":{\"audio_embed_dim\":320}}", U);
    json_rejects("m5", b, "audio_embed_dim 320");
    snprintf(b, sizeof b, "%s\"vision_config\":7}", U);        json_rejects("m6", b, "vision_config must be an object");
    snprintf(b, sizeof b, "%s\"audio_config\":[1]}", U);       json_rejects("m7", b, "audio_config must be an object");
    snprintf(b, sizeof b, "%s\"boi_token_id\":1,\"eoi_token_id\":3,\"image_token_id\":4,"
             "\"vision_config\":{\"rms_norm_eps\":1e-5}}", U);
    json_rejects("m8", b, "vision_config.rms_norm_eps");
    snprintf(b, sizeof b, "%s\"image_token_id\":-4}", U);      json_rejects("m9", b, "image_token_id must be an integer");
    snprintf(b, sizeof b, "%s\"boi_token_id\":1,\"eoi_token_id\":3,\"image_token_id\":4,"
             "\"vision_config\":{\"mm_embed_dim\":0}}", U);
    json_rejects("m10", b, "mm_embed_dim must be an integer >= 1");

    /* a missing file */
    g4_config c;
    g4_err e = {{0}};
    CHECK(g4_config_from_json("/nonexistent/config.json", &c, &e) != 0 && strstr(e.msg, "/nonexistent/config.json"),
          "missing file: %s", e.msg);
    /* a broken generation_config.json beside a good config is reported with its own path */
    char d[128], p[192], g[192];
    snprintf(d, sizeof d, "%s/gen", tmpdir);
    mkdir(d, 0755);
    snprintf(p, sizeof p, "%s/config.json", d);
    snprintf(g, sizeof g, "%s/generation_config.json", d);
    FILE *f = fopen(p, "wb"); fputs("{\"model_type\":\"gemma4_unified_text\",\"vocab_size\":512}", f); fclose(f);
    f = fopen(g, "wb"); fputs("{\"suppress_tokens\": [600]}", f); fclose(f);
    CHECK(g4_config_from_json(p, &c, &e) != 0 && strstr(e.msg, g) && strstr(e.msg, "600"), "suppress beyond vocab: %s", e.msg);
    f = fopen(g, "wb"); fputs("{\"suppress_tokens\": [1,", f); fclose(f);
    CHECK(g4_config_from_json(p, &c, &e) != 0 && strstr(e.msg, g) && strstr(e.msg, "json: "), "broken gen config: %s", e.msg);
    unlink(p); unlink(g); rmdir(d);
}

static void test_check(void)
{
    g4_config base, c;
    g4_config_builtin("tiny", &base);
    g4_err e = {{0}};
#define BADCFG(stmt, want) do { c = base; stmt; memset(&e, 0, sizeof e); \
        CHECK(g4_config_check(&c, &e) != 0 && strstr(e.msg, "config tiny: ") && strstr(e.msg, want), \
              "%s -> '%s' (got '%s')", #stmt, want, e.msg); } while (0)
    BADCFG(c.n_layers = 0, "n_layers");
    BADCFG(c.n_layers = G4_MAX_LAYERS + 1, "n_layers");
    BADCFG(c.d_model = 0, "d_model");
    BADCFG(c.d_ff = -1, "d_ff");
    BADCFG(c.n_heads = 0, "n_heads");
    BADCFG(c.n_kv_swa = 3, "n_kv_swa");
    BADCFG(c.n_kv_full = 0, "n_kv_full");
    BADCFG(c.hd_swa = 31, "hd_swa");
    BADCFG(c.hd_full = 0, "hd_full");
    BADCFG(c.vocab = 0, "vocab");
    BADCFG(c.window = 0, "window");
    BADCFG(c.rope_theta_swa = NAN, "rope_theta_swa");
    BADCFG(c.rope_theta_full = 0, "rope_theta_full");
    BADCFG(c.rope_partial_full = 0, "rope_partial_full");
    BADCFG(c.rope_partial_full = 1.5f, "rope_partial_full");
    BADCFG(c.eps = 0, "eps");
    BADCFG(c.eps = NAN, "eps");
    BADCFG(c.softcap = -1, "softcap");
    BADCFG(c.softcap = INFINITY, "softcap");
    BADCFG(c.k_eq_v = 2, "k_eq_v");
    BADCFG(c.is_global[1] = 2, "is_global[1]");
    BADCFG(c.bos = 512, "bos");
    BADCFG(c.eos = -1, "eos");
    BADCFG(c.pad = 9999, "pad");
    BADCFG(c.n_stop = 9, "n_stop");
    BADCFG(c.stop[1] = 600, "stop id 600");
    BADCFG((c.n_suppress = 1, c.suppress[0] = 512), "suppressed id 512");
    BADCFG(c.n_suppress = G4_MAX_SUPPRESS + 1, "n_suppress");
    BADCFG(c.boi = 512, "boi id 512");
    BADCFG(c.audio_tok = -1, "audio_tok id -1");
    BADCFG(c.mm_dim = -1, "mm_dim");
    BADCFG(c.mm_posemb = 0, "mm_posemb 0 must both be set");
    BADCFG(c.audio_dim = 320, "audio_dim 320");
    BADCFG(c.eoi = c.boi, "boi and eoi are the same id 500");
    BADCFG(c.audio_tok = c.image_tok, "image_tok and audio_tok are the same id 502");
#undef BADCFG
    c = base;
    CHECK(g4_config_check(&c, &e) == 0, "unchanged tiny passes");
    /* a text GGUF without token strings + an mmproj: sizes set, ids absent -> still valid */
    c = base;
    c.boi = c.eoi = c.image_tok = c.boa = c.eoa = c.audio_tok = 0;
    CHECK(g4_config_check(&c, &e) == 0, "sizes without ids pass: %s", e.msg);
}

/* ---- GGUF ---------------------------------------------------------------------------------- */

typedef struct {
    const char *arch;          /* NULL: no general.architecture */
    int kv_scalar;             /* head_count_kv as one value (n_kv_swa) */
    int rope_ones;             /* -1: no rope_freqs.weight; else the count of leading 1.0 entries */
    int rope_bad;              /* a 1.0 after a large entry */
    int v_global;              /* attn_v on global layers: 0 none, 1 all, 2 only the first */
    int no_block_count;
    int pattern_extra;         /* entries added to sliding_window_pattern */
    int vary_kv;               /* sliding layer 0 gets a different KV head count */
    int n_tokens;              /* > 0: write tokenizer.ggml.tokens and no token_embd */
    int eot;                   /* >= 0: tokenizer.ggml.eot_token_id */
    int n_sup; int sup[4];     /* tokenizer.ggml.suppress_tokens */
    int use_model_writer;      /* metadata from model.c's g4_config_write_gguf instead */
    int mm_strings;            /* name tokens 500..505 like the tiny multimodal ids */
} gopt;

/* build a GGUF for config c with the writer; returns from_gguf's rc */
static int gguf_config(const g4_config *c, const gopt *o, g4_config *out, g4_err *e, char *path_out)
{
    static int serial;
    char path[160];
    snprintf(path, sizeof path, "%s/c%d.gguf", tmpdir, serial++);
    if (path_out) strcpy(path_out, path);
    int L = c->n_layers;
    g4_gguf_writer *w = g4_gguf_writer_new();
    if (o->use_model_writer) {
        g4_config_write_gguf(w, c);
        g4_config_write_gguf_ids(w, c);
    } else {
        if (o->arch) g4_gguf_add_str(w, "general.architecture", o->arch);
        if (!o->no_block_count) g4_gguf_add_u32(w, "gemma4.block_count", (uint32_t)L);
        g4_gguf_add_u32(w, "gemma4.context_length", 262144);
        g4_gguf_add_u32(w, "gemma4.embedding_length", (uint32_t)c->d_model);
        g4_gguf_add_u32(w, "gemma4.embedding_length_per_layer_input", 0);
        g4_gguf_add_u32(w, "gemma4.feed_forward_length", (uint32_t)c->d_ff);
        g4_gguf_add_u32(w, "gemma4.attention.head_count", (uint32_t)c->n_heads);
        int32_t kv[G4_MAX_LAYERS];
        uint8_t swa[G4_MAX_LAYERS + 4];
        for (int l = 0; l < L; l++) { kv[l] = c->is_global[l] ? c->n_kv_full : c->n_kv_swa; swa[l] = !c->is_global[l]; }
        for (int k = 0; k < 4; k++) swa[L + k] = 1;
        if (o->vary_kv) kv[0] = c->n_kv_swa * 2;
        if (o->kv_scalar) g4_gguf_add_u32(w, "gemma4.attention.head_count_kv", (uint32_t)c->n_kv_swa);
        else g4_gguf_add_arr(w, "gemma4.attention.head_count_kv", G4_GGUF_I32, kv, (uint64_t)L);
        g4_gguf_add_u32(w, "gemma4.attention.key_length", (uint32_t)c->hd_full);
        g4_gguf_add_u32(w, "gemma4.attention.value_length", (uint32_t)c->hd_full);
        g4_gguf_add_u32(w, "gemma4.attention.key_length_swa", (uint32_t)c->hd_swa);
        g4_gguf_add_u32(w, "gemma4.attention.value_length_swa", (uint32_t)c->hd_swa);
        g4_gguf_add_f32(w, "gemma4.attention.layer_norm_rms_epsilon", c->eps);
        g4_gguf_add_u32(w, "gemma4.attention.shared_kv_layers", 0);
        g4_gguf_add_u32(w, "gemma4.attention.sliding_window", (uint32_t)c->window);
        g4_gguf_add_arr(w, "gemma4.attention.sliding_window_pattern", G4_GGUF_BOOL, swa, (uint64_t)(L + o->pattern_extra));
        g4_gguf_add_f32(w, "gemma4.final_logit_softcapping", c->softcap);
        g4_gguf_add_u32(w, "gemma4.rope.dimension_count", (uint32_t)c->hd_full);
        g4_gguf_add_u32(w, "gemma4.rope.dimension_count_swa", (uint32_t)c->hd_swa);
        g4_gguf_add_f32(w, "gemma4.rope.freq_base", c->rope_theta_full);
        g4_gguf_add_f32(w, "gemma4.rope.freq_base_swa", c->rope_theta_swa);
        g4_gguf_add_str(w, "tokenizer.ggml.model", "gemma4");
        g4_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos);
        g4_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos);
        g4_gguf_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)c->pad);
        if (o->eot >= 0) g4_gguf_add_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)o->eot);
        if (o->n_sup) g4_gguf_add_arr(w, "tokenizer.ggml.suppress_tokens", G4_GGUF_I32, o->sup, (uint64_t)o->n_sup);
    }
    /* tensors: only the ones config.c looks at */
    float *embd = NULL, *vdat = NULL, rf[2048];
    char **tok = NULL; char *tokbuf = NULL;
    if (o->n_tokens > 0) {
        tok = malloc((size_t)o->n_tokens * sizeof *tok);
        tokbuf = malloc((size_t)o->n_tokens * 16);
        static const char *const mm[6] = { "<|image>", "<|audio>", "<|image|>", "<|audio|>", "<image|>", "<audio|>" };
        for (int i = 0; i < o->n_tokens; i++) {
            tok[i] = tokbuf + 16 * (size_t)i;
            if (o->mm_strings && i >= 500 && i < 506) snprintf(tok[i], 16, "%s", mm[i - 500]);
            else snprintf(tok[i], 16, "t%d", i);
        }
        g4_gguf_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)o->n_tokens);
    } else {
        embd = calloc((size_t)c->vocab * c->d_model, sizeof *embd);
        int64_t ne[2] = { c->d_model, c->vocab };
        g4_gguf_add_tensor(w, "token_embd.weight", G4_T_F32, 2, ne, embd);
    }
    if (o->rope_ones >= 0) {
        int np = c->hd_full / 2;
        for (int i = 0; i < np; i++) rf[i] = i < o->rope_ones ? 1.0f : 1e30f;
        if (o->rope_bad) rf[np - 1] = 1.0f;
        int64_t ne[1] = { np };
        g4_gguf_add_tensor(w, "rope_freqs.weight", G4_T_F32, 1, ne, rf);
    }
    vdat = calloc((size_t)c->d_model * c->n_kv_full * c->hd_full, sizeof *vdat);
    int first = 1;
    for (int l = 0; l < L; l++) {
        if (!c->is_global[l] || o->v_global == 0 || (o->v_global == 2 && !first)) continue;
        first = 0;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        int64_t ne[2] = { c->d_model, (int64_t)c->n_kv_full * c->hd_full };
        g4_gguf_add_tensor(w, name, G4_T_F32, 2, ne, vdat);
    }
    int rc = g4_gguf_write(w, path, NULL, NULL, e);
    g4_gguf_writer_free(w);
    free(embd); free(vdat); free(tok); free(tokbuf);
    if (rc) { printf("    writer: %s\n", e->msg); return -2; }
    g4_gguf *g = g4_gguf_open(path, e);
    if (!g) { printf("    reader: %s\n", e->msg); unlink(path); return -2; }
    rc = g4_config_from_gguf(g, out, e);
    g4_gguf_close(g);
    unlink(path);
    return rc;
}

static gopt GOOD = { "gemma4", 0, 8, 0, 0, 0, 0, 0, 0, -1, 2, {505, 504}, 0, 0 };

static void test_from_gguf(void)
{
    g4_config tiny, c;
    g4_err e = {{0}};
    g4_config_builtin("tiny", &tiny);
    gopt o = GOOD;
    int rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0, "tiny gguf: %s", e.msg);
    if (rc == 0) {
        CHECK(same_config(&c, &tiny, "tiny gguf"), "tiny from gguf equals builtin");
        CHECK(strcmp(c.name, "file") == 0 && g4_config_check(&c, &e) == 0, "name file, check passes");
    }
    /* the model writer's metadata (model.c) reads back the same */
    o = GOOD; o.use_model_writer = 1;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && same_config(&c, &tiny, "tiny via g4_config_write_gguf"), "g4_config_write_gguf round trip: %s",
          rc ? e.msg : "");

    /* the 12b shape: vocab from the tokenizer's 262144 tokens, 64 of 256 pairs rotate */
    g4_config big;
    g4_config_builtin("12b", &big);
    o = GOOD; o.n_tokens = 262144; o.rope_ones = 64; o.n_sup = 2; o.sup[0] = 258883; o.sup[1] = 258882;
    rc = gguf_config(&big, &o, &c, &e, NULL);
    CHECK(rc == 0 && same_config(&c, &big, "12b gguf"), "12b from gguf: %s", rc ? e.msg : "");
    CHECK(rc == 0 && g4_config_nparams(&c) == 11907350320LL, "12b gguf nparams");

    /* variants */
    o = GOOD; o.kv_scalar = 1;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.n_kv_swa == 2 && c.n_kv_full == 2, "scalar head_count_kv applies to all layers: %s", e.msg);
    o = GOOD; o.rope_ones = -1;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.rope_partial_full == 0.25f, "no rope_freqs -> 0.25");
    o = GOOD; o.rope_ones = 16;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.rope_partial_full == 0.5f, "16 of 32 ones -> 0.5 (got %g)", c.rope_partial_full);
    o = GOOD; o.rope_ones = 32;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.rope_partial_full == 1.0f, "all ones -> 1.0");
    o = GOOD; o.v_global = 1;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.k_eq_v == 0, "attn_v on global layers -> k_eq_v 0");
    if (rc == 0) CHECK(g4_config_nparams(&c) == 1003142 + 2 * 64 * 128, "nparams with global v_proj");
    o = GOOD; o.eot = 7; o.n_sup = 2; o.sup[0] = 3; o.sup[1] = 4;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.n_stop == 4 && c.stop[3] == 7 && c.n_suppress == 2 && c.suppress[0] == 3 && c.suppress[1] == 4,
          "eot joins the stop ids; suppress_tokens read");
    o = GOOD; o.eot = 106;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.n_stop == 3, "eot already a stop id is not repeated");
    o = GOOD; o.n_tokens = 300; o.n_sup = 0;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.vocab == 300, "vocab from the tokens list");
    CHECK(rc == 0 && c.boi == 0 && c.eoi == 0 && c.image_tok == 0 && c.boa == 0 && c.eoa == 0 && c.audio_tok == 0 &&
          c.mm_dim == 0 && c.audio_dim == 0, "no multimodal token strings: ids 0");
    /* the multimodal ids are found by their token strings (spec 2.4) */
    o = GOOD; o.n_tokens = 512; o.mm_strings = 1;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && same_config(&c, &tiny, "tiny gguf with tokens"), "tiny gguf with tokens: %s", rc ? e.msg : "");
    CHECK(rc == 0 && c.boi == 500 && c.boa == 501 && c.image_tok == 502 && c.audio_tok == 503 && c.eoi == 504 &&
          c.eoa == 505, "ids from <|image> <|audio> <|image|> <|audio|> <image|> <audio|>");
    CHECK(rc == 0 && c.mm_dim == 0 && c.mm_posemb == 0 && c.audio_dim == 0, "sizes come from an mmproj, not the text gguf");
    /* no token list at all: the 12b ids when they fit (the 12b vocab), else 0 */
    o = GOOD;
    rc = gguf_config(&tiny, &o, &c, &e, NULL);
    CHECK(rc == 0 && c.boi == 0 && c.image_tok == 0 && c.eoa == 0, "tiny without tokens: ids 0");

    /* errors name the file */
    struct { gopt o; const char *want; } bad[] = {
        { GOOD, "general.architecture is 'llama'" },
        { GOOD, "no general.architecture" },
        { GOOD, "missing gemma4.block_count" },
        { GOOD, "sliding_window_pattern has 7 entries for 6 layers" },
        { GOOD, "head_count_kv varies among sliding layers" },
        { GOOD, "only 1.0 (first) and >= 1e20" },
        { GOOD, "global layers have attn_v.weight and" },
        { GOOD, "suppressed token 600 outside the vocab" },
    };
    bad[0].o.arch = "llama";
    bad[1].o.arch = NULL;
    bad[2].o.no_block_count = 1;
    bad[3].o.pattern_extra = 1;
    bad[4].o.vary_kv = 1;
    bad[5].o.rope_bad = 1;
    bad[6].o.v_global = 2;
    bad[7].o.n_sup = 1; bad[7].o.sup[0] = 600;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char path[160];
        memset(&e, 0, sizeof e);
        rc = gguf_config(&tiny, &bad[k].o, &c, &e, path);
        CHECK(rc == -1 && strstr(e.msg, path) && strstr(e.msg, bad[k].want), "gguf case %zu: want '%s', got '%s'",
              k, bad[k].want, e.msg);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/g4_test_cfg_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL mkdtemp\n"); return 1; }
    RUN(test_builtins);
    RUN(test_from_json);
    RUN(test_json_errors);
    RUN(test_check);
    RUN(test_from_gguf);
    rmdir(tmpdir);
    return h_finish();
}
