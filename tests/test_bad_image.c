/* test_bad_image.c - bad PNG input to ref/image.c: every case must give -1 (or NULL outputs), one
 * error line that names the file, and no crash, no leak (make test also builds this file with
 * AddressSanitizer + UBSan, whose leak checker runs at exit).
 *
 * Files: tests/data/img/bad_*.png (crafted by tests/data/img/make.py: zero and huge IHDR sizes,
 * invalid bit depth, CRC error, corrupt zlib stream, missing rows, short tRNS, not a PNG, empty),
 * a missing file, and, made here at run time in $TMPDIR, every prefix of two good PNGs
 * (truncation at every offset) and every single-byte corruption of a small one.
 */
#include "g4.h"
#include "harness.h"

#include <unistd.h>

#define IMG_DIR "tests/data/img"

static char tmp_path[512];

/* one load that must fail: -1, img cleared, message "<path>: ..." */
static int expect_fail(const char *path, const char *what, int quiet)
{
    g4_image img = {123, 456, (uint8_t *)&img};   /* garbage the loader must overwrite */
    g4_err err = {{0}};
    int rc = g4_image_load_png(path, &img, &err);
    CHECK(rc != 0, "%s: %s was accepted (%dx%d)", path, what, img.w, img.h);
    if (rc == 0) { g4_image_free(&img); return 0; }
    CHECK(img.rgb == NULL && img.w == 0 && img.h == 0, "%s: outputs not cleared on error", path);
    CHECK(strncmp(err.msg, path, strlen(path)) == 0 && err.msg[strlen(path)] == ':',
          "%s: message does not start with the path: '%s'", path, err.msg);
    CHECK(strchr(err.msg, '\n') == NULL, "%s: message has a newline", path);
    if (!quiet) printf("    %-16s -> %s\n", what, err.msg);
    return 1;
}

static void test_bad_files(void)
{
    static const struct { const char *file, *what, *needle; } cases[] = {
        {"bad_empty.png", "empty file", "empty"},
        {"bad_notpng.png", "not a PNG", "not a PNG"},
        {"bad_zero_w.png", "IHDR width 0", "width is zero"},
        {"bad_zero_h.png", "IHDR height 0", "height is zero"},
        {"bad_huge.png", "60000x60000", "too large"},
        {"bad_wide.png", "70000x1", "too large"},
        {"bad_depth.png", "bit depth 3", "bit depth"},
        {"bad_crc.png", "IDAT CRC error", "CRC"},
        {"bad_zlib.png", "corrupt deflate", "IDAT"},
        {"bad_short.png", "missing rows", ""},
        {"bad_trns.png", "1-byte tRNS", "tRNS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", IMG_DIR, cases[i].file);
        g4_image img;
        g4_err err = {{0}};
        if (g4_image_load_png(path, &img, &err) == 0) {
            CHECK(0, "%s (%s) was accepted", path, cases[i].what);
            g4_image_free(&img);
            continue;
        }
        expect_fail(path, cases[i].what, 0);
        CHECK(strstr(err.msg, cases[i].needle) != NULL, "%s: message '%s' lacks '%s'", path, err.msg, cases[i].needle);
    }
    expect_fail("tests/data/img/no_such_file.png", "missing file", 0);
    expect_fail(IMG_DIR, "a directory", 0);
    expect_fail("/dev/null", "/dev/null", 0);

    /* the whole front end on a bad file: -1, outputs NULL / 0 */
    float *p = (float *)1;
    int *pos = (int *)1, n = 7;
    g4_err err = {{0}};
    CHECK(g4_image_prepare(IMG_DIR "/bad_crc.png", 280, &p, &pos, &n, &err) != 0 && !p && !pos && n == 0,
          "prepare on a bad PNG");
    CHECK(strstr(err.msg, "bad_crc.png") != NULL, "prepare message '%s'", err.msg);
    CHECK(g4_image_prepare(IMG_DIR "/tiny.png", 100, &p, &pos, &n, &err) != 0 && !p && !pos,
          "prepare with budget 100");
    CHECK(strstr(err.msg, "tiny.png") && strstr(err.msg, "max_soft_tokens"), "prepare message '%s'", err.msg);
    printf("    prepare: %s\n", err.msg);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *b = malloc(1 << 20);
    *n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    return b;
}

static int write_all(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(b, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* every prefix of a good file is an error (the reader checks the file up to IEND) */
static void truncate_all(const char *name)
{
    char src[256];
    snprintf(src, sizeof src, "%s/%s", IMG_DIR, name);
    size_t n = 0;
    uint8_t *b = read_all(src, &n);
    CHECK(b && n > 100, "cannot read %s", src);
    if (!b) return;
    int nfail = 0, ntry = 0;
    for (size_t len = 0; len < n; len++) {
        if (write_all(tmp_path, b, len) != 0) { CHECK(0, "cannot write %s", tmp_path); break; }
        ntry++;
        nfail += expect_fail(tmp_path, "truncated", 1);
    }
    g4_err err = {{0}};
    write_all(tmp_path, b, n / 2);
    g4_image img;
    g4_image_load_png(tmp_path, &img, &err);
    printf("    %s cut at each of %d offsets: %d errors (e.g. %s)\n", name, ntry, nfail, err.msg);
    free(b);
}

static void test_truncated(void)
{
    truncate_all("tiny.png");     /* 1 IDAT */
    truncate_all("pal4.png");     /* PLTE, interlaced */
}

/* every single-byte corruption of a small file: an error or a well-formed image, never a crash */
static void test_corrupt_bytes(void)
{
    char src[256];
    snprintf(src, sizeof src, "%s/pal.png", IMG_DIR);
    size_t n = 0;
    uint8_t *b = read_all(src, &n);
    CHECK(b && n > 100, "cannot read %s", src);
    if (!b) return;
    int nerr = 0, nok = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t keep = b[i];
        b[i] ^= (uint8_t)(i % 7 == 0 ? 0x80 : 0x5A);
        if (write_all(tmp_path, b, n) != 0) { CHECK(0, "cannot write %s", tmp_path); b[i] = keep; break; }
        b[i] = keep;
        g4_image img;
        g4_err err = {{0}};
        if (g4_image_load_png(tmp_path, &img, &err) == 0) {
            CHECK(img.w > 0 && img.h > 0 && img.rgb, "accepted but empty");
            g4_image_free(&img);
            nok++;
        } else {
            CHECK(strstr(err.msg, tmp_path) == err.msg, "message '%s'", err.msg);
            nerr++;
        }
    }
    /* every byte is under a CRC, a length or the signature, so nothing should load */
    CHECK(nok == 0, "%d corrupted files loaded", nok);
    printf("    pal.png with each of its %zu bytes corrupted: %d errors, %d loaded\n", n, nerr, nok);
    free(b);
}

/* bad arguments to the size functions */
static void test_bad_sizes(void)
{
    int th = 0, tw = 0;
    g4_err err = {{0}};
    CHECK(g4_image_target_size(10, 10, 0, &th, &tw, &err) != 0, "budget 0");
    CHECK(g4_image_target_size(0, 0, 280, &th, &tw, &err) != 0, "0x0");
    CHECK(g4_image_target_size(-5, 10, 280, &th, &tw, &err) != 0, "negative height");
    g4_image in = {0, 0, NULL}, out;
    CHECK(g4_image_resize(&in, 48, 48, &out, &err) != 0 && out.rgb == NULL, "empty input resized");
    uint8_t px[3] = {1, 2, 3};
    g4_image one = {1, 1, px};
    CHECK(g4_image_resize(&one, -1, 48, &out, &err) != 0 && out.rgb == NULL, "negative target");
    CHECK(g4_image_resize(&one, 65536, 48, &out, &err) != 0 && out.rgb == NULL, "target side 65536");
    CHECK(g4_image_resize(&one, 20000, 20000, &out, &err) != 0 && out.rgb == NULL, "target 4e8 pixels");
    printf("    resize 1x1 -> 20000x20000: %s\n", err.msg);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/g4_bad_image_%d.png", t && *t ? t : "/tmp", (int)getpid());
    RUN(test_bad_files);
    RUN(test_truncated);
    RUN(test_corrupt_bytes);
    RUN(test_bad_sizes);
    remove(tmp_path);
    return h_finish();
}
