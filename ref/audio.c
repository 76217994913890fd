/* audio.c - the audio front end (spec 3): WAV file -> mono float samples -> 16 kHz -> 640-sample
 * frames -> audio soft-token embeddings.
 *
 * Gemma 4 Unified has no audio encoder: each 40 ms frame of raw 16 kHz samples (640 values) is one
 * soft token, embedded by a weightless RMSNorm and one Linear 640 -> d_model. Stages:
 *
 *   g4_audio_load_wav   WAV file -> g4_audio { n samples, rate, x[n] } (mono, float32)
 *   g4_audio_resample   any rate -> any rate (here: 16000) with a Kaiser-windowed sinc
 *   g4_audio_frames     x[n] at 16 kHz -> frames [ceil(n/640)][640], last frame zero-padded
 *   g4_audio_prepare    load + resample (only if rate != 16000) + frames, with the length limit
 *   g4_audio_embed      frames [n][640] -> out [n][d_model]
 *
 * What the reference does (transformers 5.23, read in the installed code; docs/MODEL.md section 6 has the
 * full account):
 *   - Gemma4UnifiedAudioFeatureExtractor takes a float waveform that is already mono and 16 kHz;
 *     it pads with zeros to a multiple of 640, reshapes to [n][640] as float32, and marks every
 *     frame valid. It has no resampling and no normalisation (spec 3 steps 1-2).
 *   - A file path given to the processor goes through transformers.audio_utils.load_audio: with
 *     the "soundfile" backend (the default when torchcodec is absent) libsndfile decodes to
 *     float32, channels are averaged (numpy mean over the channel axis), and other rates are
 *     resampled with soxr "HQ" to ceil(n * 16000 / rate) samples.
 *   This file matches the loader bit for bit (decode scaling and downmix, below) and replaces soxr
 *   with a documented band-limited resampler of similar quality (section "Resampling").
 *
 * WAV decoding (RIFF/WAVE, little-endian): chunks in any order (libsndfile itself requires fmt
 * before data; we do not), unknown chunks skipped, odd-sized chunks followed by their pad byte.
 * Formats: WAVE_FORMAT_PCM (1) 8-bit unsigned, 16/24/32-bit signed; WAVE_FORMAT_IEEE_FLOAT (3)
 * 32/64-bit; WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the PCM or IEEE-float sub-format GUID (the
 * container size decides the decoding; valid-bits only has to be <= the container). Scaling to
 * [-1, 1] is libsndfile's float conversion, bit for bit:
 *   u8:  (v - 128) / 128        s16: v / 32768        s24: v / 8388608
 *   s32: float(v) / 2147483648 (v first rounded to float32, as libsndfile does)
 *   f32: as stored              f64: rounded to float32
 * (so full-scale negative is exactly -1 and positive is 1 - 2^-(bits-1)). A non-finite float
 * sample is an error (the model would turn it into NaN logits).
 * Downmix (the reference's `waveform.mean(axis=0)` in float32): s = c0 + c1 + ... summed in
 * float32 in channel order, then s / channels in float32. For up to 8 channels this is numpy's
 * exact order; above 8 numpy switches to blocked pairwise sums and may differ in the last bit.
 * A partial sample frame at the end of the data chunk is ignored (as libsndfile does).
 *
 * Resampling (g4_audio_resample): y[k] = sum_j x[j] h(k * rin / rout - j), samples outside the
 * input are zero, output length ceil(n * rout / rin) (the reference's length rule), output sample
 * 0 aligned with input sample 0 (zero delay, like soxr). With f_lo = min(rin, rout):
 *   passband edge 0.92 * f_lo / 2, stopband edge f_lo / 2 (transition dF = 0.04 f_lo), design
 *   attenuation A = 120 dB (about soxr HQ's 20-bit precision); ideal low-pass cut-off at the
 *   middle of the transition, fc = 0.96 * f_lo / 2;
 *   Kaiser window, beta = 0.1102 (A - 8.7) = 12.2766, length L = (A - 7.95) / (2.285 * 2 pi dF)
 *   seconds (Kaiser's formula): half-width 97.6 periods of f_lo on each side.
 *   In input-sample units, with r = 2 fc / rin and half-width H = L/2 * rin:
 *     h(d) = r * sinc(r d) * I0(beta sqrt(1 - (d/H)^2)) / I0(beta)   for |d| < H, else 0.
 * The kernel depends only on the output's fractional input position; for rates with
 * gcd(rin, rout) = g there are P = rout / g distinct phases, precomputed as a table in double when
 * there are more outputs than phases and it fits in G4_RESAMPLE_TABLE_MAX bytes (every common rate:
 * 44.1 kHz has 160 phases x 540 taps, 0.7 MB), otherwise computed per output sample by the same
 * function (bit-identical results; for rates whose table would exceed 128 MB, i.e. above ~85 kHz
 * with a small gcd, like 96001 Hz, this costs ~3 s per second of audio). Sums are in double; each
 * output is rounded once to
 * float32. Supported rates: 1000 .. 768000 Hz. Measured properties are in tests/test_audio.c and
 * docs/MODEL.md section 6 (1 kHz gain error ~1e-7 dB, stopband past 8.1 kHz > 120 dB, DC error ~3e-8).
 *
 * Embedding (spec 3 step 3, spec 1.4): per frame
 *   x = bf16(frame)            the reference casts to the projection weight's dtype, which is bf16
 *                              in the released checkpoint: done always (checkpoint behaviour),
 *                              whatever the type of the weight g4 holds;
 *   h = x * (mean(x^2) + eps)^-1/2    weightless RMSNorm over 640 values, fp32, eps = cfg.eps (1e-6);
 *   out = aud_proj . h          embed_audio.embedding_projection, rows d_model, cols 640, no bias.
 * With bf16 = 1 (HF bf16 module semantics) h and out are rounded to bf16. No position embedding,
 * no scaling. Only the kernel table is used (k->rmsnorm, k->matmul).
 */
#include "g4.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define G4_RESAMPLE_MIN_RATE 1000
#define G4_RESAMPLE_MAX_RATE 768000
#define G4_RESAMPLE_TABLE_MAX ((size_t)128 << 20)    /* bytes of precomputed kernel phases */

/* Kaiser design of the resampling low-pass (see the header comment) */
#define RS_PASS 0.92            /* passband edge, fraction of f_lo/2 */
#define RS_ATTEN 120.0          /* dB */

/* ---------------------------------------------------------------------------------------------
 * WAV reader
 * ------------------------------------------------------------------------------------------- */
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{ return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* the 14 bytes after the 2-byte format code in a KSDATAFORMAT_SUBTYPE_* GUID */
static const uint8_t ksdata_tail[14] = { 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00,
                                         0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71 };

enum { WAV_PCM = 1, WAV_FLOAT = 3, WAV_EXTENSIBLE = 0xFFFE };

/* print a chunk id safely (it may hold any bytes) */
static void chunk_name(const uint8_t *id, char out[5])
{
    for (int i = 0; i < 4; i++) out[i] = (id[i] >= 0x20 && id[i] < 0x7F) ? (char)id[i] : '?';
    out[4] = 0;
}

/* decode one sample of `bytes` bytes at p (kind: WAV_PCM or WAV_FLOAT) to float, libsndfile's scaling */
static float wav_sample(const uint8_t *p, int kind, int bytes)
{
    if (kind == WAV_FLOAT) {
        if (bytes == 4) { uint32_t u = rd32(p); float f; memcpy(&f, &u, 4); return f; }
        uint64_t u = (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
        double d; memcpy(&d, &u, 8);
        return (float)d;
    }
    switch (bytes) {
    case 1: return (float)((int)p[0] - 128) * (1.0f / 128.0f);
    case 2: return (float)(int16_t)rd16(p) * (1.0f / 32768.0f);
    case 3: {
        int32_t v = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16);
        if (v & 0x800000) v -= 0x1000000;           /* sign-extend 24 bits */
        return (float)v * (1.0f / 8388608.0f);
    }
    default: return (float)(int32_t)rd32(p) * (1.0f / 2147483648.0f);
    }
}

int g4_audio_load_wav(const char *path, g4_audio *a, g4_err *err)
{
    memset(a, 0, sizeof *a);
    const uint8_t *map; size_t size;
    if (g4_map_file(path, &map, &size, err)) return -1;
    int rc = -1;
    float *x = NULL;

    if (size < 12) { g4_fail(err, "%s: truncated header: %zu bytes, a WAV file starts with 12", path, size); goto done; }
    if (memcmp(map, "RIFX", 4) == 0) { g4_fail(err, "%s: big-endian RIFX WAV is not supported", path); goto done; }
    if (memcmp(map, "RF64", 4) == 0) { g4_fail(err, "%s: RF64 (64-bit WAV) is not supported", path); goto done; }
    if (memcmp(map, "RIFF", 4) != 0) { g4_fail(err, "%s: not a WAV file (no RIFF header)", path); goto done; }
    if (memcmp(map + 8, "WAVE", 4) != 0) { g4_fail(err, "%s: RIFF file but not WAVE", path); goto done; }

    /* Walk the chunks up to the end of the file (the RIFF size field is often wrong in files
     * written by streaming tools, so the file size is the bound). */
    const uint8_t *fmt = NULL, *data = NULL;
    uint32_t fmt_size = 0; uint64_t data_size = 0;
    size_t off = 12;
    while (size - off >= 8) {
        const uint8_t *c = map + off;
        uint64_t csz = rd32(c + 4);
        uint64_t avail = size - off - 8;
        char nm[5]; chunk_name(c, nm);
        if (memcmp(c, "fmt ", 4) == 0 && !fmt) {
            if (csz > avail) { g4_fail(err, "%s: truncated header: fmt chunk of %llu bytes, only %llu left in the file", path, (unsigned long long)csz, (unsigned long long)avail); goto done; }
            fmt = c + 8; fmt_size = (uint32_t)csz;
        } else if (memcmp(c, "data", 4) == 0 && !data) {
            if (csz > avail) { g4_fail(err, "%s: data chunk of %llu bytes runs past the end of the file (%llu bytes left): truncated file", path, (unsigned long long)csz, (unsigned long long)avail); goto done; }
            data = c + 8; data_size = csz;
        } else if (csz > avail) {
            break;                  /* an unknown chunk cut short at the end: stop walking */
        }
        uint64_t step = 8 + csz + (csz & 1);
        if (step > size - off) break;
        off += (size_t)step;
    }
    if (!fmt) { g4_fail(err, "%s: no fmt chunk (truncated header?)", path); goto done; }
    if (fmt_size < 16) { g4_fail(err, "%s: truncated header: fmt chunk is %u bytes, needs at least 16", path, fmt_size); goto done; }
    if (!data) { g4_fail(err, "%s: no data chunk", path); goto done; }

    unsigned tag = rd16(fmt), ch = rd16(fmt + 2), bits = rd16(fmt + 14), align = rd16(fmt + 12);
    uint32_t rate = rd32(fmt + 4);
    unsigned kind = tag;
    if (tag == WAV_EXTENSIBLE) {
        if (fmt_size < 40 || rd16(fmt + 16) < 22) { g4_fail(err, "%s: WAVE_FORMAT_EXTENSIBLE fmt chunk too short (%u bytes, needs 40)", path, fmt_size); goto done; }
        unsigned valid = rd16(fmt + 18);
        kind = rd16(fmt + 24);
        if (memcmp(fmt + 26, ksdata_tail, 14) != 0 || (kind != WAV_PCM && kind != WAV_FLOAT)) {
            g4_fail(err, "%s: unsupported WAVE_FORMAT_EXTENSIBLE sub-format (only PCM and IEEE float)", path); goto done;
        }
        if (valid > bits) { g4_fail(err, "%s: %u valid bits in a %u-bit container", path, valid, bits); goto done; }
    } else if (tag != WAV_PCM && tag != WAV_FLOAT) {
        g4_fail(err, "%s: unsupported WAV format tag 0x%04x (only PCM 1, IEEE float 3, extensible 0xFFFE)", path, tag);
        goto done;
    }
    if (ch == 0) { g4_fail(err, "%s: zero channels", path); goto done; }
    if (rate == 0) { g4_fail(err, "%s: zero sample rate", path); goto done; }
    if (rate > INT_MAX) { g4_fail(err, "%s: sample rate %u Hz out of range", path, (unsigned)rate); goto done; }
    if (kind == WAV_PCM && bits != 8 && bits != 16 && bits != 24 && bits != 32) {
        g4_fail(err, "%s: unsupported PCM bit depth %u (supported: 8, 16, 24, 32)", path, bits); goto done;
    }
    if (kind == WAV_FLOAT && bits != 32 && bits != 64) {
        g4_fail(err, "%s: unsupported float bit depth %u (supported: 32, 64)", path, bits); goto done;
    }
    int bytes = (int)bits / 8;
    if (align != ch * (unsigned)bytes) {
        g4_fail(err, "%s: block align %u does not match %u channels x %d bytes", path, align, ch, bytes); goto done;
    }
    uint64_t nfr = data_size / align;       /* a partial frame at the end is ignored */
    if (nfr == 0) {
        if (data_size == 0) g4_fail(err, "%s: no audio samples (the data chunk is empty)", path);
        else g4_fail(err, "%s: no audio samples (the data chunk holds %llu bytes, less than one %u-byte sample frame)",
                     path, (unsigned long long)data_size, align);
        goto done;
    }
    if (nfr > INT_MAX) { g4_fail(err, "%s: %llu samples per channel, more than g4 handles", path, (unsigned long long)nfr); goto done; }

    /* nfr * 4 bytes <= data_size * 4 <= 4 * file size: bounded by the file itself */
    x = malloc((size_t)nfr * sizeof *x);
    if (!x) { g4_fail(err, "%s: out of memory for %llu samples", path, (unsigned long long)nfr); goto done; }
    const float fch = (float)ch;
    for (uint64_t i = 0; i < nfr; i++) {
        const uint8_t *p = data + i * align;
        float s = 0.0f;                        /* float32 sum in channel order, then / channels */
        for (unsigned c = 0; c < ch; c++) {
            float v = wav_sample(p + (size_t)c * bytes, (int)kind, bytes);
            if (!isfinite(v)) {
                g4_fail(err, "%s: sample %llu (channel %u) is not a finite number", path, (unsigned long long)i, c);
                goto done;
            }
            s = c ? s + v : v;
        }
        x[i] = ch > 1 ? s / fch : s;
    }
    a->n = (int)nfr; a->rate = (int)rate; a->x = x; x = NULL;
    rc = 0;
done:
    free(x);
    g4_unmap_file(map, size);
    return rc;
}

void g4_audio_free(g4_audio *a)
{
    if (!a) return;
    free(a->x);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------------------------------------
 * Resampler
 * ------------------------------------------------------------------------------------------- */
static double bessel_i0(double x)          /* modified Bessel function I0, power series */
{
    double sum = 1.0, term = 1.0, q = x * x / 4.0;
    for (int k = 1; k < 200; k++) {
        term *= q / ((double)k * k);
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

typedef struct {
    double r;          /* 2 fc / rin: normalized cut-off of the sinc (<= 1) */
    double H;          /* half-width in input samples */
    double beta, i0b;  /* Kaiser parameter and I0(beta) */
    int K;             /* taps on each side: j in [i - K + 1, i + K] */
    int64_t P, Q;      /* output k sits at input position k * Q / P (reduced rin / rout) */
} rs_design;

static double rs_kernel(const rs_design *d, double t)   /* t: distance in input samples */
{
    if (fabs(t) >= d->H) return 0.0;
    double v = t / d->H, w = bessel_i0(d->beta * sqrt(1.0 - v * v)) / d->i0b;
    double u = d->r * t, s = (u == 0.0) ? 1.0 : sin(M_PI * u) / (M_PI * u);
    return d->r * s * w;
}

static int64_t gcd64(int64_t a, int64_t b) { while (b) { int64_t t = a % b; a = b; b = t; } return a; }

/* taps for phase m (output position i + m/P): tap[t] multiplies x[i - K + 1 + t] */
static void rs_phase(const rs_design *d, int64_t m, double *tap)
{
    double frac = (double)m / (double)d->P;
    for (int t = 0; t < 2 * d->K; t++) tap[t] = rs_kernel(d, (double)(d->K - 1 - t) + frac);
}

/* in (any supported rate) -> out (a new buffer at `rate`; out must be another struct than in) */
int g4_audio_resample(const g4_audio *in, int rate, g4_audio *out, g4_err *err)
{
    if (out == in) return g4_fail(err, "resample: output and input are the same struct");
    memset(out, 0, sizeof *out);
    if (!in || !in->x || in->n <= 0) return g4_fail(err, "resample: empty input");
    if (in->rate < G4_RESAMPLE_MIN_RATE || in->rate > G4_RESAMPLE_MAX_RATE)
        return g4_fail(err, "resample: input sample rate %d Hz outside the supported %d..%d Hz",
                       in->rate, G4_RESAMPLE_MIN_RATE, G4_RESAMPLE_MAX_RATE);
    if (rate < G4_RESAMPLE_MIN_RATE || rate > G4_RESAMPLE_MAX_RATE)
        return g4_fail(err, "resample: target sample rate %d Hz outside the supported %d..%d Hz",
                       rate, G4_RESAMPLE_MIN_RATE, G4_RESAMPLE_MAX_RATE);
    int64_t nout = ((int64_t)in->n * rate + in->rate - 1) / in->rate;   /* ceil(n * rate / rin) */
    if (nout > INT_MAX) return g4_fail(err, "resample: %lld output samples, more than g4 handles", (long long)nout);
    float *y = malloc((size_t)nout * sizeof *y);                         /* [nout] output samples */
    if (!y) return g4_fail(err, "resample: out of memory for %lld samples", (long long)nout);
    if (in->rate == rate) {
        memcpy(y, in->x, (size_t)in->n * sizeof *y);
        out->n = in->n; out->rate = rate; out->x = y;
        return 0;
    }

    rs_design d;
    double flo = in->rate < rate ? in->rate : rate;          /* the lower of the two rates, Hz */
    double fc = 0.5 * (RS_PASS + 1.0) * 0.5 * flo;           /* cut-off: middle of the transition */
    double dF = (1.0 - RS_PASS) * 0.5 * flo;                 /* transition width, Hz */
    double L = (RS_ATTEN - 7.95) / (2.285 * 2.0 * M_PI * dF);/* Kaiser length, seconds */
    d.r = 2.0 * fc / in->rate;
    d.H = 0.5 * L * in->rate;
    d.beta = 0.1102 * (RS_ATTEN - 8.7);
    d.i0b = bessel_i0(d.beta);
    d.K = (int)ceil(d.H) + 1;
    int64_t g = gcd64(in->rate, rate);
    d.P = rate / g; d.Q = in->rate / g;

    size_t ntap = (size_t)2 * d.K;
    double *table = NULL;   /* [P][2K]: the taps of every phase, or NULL */
    double *tap = NULL;     /* [2K]: one phase's taps, computed per output when there is no table */
    /* a table of all P phases pays off when there are more outputs than phases and it fits */
    if (d.P < nout && (size_t)d.P <= G4_RESAMPLE_TABLE_MAX / sizeof(double) / ntap) {
        table = malloc((size_t)d.P * ntap * sizeof *table);
        if (table) for (int64_t m = 0; m < d.P; m++) rs_phase(&d, m, table + (size_t)m * ntap);
    }
    if (!table) {
        tap = malloc(ntap * sizeof *tap);
        if (!tap) { free(y); return g4_fail(err, "resample: out of memory"); }
    }
    const int64_t n = in->n;
    for (int64_t k = 0; k < nout; k++) {
        int64_t pos = k * d.Q;                /* k * Q / P = i + m / P */
        int64_t i = pos / d.P, m = pos % d.P;
        const double *h;
        if (table) h = table + (size_t)m * ntap;
        else { rs_phase(&d, m, tap); h = tap; }
        int64_t j0 = i - d.K + 1, t0 = 0, t1 = (int64_t)ntap;
        if (j0 < 0) t0 = -j0;
        if (j0 + t1 > n) t1 = n - j0;
        double acc = 0.0;
        for (int64_t t = t0; t < t1; t++) acc += h[t] * in->x[j0 + t];
        y[k] = (float)acc;
    }
    free(table); free(tap);
    out->n = (int)nout; out->rate = rate; out->x = y;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Framing and the length limit
 * ------------------------------------------------------------------------------------------- */
/* n16k samples at 16 kHz -> frame count; fails when over max_frames (> 0) */
static int audio_check_frames(int64_t n16k, int max_frames, int64_t *nf, g4_err *err)
{
    if (max_frames < 0) return g4_fail(err, "bad max_frames %d (0 = no limit)", max_frames);
    if (n16k <= 0) return g4_fail(err, "audio is empty (0 samples)");
    *nf = (n16k + G4_AUDIO_FRAME - 1) / G4_AUDIO_FRAME;
    if (max_frames > 0 && *nf > max_frames)
        return g4_fail(err, "audio clip is %.2f s (%lld frames of 40 ms), longer than the %.2f s limit "
                       "(%d frames); raise it with --max-audio-seconds",
                       (double)n16k / G4_AUDIO_RATE, (long long)*nf,
                       (double)max_frames * G4_AUDIO_FRAME / G4_AUDIO_RATE, max_frames);
    if (*nf > INT_MAX / G4_AUDIO_FRAME) return g4_fail(err, "audio clip of %lld frames is too long", (long long)*nf);
    return 0;
}

int g4_audio_frames(const g4_audio *a16k, int max_frames, float **frames, int *n, g4_err *err)
{
    *frames = NULL; *n = 0;
    if (!a16k || !a16k->x || a16k->n <= 0) return g4_fail(err, "audio is empty (0 samples)");
    if (a16k->rate != G4_AUDIO_RATE)
        return g4_fail(err, "audio at %d Hz: frames need %d Hz (resample first)", a16k->rate, G4_AUDIO_RATE);
    int64_t nf;
    if (audio_check_frames(a16k->n, max_frames, &nf, err)) return -1;
    /* frames [nf][640]: frame t = samples [640 t, 640 t + 640), zeros past the end */
    float *f = calloc((size_t)nf * G4_AUDIO_FRAME, sizeof *f);
    if (!f) return g4_fail(err, "out of memory for %lld audio frames", (long long)nf);
    memcpy(f, a16k->x, (size_t)a16k->n * sizeof *f);
    *frames = f; *n = (int)nf;
    return 0;
}

int g4_audio_prepare(const char *path, int max_frames, float **frames, int *n, g4_err *err)
{
    *frames = NULL; *n = 0;
    g4_audio a, r;
    if (g4_audio_load_wav(path, &a, err)) return -1;
    g4_err e2;
    int rc = -1;
    /* the length limit is checked on the resampled length before any resampling work */
    int64_t n16k = ((int64_t)a.n * G4_AUDIO_RATE + a.rate - 1) / a.rate, nf;
    if (audio_check_frames(n16k, max_frames, &nf, &e2)) { g4_fail(err, "%s: %s", path, e2.msg); goto out; }
    if (a.rate != G4_AUDIO_RATE) {
        if (g4_audio_resample(&a, G4_AUDIO_RATE, &r, &e2)) { g4_fail(err, "%s: %s", path, e2.msg); goto out; }
        g4_audio_free(&a);
        a = r;
    }
    if (g4_audio_frames(&a, max_frames, frames, n, &e2)) { g4_fail(err, "%s: %s", path, e2.msg); goto out; }
    rc = 0;
out:
    g4_audio_free(&a);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Embedder
 * ------------------------------------------------------------------------------------------- */
int g4_audio_embed(const g4_model *m, const g4_kernels *k, const float *frames, int n,
                   float *out, int bf16, g4_err *err)
{
    const char *src = m && m->source[0] ? m->source : "model";
    if (!m || !m->mm.has_audio) return g4_fail(err, "%s: no audio embedder in this model (embed_audio / mm.a.* weights missing)", src);
    const g4_tensor *W = &m->mm.aud_proj;        /* rows d_model, cols 640 */
    if (W->ne[0] != G4_AUDIO_FRAME || W->ne[1] != m->cfg.d_model || !W->data)
        return g4_fail(err, "%s: audio projection is [%lld, %lld], expected [%d, %d] (rows d_model, cols 640)",
                       src, (long long)W->ne[1], (long long)W->ne[0], m->cfg.d_model, G4_AUDIO_FRAME);
    if (!frames || !out || n <= 0) return g4_fail(err, "%s: audio embed: no frames", src);
    float *h = malloc((size_t)n * G4_AUDIO_FRAME * sizeof *h);   /* [n][640] normed frames */
    if (!h) return g4_fail(err, "%s: out of memory for %d audio frames", src, n);
    float x[G4_AUDIO_FRAME];
    for (int t = 0; t < n; t++) {
        const float *f = frames + (size_t)t * G4_AUDIO_FRAME;
        float *ht = h + (size_t)t * G4_AUDIO_FRAME;
        /* the reference casts the frame to the projection weight dtype (bf16 in the checkpoint) */
        for (int i = 0; i < G4_AUDIO_FRAME; i++) x[i] = g4_round_bf16(f[i]);
        k->rmsnorm(ht, x, NULL, G4_AUDIO_FRAME, m->cfg.eps);     /* weightless, fp32 inside */
        if (bf16) for (int i = 0; i < G4_AUDIO_FRAME; i++) ht[i] = g4_round_bf16(ht[i]);
    }
    k->matmul(out, W, h, n);                                     /* out [n][d_model] */
    if (bf16) for (size_t i = 0; i < (size_t)n * m->cfg.d_model; i++) out[i] = g4_round_bf16(out[i]);
    free(h);
    return 0;
}
