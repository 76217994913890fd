/* test_bad_audio.c - bad WAV files and bad arguments to the audio front end (ref/audio.c) give one
 * clear error line "<path>: ..." and a non-zero return: no crash, no leak, no output left behind.
 * Built and run under ASan + UBSan by `make test` (tests/test_bad_*.c).
 *
 * The bad files are written at run time into a fresh temporary directory (removed at the end):
 * each is a valid 16 kHz s16 mono WAV with one thing broken. Also: a 31 s clip rejected by the
 * default 30 s limit (with the flag named) and accepted with max_frames = 0, and a byte-mutation
 * fuzz of a valid file (every outcome must be a clean success or a clean error).
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

/* ---- a little byte builder for WAV files */
typedef struct { uint8_t *b; size_t n, cap; } buf;
static void put(buf *w, const void *p, size_t n)   /* n == 0: nothing (p may be NULL) */
{
    if (n == 0) return;
    if (w->n + n > w->cap) {
        size_t c = w->cap ? w->cap * 2 : 256;
        while (c < w->n + n) c *= 2;
        w->b = realloc(w->b, c); w->cap = c;
    }
    memcpy(w->b + w->n, p, n); w->n += n;
}
static void u16(buf *w, unsigned v) { uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; put(w, b, 2); }
static void u32(buf *w, uint32_t v) { uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) }; put(w, b, 4); }
static void tag4(buf *w, const char *s) { put(w, s, 4); }

typedef struct {
    unsigned tag, ch, bits, align;      /* align 0 = computed */
    uint32_t rate;
    unsigned fmt_size;                  /* 0 = 16 (or 40 for extensible) */
    int ext_sub;                        /* extensible sub-format code; -1 = a foreign GUID */
    unsigned ext_valid;                 /* extensible valid bits (0 = bits) */
    int no_fmt, no_data, data_first;
    uint32_t data_claim;                /* 0 = the real size */
    size_t n_samples;                   /* sample frames to write */
    size_t cut;                         /* if > 0: truncate the file to this many bytes */
    int nan_sample;
} spec;

static spec base(void)
{
    spec s = { 1, 1, 16, 0, 16000, 0, 1, 0, 0, 0, 0, 0, 100, 0, 0 };
    return s;
}

static buf build(const spec *s)
{
    buf f = {0}, fmt = {0}, data = {0};
    unsigned bytes = s->bits / 8, align = s->align ? s->align : s->ch * bytes;
    u16(&fmt, s->tag); u16(&fmt, s->ch); u32(&fmt, s->rate); u32(&fmt, s->rate * align);
    u16(&fmt, align); u16(&fmt, s->bits);
    if (s->tag == 0xFFFE) {
        static const uint8_t tail[14] = { 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71 };
        u16(&fmt, 22); u16(&fmt, s->ext_valid ? s->ext_valid : s->bits); u32(&fmt, 4);
        u16(&fmt, s->ext_sub < 0 ? 1 : (unsigned)s->ext_sub);
        if (s->ext_sub < 0) { uint8_t g[14] = { 1, 2, 3 }; put(&fmt, g, 14); }
        else put(&fmt, tail, 14);
    }
    size_t fsz = s->fmt_size ? s->fmt_size : fmt.n;
    for (size_t i = 0; i < s->n_samples * s->ch; i++) {
        if (s->tag == 3 && s->bits == 32) {
            float v = (s->nan_sample && i == 7) ? NAN : (float)(i % 50) / 100.0f;
            uint32_t u; memcpy(&u, &v, 4); u32(&data, u);
        } else {
            uint8_t z[8] = { (uint8_t)(i * 37), (uint8_t)(i >> 3) };
            put(&data, z, bytes ? bytes : 1);
        }
    }
    tag4(&f, "RIFF"); u32(&f, 0); tag4(&f, "WAVE");
    for (int pass = 0; pass < 2; pass++) {
        int want_fmt = s->data_first ? pass == 1 : pass == 0;
        if (want_fmt && !s->no_fmt) {
            tag4(&f, "fmt "); u32(&f, (uint32_t)fsz);
            put(&f, fmt.b, fsz < fmt.n ? fsz : fmt.n);
            if (fsz & 1) { uint8_t z = 0; put(&f, &z, 1); }
        }
        if (!want_fmt && !s->no_data) {
            tag4(&f, "data"); u32(&f, s->data_claim ? s->data_claim : (uint32_t)data.n);
            put(&f, data.b, data.n);
            if (data.n & 1) { uint8_t z = 0; put(&f, &z, 1); }
        }
    }
    uint32_t rs = (uint32_t)(f.n - 8);
    memcpy(f.b + 4, &rs, 4);            /* little-endian host assumed for this test file only */
    if (s->cut && s->cut < f.n) f.n = s->cut;
    free(fmt.b); free(data.b);
    return f;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) { CHECK(0, "cannot write %s", path); return; }
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
}

/* a failing load must: return -1, leave the audio empty, give one line starting "<path>: " that
 * contains `want` */
static void expect_fail(const char *name, const void *bytes, size_t n, const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, bytes, n);
    g4_audio a = { 123, 456, (float *)&a };
    g4_err err = {{0}};
    int rc = g4_audio_load_wav(path, &a, &err);
    CHECK(rc == -1, "%s: load returned %d (want -1)", name, rc);
    CHECK(a.x == NULL && a.n == 0, "%s: audio not left empty", name);
    if (rc == 0) g4_audio_free(&a);
    size_t pl = strlen(path);
    CHECK(strncmp(err.msg, path, pl) == 0 && strncmp(err.msg + pl, ": ", 2) == 0, "%s: message does not start with the path: %s", name, err.msg);
    CHECK(strchr(err.msg, '\n') == NULL, "%s: message has a newline", name);
    CHECK(strstr(err.msg, want) != NULL, "%s: message lacks \"%s\": %s", name, want, err.msg);
    /* the whole pipeline fails the same way and returns no frames */
    float *fr = (float *)&a; int nf = 77;
    g4_err e2 = {{0}};
    rc = g4_audio_prepare(path, G4_AUDIO_MAX_FRAMES, &fr, &nf, &e2);
    CHECK(rc == -1 && fr == NULL && nf == 0, "%s: prepare rc %d", name, rc);
    if (rc == 0) free(fr);
    CHECK(strcmp(err.msg, e2.msg) == 0, "%s: prepare says \"%s\", load says \"%s\"", name, e2.msg, err.msg);
    printf("    %-22s %s\n", name, err.msg + pl + 2);
    unlink(path);
}

static void expect_spec_fail(const char *name, spec s, const char *want)
{
    buf f = build(&s);
    expect_fail(name, f.b, f.n, want);
    free(f.b);
}

static void test_bad_files(void)
{
    spec s;
    /* sanity: the builder's base file is valid */
    {
        s = base();
        buf f = build(&s);
        char path[512];
        snprintf(path, sizeof path, "%s/ok.wav", dir);
        write_file(path, f.b, f.n);
        g4_audio a; g4_err err = {{0}};
        int rc = g4_audio_load_wav(path, &a, &err);
        CHECK(rc == 0 && a.n == 100 && a.rate == 16000, "the base file does not load: %s", err.msg);
        if (rc == 0) g4_audio_free(&a);
        free(f.b);
        unlink(path);
    }
    expect_fail("empty.wav", "", 0, "empty");
    expect_fail("short.wav", "RIFF\0\0\0\0WA", 10, "truncated header");
    expect_fail("text.wav", "hello, this is not a wav file at all", 36, "not a WAV file");
    expect_fail("riff_avi.wav", "RIFF\x10\0\0\0AVI LIST\0\0\0\0", 20, "not WAVE");
    expect_fail("rifx.wav", "RIFX\x10\0\0\0WAVEfmt \0\0\0\x10", 20, "RIFX");
    expect_fail("rf64.wav", "RF64\xff\xff\xff\xffWAVEds64", 16, "RF64");
    expect_fail("header_only.wav", "RIFF\x04\0\0\0WAVE", 12, "no fmt chunk");
    s = base(); s.no_fmt = 1;               expect_spec_fail("no_fmt.wav", s, "no fmt chunk");
    s = base(); s.no_data = 1;              expect_spec_fail("no_data.wav", s, "no data chunk");
    s = base(); s.fmt_size = 12;            expect_spec_fail("fmt_short.wav", s, "fmt chunk is 12 bytes");
    s = base(); s.cut = 12 + 8 + 10;        expect_spec_fail("fmt_cut.wav", s, "truncated header");
    s = base(); s.data_claim = 100000;      expect_spec_fail("data_past_end.wav", s, "past the end");
    s = base(); s.data_claim = 0xFFFFFFFFu; expect_spec_fail("data_ffffffff.wav", s, "past the end");
    s = base(); s.cut = 12 + 24 + 8 + 50;   expect_spec_fail("data_cut.wav", s, "past the end");
    s = base(); s.ch = 0;                   expect_spec_fail("zero_channels.wav", s, "zero channels");
    s = base(); s.rate = 0;                 expect_spec_fail("zero_rate.wav", s, "zero sample rate");
    s = base(); s.rate = 0x80000000u;       expect_spec_fail("huge_rate.wav", s, "out of range");
    s = base(); s.tag = 2;                  expect_spec_fail("adpcm.wav", s, "format tag 0x0002");
    s = base(); s.tag = 0x55;               expect_spec_fail("mp3.wav", s, "format tag 0x0055");
    s = base(); s.bits = 12; s.align = 2;   expect_spec_fail("pcm12.wav", s, "bit depth 12");
    s = base(); s.bits = 64; s.n_samples = 10; expect_spec_fail("pcm64.wav", s, "bit depth 64");
    s = base(); s.tag = 3; s.bits = 16;     expect_spec_fail("float16.wav", s, "float bit depth 16");
    s = base(); s.align = 4;                expect_spec_fail("block_align.wav", s, "block align 4");
    s = base(); s.ch = 2; s.align = 2;      expect_spec_fail("block_align_st.wav", s, "block align 2");
    s = base(); s.tag = 0xFFFE; s.ext_sub = -1; expect_spec_fail("ext_guid.wav", s, "sub-format");
    s = base(); s.tag = 0xFFFE; s.ext_sub = 2;  expect_spec_fail("ext_adpcm.wav", s, "sub-format");
    s = base(); s.tag = 0xFFFE; s.ext_valid = 20; expect_spec_fail("ext_valid.wav", s, "20 valid bits");
    s = base(); s.tag = 0xFFFE; s.fmt_size = 18;  expect_spec_fail("ext_short.wav", s, "EXTENSIBLE fmt chunk too short");
    s = base(); s.n_samples = 0;            expect_spec_fail("no_samples.wav", s, "no audio samples");
    s = base(); s.tag = 3; s.bits = 32; s.nan_sample = 1; expect_spec_fail("nan.wav", s, "not a finite number");

    /* not a file */
    g4_audio a; g4_err err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/missing.wav", dir);
    CHECK(g4_audio_load_wav(path, &a, &err) == -1 && strstr(err.msg, "missing.wav: cannot open"), "missing: %s", err.msg);
    CHECK(g4_audio_load_wav(dir, &a, &err) == -1 && strstr(err.msg, "not a regular file"), "directory: %s", err.msg);
}

/* Odd-but-valid layouts load: data before fmt, an odd unknown chunk, a truncated trailing chunk,
 * a partial sample frame at the end of data (ignored), a wrong RIFF size. */
static void test_odd_valid(void)
{
    spec s = base(); s.data_first = 1;
    buf f = build(&s);
    const char *extra = "JUNK\x03\0\0\0abc\0";             /* odd unknown chunk + pad */
    put(&f, extra, 12);
    put(&f, "LIST\xff\0\0\0xy", 10);                       /* trailing chunk cut short */
    memset(f.b + 4, 0xEE, 4);                              /* nonsense RIFF size */
    char path[512];
    snprintf(path, sizeof path, "%s/odd.wav", dir);
    write_file(path, f.b, f.n);
    free(f.b);
    g4_audio a; g4_err err = {{0}};
    int rc = g4_audio_load_wav(path, &a, &err);
    CHECK(rc == 0 && a.n == 100, "odd layout: rc %d n %d: %s", rc, rc ? 0 : a.n, err.msg);
    if (rc == 0) g4_audio_free(&a);
    unlink(path);
    /* 3-byte data chunk in a 16-bit stereo file: no whole sample frame -> clean error */
    s = base(); s.ch = 2; s.n_samples = 0;
    f = build(&s);
    /* rewrite the data size to 3 and append 3 bytes + pad */
    memcpy(f.b + f.n - 4, "\x03\0\0\0", 4);
    put(&f, "\1\2\3\0", 4);
    expect_fail("partial_frame.wav", f.b, f.n, "no audio samples");
    free(f.b);
}

/* a clip of `secs` seconds of 16-bit mono at `rate`, written to path */
static void write_clip(const char *path, int rate, double secs)
{
    spec s = base(); s.rate = (uint32_t)rate; s.n_samples = (size_t)(secs * rate);
    buf f = build(&s);
    write_file(path, f.b, f.n);
    free(f.b);
}

static void test_length_limit(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/31s.wav", dir);
    write_clip(path, 16000, 31.0);
    float *fr = NULL; int n = 0;
    g4_err err = {{0}};
    int rc = g4_audio_prepare(path, G4_AUDIO_MAX_FRAMES, &fr, &n, &err);
    CHECK(rc == -1 && fr == NULL && n == 0, "31 s accepted with the default limit");
    CHECK(strncmp(err.msg, path, strlen(path)) == 0 && strstr(err.msg, "31.00 s") && strstr(err.msg, "30.00 s")
          && strstr(err.msg, "--max-audio-seconds"), "message: %s", err.msg);
    printf("    %s\n", err.msg);
    rc = g4_audio_prepare(path, 0, &fr, &n, &err);
    CHECK(rc == 0 && n == 775 && fr, "31 s with max_frames 0: rc %d, %d frames: %s", rc, n, err.msg);
    free(fr);
    rc = g4_audio_prepare(path, -1, &fr, &n, &err);
    CHECK(rc == -1 && fr == NULL && strstr(err.msg, "max_frames"), "max_frames -1: %s", err.msg);
    unlink(path);
    /* exactly 30 s passes; 30 s + 1 sample fails */
    snprintf(path, sizeof path, "%s/30s.wav", dir);
    write_clip(path, 16000, 30.0);
    rc = g4_audio_prepare(path, G4_AUDIO_MAX_FRAMES, &fr, &n, &err);
    CHECK(rc == 0 && n == 750, "30 s: rc %d, %d frames: %s", rc, n, err.msg);
    free(fr);
    unlink(path);
    /* 31 s at 44.1 kHz is rejected before any resampling (checked on ceil(n * 16000 / rate)) */
    snprintf(path, sizeof path, "%s/31s_44k.wav", dir);
    write_clip(path, 44100, 31.0);
    double t0 = g4_now();
    rc = g4_audio_prepare(path, G4_AUDIO_MAX_FRAMES, &fr, &n, &err);
    CHECK(rc == -1 && fr == NULL && strstr(err.msg, "31.00 s") && strstr(err.msg, "--max-audio-seconds"), "44.1k: %s", err.msg);
    printf("    44.1 kHz 31 s rejected in %.3f s\n", g4_now() - t0);
    unlink(path);
}

static void test_bad_args(void)
{
    g4_err err = {{0}};
    g4_audio in = { 0, 16000, NULL }, out;
    CHECK(g4_audio_resample(&in, 16000, &out, &err) == -1 && out.x == NULL && strstr(err.msg, "empty"), "empty: %s", err.msg);
    float x[100] = {0};
    in.n = 100; in.x = x; in.rate = 0;
    CHECK(g4_audio_resample(&in, 16000, &out, &err) == -1 && strstr(err.msg, "input sample rate 0"), "rate 0: %s", err.msg);
    in.rate = 999;
    CHECK(g4_audio_resample(&in, 16000, &out, &err) == -1 && strstr(err.msg, "999"), "rate 999: %s", err.msg);
    in.rate = 16000;
    CHECK(g4_audio_resample(&in, 0, &out, &err) == -1 && strstr(err.msg, "target"), "target 0: %s", err.msg);
    CHECK(g4_audio_resample(&in, 800000, &out, &err) == -1 && strstr(err.msg, "target"), "target 800k: %s", err.msg);
    in.rate = 44100;
    CHECK(g4_audio_resample(&in, 16000, &in, &err) == -1 && in.x == x && strstr(err.msg, "same struct"), "in == out: %s", err.msg);
    in.rate = 768000;    /* the largest rate, to the smallest: a short clip works */
    CHECK(g4_audio_resample(&in, 1000, &out, &err) == 0 && out.n == 1, "768k -> 1k: %s", err.msg);
    g4_audio_free(&out);

    float *fr = NULL; int n = 5;
    g4_audio z = { 0, 16000, x };
    CHECK(g4_audio_frames(&z, 750, &fr, &n, &err) == -1 && fr == NULL && n == 0 && strstr(err.msg, "empty"), "frames empty: %s", err.msg);
    z.n = 100; z.rate = 8000;
    CHECK(g4_audio_frames(&z, 750, &fr, &n, &err) == -1 && strstr(err.msg, "8000 Hz"), "frames 8 kHz: %s", err.msg);
    z.rate = 16000;
    CHECK(g4_audio_frames(&z, -3, &fr, &n, &err) == -1 && strstr(err.msg, "max_frames"), "frames -3: %s", err.msg);

    /* the embedder without audio weights, and with no frames */
    g4_model m;
    memset(&m, 0, sizeof m);
    m.cfg.d_model = 8; m.cfg.eps = 1e-6f;
    snprintf(m.source, sizeof m.source, "test model");
    float outv[8];
    CHECK(g4_audio_embed(&m, &g4_kernels_ref, x, 1, outv, 0, &err) == -1 && strstr(err.msg, "test model: no audio"), "no audio: %s", err.msg);
    static float w[8 * 640];
    m.mm.has_audio = 1;
    m.mm.aud_proj.type = G4_T_F32; m.mm.aud_proj.n_dims = 2;
    m.mm.aud_proj.ne[0] = 640; m.mm.aud_proj.ne[1] = 8; m.mm.aud_proj.ne[2] = m.mm.aud_proj.ne[3] = 1;
    m.mm.aud_proj.data = w;
    CHECK(g4_audio_embed(&m, &g4_kernels_ref, NULL, 1, outv, 0, &err) == -1, "NULL frames accepted");
    CHECK(g4_audio_embed(&m, &g4_kernels_ref, x, 0, outv, 0, &err) == -1, "0 frames accepted");
    float fr640[640] = {0};
    CHECK(g4_audio_embed(&m, &g4_kernels_ref, fr640, 1, outv, 1, &err) == 0, "valid call failed: %s", err.msg);
}

/* byte mutations of a valid file (header region mostly): every outcome is 0 with samples, or -1
 * with a message naming the file. ASan/UBSan catch any out-of-bounds read. */
static void test_fuzz(void)
{
    spec s = base(); s.n_samples = 40;
    buf f = build(&s);
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz.wav", dir);
    uint64_t st = 12345;
    int ok = 0, bad = 0;
    uint8_t *m = malloc(f.n);
    for (int it = 0; it < 1500; it++) {
        memcpy(m, f.b, f.n);
        int nmut = 1 + (int)(g4_splitmix64(&st) % 4);
        for (int k = 0; k < nmut; k++) {
            uint64_t r = g4_splitmix64(&st);
            size_t pos = (r & 1) ? (size_t)(r >> 8) % 48 : (size_t)(r >> 8) % f.n;
            m[pos] = (uint8_t)(r >> 40);
        }
        size_t len = (it % 5 == 0) ? (size_t)(g4_splitmix64(&st) % f.n) : f.n;
        write_file(path, m, len);
        g4_audio a; g4_err err = {{0}};
        int rc = g4_audio_load_wav(path, &a, &err);
        if (rc == 0) {
            ok++;
            CHECK(a.n > 0 && a.x && a.rate > 0, "fuzz %d: success without samples", it);
            for (int i = 0; i < a.n; i++) if (!isfinite(a.x[i])) { CHECK(0, "fuzz %d: non-finite sample", it); break; }
            g4_audio_free(&a);
        } else {
            bad++;
            CHECK(rc == -1 && strncmp(err.msg, path, strlen(path)) == 0 && !strchr(err.msg, '\n'), "fuzz %d: rc %d msg %s", it, rc, err.msg);
        }
    }
    printf("    1500 mutated files: %d loaded, %d rejected cleanly\n", ok, bad);
    free(m); free(f.b);
    unlink(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/g4_bad_audio_%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0) { printf("FAIL setup (cannot create %s)\n", dir); return 1; }
    RUN(test_bad_files);
    RUN(test_odd_valid);
    RUN(test_length_limit);
    RUN(test_bad_args);
    RUN(test_fuzz);
    rmdir(dir);
    return h_finish();
}
