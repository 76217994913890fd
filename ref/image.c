/* image.c - the vision front end before the embedder: PNG -> RGB -> resized RGB -> 48x48 patches.
 *
 * Follows spec 2.1 (preprocessing: RGB conversion, token-budget resize policy, antialiased bicubic
 * resize, x * (1/255)) and spec 2.2 (patchify: raster-order 48x48 blocks, HWC inside a block,
 * positions x = column, y = row). The reference is the Hugging Face `Gemma4UnifiedImageProcessor`
 * (torchvision backend) fed a PIL image; golden/gen_image.py checks every rule below against it.
 *
 * 1. g4_image_load_png: file -> g4_image [h][w][3] uint8 RGB, converted exactly as HF's
 *    convert_to_rgb does with Pillow (PIL decodes, then `convert("RGB")`, or with transparency
 *    `convert("RGBA")` + alpha_composite onto opaque white + `convert("RGB")`):
 *      - 16-bit samples keep their high byte (PIL unpacks "RGB;16B" etc.) - except 16-bit gray,
 *        which PIL opens as mode I;16 and converts by CLIPPING: min(v, 255). Faithfully so: a
 *        16-bit gray PNG comes out nearly white, as in the reference.
 *      - 1/2/4-bit gray scale to 0..255 (v * 255, v * 85, v * 17); palettes map through PLTE,
 *        an index past the end of PLTE is black (0, 0, 0).
 *      - alpha over white: out = (c*a + 255*(255-a) + 127) / 255 (integer division; equal to
 *        Pillow's fixed-point alpha_composite for all 65536 (c, a), checked by gen_image.py).
 *      - tRNS (read raw, PIL's rules): palette: alpha per entry (missing entries 255); gray and
 *        RGB: a pixel whose 8-bit value(s) equal (t & 255) is fully transparent (for 1-bit
 *        gray the key is 255 if t != 0 else 0). Ignored on gray+alpha / RGBA images.
 *    Nothing else (gamma, ICC, EXIF orientation) is applied: the PIL path ignores it too.
 *    Errors: libpng's setjmp/longjmp handler turns any decode problem into one message
 *    "<path>: ..."; dimensions are checked (1..65535 per side, at most 2^28 pixels) before any
 *    pixel buffer is allocated; every buffer is freed on every path.
 * 2. g4_image_target_size: spec 2.1 step 2 (double precision, same operations as HF's Python).
 * 3. g4_image_resize: torch's CPU kernel for uint8 antialiased bicubic (what torchvision's
 *    resize(BICUBIC, antialias=True) runs on a uint8 tensor): separable, horizontal pass first
 *    (into a uint8 image), then vertical; per output sample PIL-style support and weights in
 *    double, normalised, then converted to int16 fixed point with a precision chosen per pass;
 *    integer accumulation with +0.5 rounding and a clamp to 0..255.
 * 4. g4_image_patchify / g4_image_prepare: spec 2.2.
 */
#include "g4.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 65535                     /* PNG allows 2^31-1; we refuse more than this */
#define MAX_PIXELS ((int64_t)1 << 28)      /* 268 M pixels: 805 MB of RGB */

void g4_image_free(g4_image *img)
{
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* ---------------------------------------------------------------------------------------------
 * 1. PNG decoding (libpng) and conversion to RGB as PIL does it
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    const char *path;
    FILE *f;
    png_structp png;
    png_infop info;
    uint8_t *raw;          /* [h][rowbytes] decoded samples (1 byte, or 2 big-endian bytes each) */
    png_bytep *rows;       /* [h] pointers into raw */
    int has_trns;          /* a tRNS chunk was seen (raw bytes below) */
    uint8_t trns[256];
    int trns_len;
    char msg[200];         /* libpng's error message */
    char warn[200];        /* its last warning (it explains "Invalid IHDR data") */
} png_dec;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_dec *d = (png_dec *)png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    png_dec *d = (png_dec *)png_get_error_ptr(png);
    snprintf(d->warn, sizeof d->warn, "%s", msg ? msg : "");
}

static void on_png_read(png_structp png, png_bytep out, size_t n)
{
    png_dec *d = (png_dec *)png_get_io_ptr(png);
    if (fread(out, 1, n, d->f) != n)
        png_error(png, ferror(d->f) ? "read error" : "unexpected end of file (truncated PNG)");
}

/* tRNS is taken raw (PIL's semantics differ from libpng's validation, e.g. a palette tRNS longer
 * than PLTE is kept by PIL and dropped by libpng). Returning 1 = handled. */
static int on_png_chunk(png_structp png, png_unknown_chunkp chunk)
{
    png_dec *d = (png_dec *)png_get_user_chunk_ptr(png);
    if (memcmp(chunk->name, "tRNS", 4) != 0) return 0;
    size_t n = chunk->size < sizeof d->trns ? chunk->size : sizeof d->trns;
    memcpy(d->trns, chunk->data, n);
    d->trns_len = (int)n;
    d->has_trns = 1;
    return 1;
}

/* PIL's 8-bit value of a gray sample of `depth` bits (16-bit gray is mode I;16: clipped) */
static int gray8(int v, int depth)
{
    switch (depth) {
    case 1: return v ? 255 : 0;
    case 2: return v * 85;
    case 4: return v * 17;
    case 8: return v;
    default: return v > 255 ? 255 : v;
    }
}

/* alpha-composite colour c with alpha a onto opaque white, rounded (Pillow's result) */
static uint8_t over_white(int c, int a)
{
    return (uint8_t)((c * a + 255 * (255 - a) + 127) / 255);
}

/* Decode into d->raw, convert into img. Called with d->png/info/f set up; any libpng error
 * longjmps back here and returns -1 (the caller frees everything reachable from d). */
static int png_decode(png_dec *d, g4_image *img, g4_err *err)
{
    if (setjmp(png_jmpbuf(d->png))) {
        if (d->warn[0])
            return g4_fail(err, "%s: %s (%s)", d->path, d->msg, d->warn);
        return g4_fail(err, "%s: %s", d->path, d->msg);
    }

    png_set_read_fn(d->png, d, on_png_read);
    png_set_sig_bytes(d->png, 8);
    png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_ALWAYS, (png_const_bytep)"tRNS", 1);
    png_set_read_user_chunk_fn(d->png, d, on_png_chunk);
    png_set_benign_errors(d->png, 1);        /* libpng's read default: benign errors warn */
    /* a CRC error in any chunk is an error (PIL raises "broken PNG file" too); libpng's
     * default would drop a bad ancillary chunk, e.g. a tRNS, and change the picture */
    png_set_crc_action(d->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    png_read_info(d->png, d->info);

    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(d->png, d->info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    if (w32 == 0 || h32 == 0)
        return g4_fail(err, "%s: zero image size %ux%u", d->path, (unsigned)w32, (unsigned)h32);
    if (w32 > MAX_SIDE || h32 > MAX_SIDE || (int64_t)w32 * h32 > MAX_PIXELS)
        return g4_fail(err, "%s: image too large: %ux%u (limits: sides <= %d, at most %lld pixels)",
                       d->path, (unsigned)w32, (unsigned)h32, MAX_SIDE, (long long)MAX_PIXELS);
    const int w = (int)w32, h = (int)h32;

    png_set_packing(d->png);                 /* 1/2/4-bit samples -> one byte each, unscaled */
    png_set_interlace_handling(d->png);      /* png_read_image de-interlaces Adam7 */
    png_read_update_info(d->png, d->info);
    const int nch = png_get_channels(d->png, d->info);
    const int bps = depth == 16 ? 2 : 1;     /* bytes per sample in d->raw */
    const size_t rowbytes = png_get_rowbytes(d->png, d->info);
    if (rowbytes != (size_t)w * nch * bps)
        return g4_fail(err, "%s: unexpected row size %zu for %dx%d, %d channels, %d-bit",
                       d->path, rowbytes, w, h, nch, depth);

    d->raw = malloc(rowbytes * (size_t)h);
    d->rows = malloc(sizeof *d->rows * (size_t)h);
    img->rgb = malloc((size_t)w * h * 3);
    if (!d->raw || !d->rows || !img->rgb)
        return g4_fail(err, "%s: out of memory for a %dx%d image", d->path, w, h);
    for (int y = 0; y < h; y++) d->rows[y] = d->raw + (size_t)y * rowbytes;
    png_read_image(d->png, d->rows);
    png_read_end(d->png, NULL);              /* checks the rest of the file up to IEND */

    /* palette table: PLTE entries, black past the end; alpha from tRNS, 255 past its end */
    uint8_t pal[256][4];
    for (int i = 0; i < 256; i++) { pal[i][0] = pal[i][1] = pal[i][2] = 0; pal[i][3] = 255; }
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte = NULL;
        int nplte = 0;
        if (!png_get_PLTE(d->png, d->info, &plte, &nplte))
            return g4_fail(err, "%s: palette image without a PLTE chunk", d->path);
        for (int i = 0; i < nplte && i < 256; i++) {
            pal[i][0] = plte[i].red; pal[i][1] = plte[i].green; pal[i][2] = plte[i].blue;
        }
        if (d->has_trns)
            for (int i = 0; i < d->trns_len; i++) pal[i][3] = d->trns[i];
    }
    /* gray / RGB colour key (PIL: the 8-bit value(s) compared with t & 255) */
    int key = 0, key_rgb[3] = {0, 0, 0};
    const int use_key = d->has_trns && (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_RGB);
    if (use_key) {
        int need = ctype == PNG_COLOR_TYPE_GRAY ? 2 : 6;
        if (d->trns_len < need)      /* PIL raises "Truncated tRNS chunk" */
            return g4_fail(err, "%s: tRNS chunk too short (%d bytes, needs %d)", d->path, d->trns_len, need);
        if (ctype == PNG_COLOR_TYPE_GRAY) {
            int t = d->trns[0] << 8 | d->trns[1];
            key = depth == 1 ? (t ? 255 : 0) : (t & 255);
        } else {
            for (int c = 0; c < 3; c++) key_rgb[c] = d->trns[2 * c + 1];  /* low byte = t & 255 */
        }
    }

    for (int y = 0; y < h; y++) {
        const uint8_t *s = d->rows[y];
        uint8_t *o = img->rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++, o += 3) {
            int r, g, b, a = 255;
            const uint8_t *p = s + (size_t)x * nch * bps;   /* high byte first when 16-bit */
            switch (ctype) {
            case PNG_COLOR_TYPE_GRAY:
                r = g = b = gray8(bps == 2 ? (p[0] << 8 | p[1]) : p[0], depth);
                if (use_key && r == key) a = 0;
                break;
            case PNG_COLOR_TYPE_GRAY_ALPHA:
                r = g = b = p[0];
                a = p[bps];
                break;
            case PNG_COLOR_TYPE_PALETTE:
                r = pal[p[0]][0]; g = pal[p[0]][1]; b = pal[p[0]][2]; a = pal[p[0]][3];
                break;
            case PNG_COLOR_TYPE_RGB:
                r = p[0]; g = p[bps]; b = p[2 * bps];
                if (use_key && r == key_rgb[0] && g == key_rgb[1] && b == key_rgb[2]) a = 0;
                break;
            default: /* PNG_COLOR_TYPE_RGB_ALPHA */
                r = p[0]; g = p[bps]; b = p[2 * bps]; a = p[3 * bps];
                break;
            }
            if (a != 255) { r = over_white(r, a); g = over_white(g, a); b = over_white(b, a); }
            o[0] = (uint8_t)r; o[1] = (uint8_t)g; o[2] = (uint8_t)b;
        }
    }
    img->w = w;
    img->h = h;
    return 0;
}

int g4_image_load_png(const char *path, g4_image *img, g4_err *err)
{
    img->w = img->h = 0;
    img->rgb = NULL;
    png_dec d;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.f = fopen(path, "rb");
    if (!d.f) return g4_fail(err, "%s: cannot open: %s", path, strerror(errno));

    uint8_t sig[8];
    size_t got = fread(sig, 1, sizeof sig, d.f);
    int rc = -1;
    if (ferror(d.f))
        g4_fail(err, "%s: cannot read: %s", path, strerror(errno));
    else if (got == 0)
        g4_fail(err, "%s: empty file (not a PNG)", path);
    else if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0)
        g4_fail(err, "%s: not a PNG file (bad signature)", path);
    else if (!(d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, on_png_error, on_png_warning)) ||
             !(d.info = png_create_info_struct(d.png)))
        g4_fail(err, "%s: out of memory (libpng)", path);
    else
        rc = png_decode(&d, img, err);

    if (d.png) png_destroy_read_struct(&d.png, d.info ? &d.info : NULL, NULL);
    free(d.rows);
    free(d.raw);
    fclose(d.f);
    if (rc != 0) g4_image_free(img);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * 2. Target size (spec 2.1 step 2; HF get_aspect_ratio_preserving_size)
 * ------------------------------------------------------------------------------------------- */
int g4_image_target_size(int h, int w, int max_soft_tokens, int *th, int *tw, g4_err *err)
{
    const int m = G4_PATCH;                       /* pooling_kernel_size 3 x patch_size 16 */
    if (max_soft_tokens != 70 && max_soft_tokens != 140 && max_soft_tokens != 280 &&
        max_soft_tokens != 560 && max_soft_tokens != 1120)
        return g4_fail(err, "max_soft_tokens %d not supported (one of 70, 140, 280, 560, 1120)",
                       max_soft_tokens);
    if (h <= 0 || w <= 0)
        return g4_fail(err, "image size %dx%d (width x height) is empty", w, h);
    const int64_t max_patches = (int64_t)max_soft_tokens * 9;    /* 16-px teacher patches */
    const int64_t target_px = max_patches * 16 * 16;
    /* the same double operations as the Python reference, in the same order */
    const double factor = sqrt((double)target_px / (double)((int64_t)h * w));
    int64_t H = (int64_t)floor(factor * h / m) * m;
    int64_t W = (int64_t)floor(factor * w / m) * m;
    /* Unreachable for the allowed budgets (it needs target_px < 48^2); kept as in the reference. */
    if (H == 0 && W == 0)
        return g4_fail(err, "image %dx%d (width x height) would resize to 0x0", w, h);
    const int64_t max_side = (max_patches / 9) * m;
    if (H == 0) {                                  /* very wide: one row of blocks */
        H = m;
        W = (int64_t)floor((double)w / (double)h) * m;
        if (W > max_side) W = max_side;
    } else if (W == 0) {                           /* very tall: one column of blocks */
        W = m;
        H = (int64_t)floor((double)h / (double)w) * m;
        if (H > max_side) H = max_side;
    }
    if (H * W > target_px)
        return g4_fail(err, "image %dx%d (width x height): target %lldx%lld exceeds %lld patches",
                       w, h, (long long)W, (long long)H, (long long)max_patches);
    *th = (int)H;
    *tw = (int)W;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * 3. Antialiased bicubic resize on uint8 (torch's separable CPU kernel with int16 weights)
 * ------------------------------------------------------------------------------------------- */
/* Keys cubic with a = -0.5 (PIL's and torch's antialias filter), evaluated in the same order */
static double cubic_aa(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
}

/* Weights of one resampling pass in -> out samples: for output i, input samples
 * xmin[i] .. xmin[i] + xsize[i] - 1 with integer weights wt[i * kmax + j] (int16 range),
 * fixed point with `prec` fractional bits. */
typedef struct {
    int kmax, prec;
    int *xmin, *xsize;     /* [out] */
    int32_t *wt;           /* [out][kmax] */
} aa_pass;

static void aa_pass_free(aa_pass *p) { free(p->xmin); free(p->xsize); free(p->wt); }

static int aa_pass_init(aa_pass *p, int in, int out)
{
    memset(p, 0, sizeof *p);
    const double scale = (double)in / (double)out;       /* > 1 shrinks */
    const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    p->kmax = (int)ceil(support) * 2 + 1;
    double *wd = malloc(sizeof *wd * (size_t)out * p->kmax);   /* [out][kmax] float weights */
    p->xmin = malloc(sizeof *p->xmin * (size_t)out);
    p->xsize = malloc(sizeof *p->xsize * (size_t)out);
    p->wt = malloc(sizeof *p->wt * (size_t)out * p->kmax);
    if (!wd || !p->xmin || !p->xsize || !p->wt) { free(wd); aa_pass_free(p); return -1; }

    double wmax = 0.0;
    for (int i = 0; i < out; i++) {
        double *wi = wd + (size_t)i * p->kmax;
        const double center = scale * (i + 0.5);
        int64_t lo = (int64_t)(center - support + 0.5);      /* C cast: truncation toward 0 */
        if (lo < 0) lo = 0;
        int64_t hi = (int64_t)(center + support + 0.5);
        if (hi > in) hi = in;
        int64_t n = hi - lo;
        if (n < 0) n = 0;
        if (n > p->kmax) n = p->kmax;                         /* rare rounding case, as torch */
        double total = 0.0;
        for (int j = 0; j < n; j++) {
            wi[j] = cubic_aa(((double)(j + lo) - center + 0.5) * invscale);
            total += wi[j];
        }
        if (total != 0.0)
            for (int j = 0; j < n; j++) {
                wi[j] /= total;
                if (wi[j] > wmax) wmax = wi[j];
            }
        for (int j = (int)n; j < p->kmax; j++) wi[j] = 0.0;
        p->xmin[i] = (int)lo;
        p->xsize[i] = (int)n;
    }
    /* precision: the largest number of fraction bits (< 22) that keeps 2 * wmax in int16 */
    int prec = 0;
    for (prec = 0; prec < 22; prec++)
        if ((int)(0.5 + wmax * (double)(1 << (prec + 1))) >= (1 << 15)) break;
    p->prec = prec;
    for (size_t k = 0; k < (size_t)out * p->kmax; k++) {
        double v = wd[k] * (double)(1 << prec);
        p->wt[k] = (int32_t)(v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v));   /* round half away */
    }
    free(wd);
    return 0;
}

/* one output sample: sum of src[(xmin + j) * stride] * w[j] in integers, +0.5, >> prec, clamp */
static uint8_t aa_sample(const uint8_t *src, size_t stride, const int32_t *w, int n, int prec)
{
    int64_t acc = (int64_t)1 << (prec - 1);
    for (int j = 0; j < n; j++) acc += (int64_t)src[(size_t)j * stride] * w[j];
    if (acc < 0) return 0;                 /* torch: clamp(acc >> prec, 0, 255) */
    acc >>= prec;
    return (uint8_t)(acc > 255 ? 255 : acc);
}

int g4_image_resize(const g4_image *in, int th, int tw, g4_image *out, g4_err *err)
{
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!in || !in->rgb || in->w <= 0 || in->h <= 0)
        return g4_fail(err, "resize: empty input image");
    if (th <= 0 || tw <= 0 || th > MAX_SIDE || tw > MAX_SIDE || (int64_t)th * tw > MAX_PIXELS)
        return g4_fail(err, "resize: bad target size %dx%d (width x height)", tw, th);
    const int w = in->w, h = in->h;
    const uint8_t *src = in->rgb;          /* [h][w][3] */
    uint8_t *tmp = NULL;                   /* [h][tw][3] after the horizontal pass */
    aa_pass p;

    out->rgb = malloc((size_t)th * tw * 3);
    if (!out->rgb) return g4_fail(err, "resize: out of memory (%dx%d)", tw, th);

    /* horizontal pass (along a row) first, as torch does, when the width changes */
    if (tw != w) {
        uint8_t *dst = th == h ? out->rgb : (tmp = malloc((size_t)h * tw * 3));
        if (!dst || aa_pass_init(&p, w, tw) != 0) goto oom;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < tw; x++)
                for (int c = 0; c < 3; c++)
                    dst[((size_t)y * tw + x) * 3 + c] =
                        aa_sample(src + ((size_t)y * w + p.xmin[x]) * 3 + c, 3,
                                  p.wt + (size_t)x * p.kmax, p.xsize[x], p.prec);
        aa_pass_free(&p);
        src = dst;                         /* now [h][tw][3] */
    }
    /* vertical pass (along a column) on the uint8 result of the first pass */
    if (th != h) {
        if (aa_pass_init(&p, h, th) != 0) goto oom;
        for (int y = 0; y < th; y++)
            for (int x = 0; x < tw; x++)
                for (int c = 0; c < 3; c++)
                    out->rgb[((size_t)y * tw + x) * 3 + c] =
                        aa_sample(src + ((size_t)p.xmin[y] * tw + x) * 3 + c, (size_t)tw * 3,
                                  p.wt + (size_t)y * p.kmax, p.xsize[y], p.prec);
        aa_pass_free(&p);
    }
    if (tw == w && th == h) memcpy(out->rgb, in->rgb, (size_t)h * w * 3);
    free(tmp);
    out->w = tw;
    out->h = th;
    return 0;
oom:
    free(tmp);
    free(out->rgb);
    out->rgb = NULL;
    return g4_fail(err, "resize: out of memory (%dx%d -> %dx%d)", w, h, tw, th);
}

/* ---------------------------------------------------------------------------------------------
 * 4. Patchify (spec 2.2) and the whole front end
 * ------------------------------------------------------------------------------------------- */
void g4_image_patchify(const g4_image *img, float *patches, int *pos)
{
    /* rescale like HF: float32(u8) * float32(1/255) (a multiply; x / 255 differs in the last bit
     * for 126 of the 256 values) */
    const float inv255 = (float)(1.0 / 255.0);
    const int bw = img->w / G4_PATCH, bh = img->h / G4_PATCH;   /* blocks per row / column */
    for (int by = 0; by < bh; by++)
        for (int bx = 0; bx < bw; bx++) {
            const int n = by * bw + bx;                          /* raster order */
            float *pt = patches + (size_t)n * G4_PATCH_DIM;      /* [48 rows][48 cols][3] */
            for (int r = 0; r < G4_PATCH; r++) {
                const uint8_t *row = img->rgb + (((size_t)by * G4_PATCH + r) * img->w + (size_t)bx * G4_PATCH) * 3;
                for (int k = 0; k < G4_PATCH * 3; k++) pt[r * G4_PATCH * 3 + k] = (float)row[k] * inv255;
            }
            pos[2 * n + 0] = bx;                                 /* x = block column */
            pos[2 * n + 1] = by;                                 /* y = block row */
        }
}

int g4_image_prepare(const char *path, int max_soft_tokens, float **patches, int **pos, int *n,
                     g4_err *err)
{
    *patches = NULL;
    *pos = NULL;
    *n = 0;
    g4_image img, rs;
    int th, tw;
    if (g4_image_load_png(path, &img, err) != 0) return -1;
    if (g4_image_target_size(img.h, img.w, max_soft_tokens, &th, &tw, err) != 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        g4_image_free(&img);
        return g4_fail(err, "%s: %s", path, msg);
    }
    if (th == img.h && tw == img.w) {
        rs = img;                              /* HF skips the resize when the size is right */
    } else {
        int rc = g4_image_resize(&img, th, tw, &rs, err);
        g4_image_free(&img);
        if (rc != 0) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return g4_fail(err, "%s: %s", path, msg);
        }
    }
    const int np = (th / G4_PATCH) * (tw / G4_PATCH);
    *patches = malloc(sizeof **patches * (size_t)np * G4_PATCH_DIM);
    *pos = malloc(sizeof **pos * (size_t)np * 2);
    if (!*patches || !*pos) {
        free(*patches); free(*pos);
        *patches = NULL; *pos = NULL;
        g4_image_free(&rs);
        return g4_fail(err, "%s: out of memory for %d patches", path, np);
    }
    g4_image_patchify(&rs, *patches, *pos);
    g4_image_free(&rs);
    *n = np;
    return 0;
}
