"""make.py - write the PNG test images of tests/data/img/ and the demo picture tests/data/sample.png.

    python3 tests/data/img/make.py        # any Python 3 (standard library only: zlib, struct)

Every file is drawn from integer formulas (no randomness beyond a fixed LCG), and written by the
tiny PNG encoder below, so the pixels are the same on every machine (the compressed bytes may
differ with the zlib version; only the pixels matter to the goldens).

Good images (decoded by ref/image.c, compared with PIL's decoding in golden/gen_image.py):

  name              size (w x h)  PNG type                          why
  square.png        60 x 60       RGB 8                             square, upscaled to the budget
  wide.png          90 x 40       RGB 8                             wide, non-multiple of 48
  tall.png          36 x 80       RGB 8                             tall
  thin.png          300 x 4       RGB 8                             thin: the H' = 0 rule at 70 tokens
  thin_tall.png     3 x 250       RGB 8                             the W' = 0 rule at 70 tokens
  tiny.png          30 x 20       RGB 8                             tiny, upscaled 16x
  odd.png           100 x 75      RGB 8, Adam7 interlaced           non-multiple of 48, interlace
  big.png           640 x 400     RGB 8                             downscaled (70 and 280 tokens)
  exact.png         384 x 384     RGB 8                             already the target size: no resize
  rgba.png          50 x 40       RGBA 8                            alpha over white, every alpha value
  rgba16.png        33 x 21       RGBA 16                           16-bit alpha
  pal.png           40 x 30       palette 8 + tRNS                  palette with transparency
  pal4.png          23 x 17       palette 4, interlaced             sub-byte palette
  pal_oob.png       23 x 9        palette 8, 10 PLTE entries, 12    indices past PLTE (black, as PIL);
                                  tRNS entries                      tRNS longer than PLTE (PIL keeps it)
  gray.png          32 x 32       gray 8                            gray
  gray16.png        31 x 29       gray 16                           16-bit gray (PIL mode I;16)
  gray1.png         19 x 13       gray 1                            1-bit gray
  gray2.png         21 x 11       gray 2, interlaced                2-bit gray
  graya.png         27 x 25       gray+alpha 8                      gray with alpha
  graya16.png       26 x 15       gray+alpha 16                     16-bit gray with alpha
  grayt.png         24 x 18       gray 8 + tRNS                     a transparent gray value
  rgbt.png          25 x 19       RGB 8 + tRNS                      a transparent colour
  rgb16.png         40 x 32       RGB 16, interlaced                16-bit RGB
  trns_g1.png       8 x 2         gray 1 + tRNS 256 (out of range)  PIL's key for 1-bit: 255 if t else 0
  trns_g2.png       8 x 2         gray 2 + tRNS 85 (out of range)   PIL compares the scaled value with t
  trns_g16.png      8 x 2         gray 16 + tRNS 300                key t & 255 = 44 against min(v, 255)
  trns_rgb16.png    6 x 2         RGB 16 + tRNS (0x1234, ...)       key (t & 255) against the high bytes
  trns_rgb8.png     6 x 2         RGB 8 + tRNS (300, 301, 302)      key (t & 255) for 8-bit too

Bad images (tests/test_bad_image.c; more are made at run time by truncating and corrupting):

  bad_zero_w.png    IHDR width 0 (valid CRC)
  bad_zero_h.png    IHDR height 0
  bad_huge.png      IHDR 60000 x 60000 (3.6e9 pixels), valid CRC, no image data
  bad_wide.png      IHDR 70000 x 1 (a side over 65535)
  bad_crc.png       a good image with one flipped bit in the IDAT CRC
  bad_zlib.png      IDAT with a recomputed CRC but corrupt zlib data
  bad_short.png     IDAT holds fewer rows than IHDR says
  bad_depth.png     IHDR bit depth 3 (invalid)
  bad_trns.png      gray 8-bit with a 1-byte tRNS (PIL: "Truncated tRNS chunk")
  bad_notpng.png    a text file
  bad_empty.png     0 bytes

tests/data/sample.png: a 200 x 150 RGB picture (sky, sun, hills, a house) for `make run`.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)


# ------------------------------------------------------------------------------------------------
# PNG encoder: color types 0, 2, 3, 4, 6; bit depths 1..16; optional PLTE/tRNS; Adam7.
# ------------------------------------------------------------------------------------------------
def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def pack_row(samples, depth):
    """samples: flat list of ints (already per channel) -> packed bytes for one row"""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def filter_row(row, prev, bpp, ft):
    f = bytearray(len(row))
    for x in range(len(row)):
        a = row[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if ft == 0:
            p = 0
        elif ft == 1:
            p = a
        elif ft == 2:
            p = b
        elif ft == 3:
            p = (a + b) >> 1
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        f[x] = (row[x] - p) & 255
    return f


def filter_rows(rows, bpp, best):
    """apply PNG filters: a different type on each row (0..4 in turn) to exercise unfiltering,
    or (best=True) the type with the smallest sum of |signed bytes| (the usual heuristic)"""
    out = bytearray()
    prev = bytes(len(rows[0])) if rows else b""
    for i, row in enumerate(rows):
        if best:
            cands = [(sum(min(v, 256 - v) for v in f), ft, f)
                     for ft in range(5) for f in [filter_row(row, prev, bpp, ft)]]
            _, ft, f = min(cands, key=lambda t: (t[0], t[1]))
        else:
            ft = i % 5
            f = filter_row(row, prev, bpp, ft)
        out.append(ft)
        out += f
        prev = row
    return bytes(out)


def encode_png(w, h, ctype, depth, pix, palette=None, trns=None, interlace=False, best=False):
    """pix(x, y) -> tuple of channel samples at `depth` (palette: the index)"""
    nch = CHANNELS[ctype]
    bpp = max(1, nch * depth // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        xs = list(range(x0, w, dx))
        ys = list(range(y0, h, dy))
        if not xs or not ys:
            continue
        rows = []
        for y in ys:
            samples = []
            for x in xs:
                samples.extend(pix(x, y))
            rows.append(pack_row(samples, depth))
        raw += filter_rows(rows, bpp, best)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette is not None:
        out += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    out += chunk(b"IEND", b"")
    return out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ------------------------------------------------------------------------------------------------
# Pixel formulas
# ------------------------------------------------------------------------------------------------
def lcg(seed):
    s = seed & 0xFFFFFFFF
    while True:
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        yield s >> 24


def pattern(w, h, seed):
    """RGB 8-bit test pattern: 4 quadrants (hard 0/255 checker, gradients, noise, rings) so the
    resampler sees edges that overshoot (clamping), smooth ramps and high-frequency noise."""
    g = lcg(seed)
    noise = [[(next(g), next(g), next(g)) for _ in range(w)] for _ in range(h)]
    img = []
    for y in range(h):
        row = []
        for x in range(w):
            left, top = x < (w + 1) // 2, y < (h + 1) // 2
            if left and top:
                v = 255 if ((x // 2) + (y // 3)) % 2 else 0
                px = (v, 255 - v, v if (x % 5) else 128)
            elif top:
                px = (x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x * y) % 256)
            elif left:
                px = noise[y][x]
            else:
                d = (x - 3 * w // 4) ** 2 + (y - 3 * h // 4) ** 2
                px = ((d * 7) % 256, (d * 3 + 80) % 256, 255 - (d * 5) % 256)
            row.append(px)
        img.append(row)
    return img


def big_pattern(w, h):
    """a larger, compressible RGB image for downscaling: stripes of several periods, a ramp, a
    disc and a thin grid, all from integer formulas"""
    img = []
    for y in range(h):
        row = []
        for x in range(w):
            r = (x * 255) // (w - 1)
            gch = 255 if (x // 3 + y // 5) % 2 else 20
            b = (y * 255) // (h - 1)
            if (x - w // 2) ** 2 + (y - h // 2) ** 2 < (h // 3) ** 2:
                r, gch, b = 240, (x + 2 * y) % 256, 30
            if x % 37 == 0 or y % 29 == 0:
                r, gch, b = 0, 0, 0
            row.append((r, gch, b))
        img.append(row)
    return img


def sample_picture(w=200, h=150):
    """the demo picture: sky gradient, sun, two hills, a house with a roof, door and window"""
    img = []
    for y in range(h):
        row = []
        for x in range(w):
            t = y / (h - 1)
            c = (int(90 + 100 * t), int(150 + 80 * t), 255)                       # sky
            if (x - 160) ** 2 + (y - 32) ** 2 <= 18 ** 2:
                c = (255, 220, 40)                                                 # sun
            hill1 = 105 + 12 * ((x - 50) / 60.0) ** 2
            hill2 = 118 + 10 * ((x - 160) / 55.0) ** 2
            if y >= min(hill1, hill2):
                c = (40 + (x * 3 + y) % 20, 150 - (y - 100) // 2, 50)             # grass
            if 45 <= x < 105 and 80 <= y < 125:
                c = (200, 60, 50)                                                  # wall
                if 65 <= x < 80 and 100 <= y < 125:
                    c = (110, 70, 30)                                              # door
                if 85 <= x < 99 and 88 <= y < 100:
                    c = (180, 220, 250) if (x - 85) % 7 and (y - 88) % 6 else (255, 255, 255)
            if 40 <= x < 110 and 55 <= y < 80 and abs(x - 75) <= (y - 55) * 35 // 25:
                c = (120, 40, 30)                                                  # roof
            row.append(c)
        img.append(row)
    return img


def from_img(img):
    return lambda x, y: img[y][x]


# ------------------------------------------------------------------------------------------------
def good_images():
    """name -> dict(w, h, ctype, depth, pix (function x, y -> samples), palette, trns, interlace,
    best); the source of truth for the raw samples (golden/gen_image.py imports this)"""
    out = {}

    def img(name, w, h, ctype, depth, pix, palette=None, trns=None, interlace=False, best=False):
        out[name] = dict(w=w, h=h, ctype=ctype, depth=depth, pix=pix, palette=palette, trns=trns,
                         interlace=interlace, best=best)

    rgb_cases = [("square", 60, 60, 1, False), ("wide", 90, 40, 2, False), ("tall", 36, 80, 3, False),
                 ("thin", 300, 4, 4, False), ("thin_tall", 3, 250, 5, False), ("tiny", 30, 20, 6, False),
                 ("odd", 100, 75, 7, True)]
    for name, w, h, seed, il in rgb_cases:
        img(name, w, h, 2, 8, from_img(pattern(w, h, seed)), interlace=il)
    img("big", 640, 400, 2, 8, from_img(big_pattern(640, 400)), best=True)
    img("exact", 384, 384, 2, 8, lambda x, y: (x * 255 // 383, y * 255 // 383, 255 if (x // 48 + y // 48) % 2 else 0),
        best=True)

    # RGBA 8: every alpha value occurs (a = (37x + 11y) mod 256 covers all 256 over 50x40)
    p = pattern(50, 40, 8)
    img("rgba", 50, 40, 6, 8, lambda x, y: p[y][x] + (((37 * x + 11 * y) % 256),))

    # RGBA 16: the 16-bit samples have independent high and low bytes
    g = lcg(9)
    v16 = [[tuple(next(g) << 8 | next(g) for _ in range(4)) for _ in range(33)] for _ in range(21)]
    for y in range(21):
        for x in range(3):   # fully transparent / opaque columns and a 16-bit boundary value
            v16[y][x] = v16[y][x][:3] + ((0, 65535, 0x00FF)[x],)
    img("rgba16", 33, 21, 6, 16, lambda x, y: v16[y][x])

    # palette 8 with tRNS for the first 10 entries (alpha 0, 25, ..., 225), 64 entries
    pal = [((i * 53) % 256, (i * 97 + 30) % 256, (255 - i * 4) % 256) for i in range(64)]
    img("pal", 40, 30, 3, 8, lambda x, y: ((x * 7 + y * 3) % 64,), palette=pal,
        trns=bytes([i * 25 for i in range(10)]))
    pal16 = [((i * 17) % 256, 255 - i * 15, (i * 71) % 256) for i in range(16)]
    img("pal4", 23, 17, 3, 4, lambda x, y: ((x + 2 * y) % 16,), palette=pal16, interlace=True)
    img("pal_oob", 23, 9, 3, 8, lambda x, y: ((x + 3 * y) % 16,), palette=pal[:10],
        trns=bytes([0, 40, 80, 120, 160, 200, 240, 255, 7, 30, 60, 90]))

    gp = pattern(32, 32, 10)
    img("gray", 32, 32, 0, 8, lambda x, y: (gp[y][x][0],))
    g = lcg(11)
    g16 = [[next(g) << 8 | next(g) for _ in range(31)] for _ in range(29)]
    g16[0][:6] = [0, 255, 256, 32767, 65280, 65535]
    img("gray16", 31, 29, 0, 16, lambda x, y: (g16[y][x],))
    img("gray1", 19, 13, 0, 1, lambda x, y: (int((x * 3 + y) % 7 < 3),))
    img("gray2", 21, 11, 0, 2, lambda x, y: ((x + y) % 4,), interlace=True)
    gap = pattern(27, 25, 12)
    img("graya", 27, 25, 4, 8, lambda x, y: (gap[y][x][1], (x * 29 + y * 41) % 256))
    g = lcg(13)
    ga16 = [[(next(g) << 8 | next(g), next(g) << 8 | next(g)) for _ in range(26)] for _ in range(15)]
    img("graya16", 26, 15, 4, 16, lambda x, y: ga16[y][x])
    gtp = pattern(24, 18, 14)
    img("grayt", 24, 18, 0, 8, lambda x, y: ((gtp[y][x][2] // 32) * 32,), trns=struct.pack(">H", 64))
    rtp = pattern(25, 19, 15)
    img("rgbt", 25, 19, 2, 8, lambda x, y: tuple((c // 64) * 64 for c in rtp[y][x]),
        trns=struct.pack(">HHH", 0, 192, 64))
    g = lcg(16)
    r16 = [[tuple(next(g) << 8 | next(g) for _ in range(3)) for _ in range(40)] for _ in range(32)]
    img("rgb16", 40, 32, 2, 16, lambda x, y: r16[y][x], interlace=True)
    # tRNS corner cases where PIL's key differs from the raw value (see ref/image.c)
    img("trns_g1", 8, 2, 0, 1, lambda x, y: ((x + y) % 2,), trns=struct.pack(">H", 256))
    img("trns_g2", 8, 2, 0, 2, lambda x, y: ((x + y) % 4,), trns=struct.pack(">H", 85))
    img("trns_g16", 8, 2, 0, 16, lambda x, y: ((44, 300, 0x2C2C, 0x012C, 255, 43, 45, 65535)[(x + 3 * y) % 8],),
        trns=struct.pack(">H", 300))
    v = [(0x3400, 0x7800, 0xBC00), (0x1234, 0x5678, 0x9ABC), (0x34FF, 0x78FF, 0xBCFF), (0x34, 0x78, 0xBC),
         (0x3500, 0x7800, 0xBC00), (0, 0, 0)]
    img("trns_rgb16", 6, 2, 2, 16, lambda x, y: v[(x + y) % 6], trns=struct.pack(">HHH", 0x1234, 0x5678, 0x9ABC))
    v8 = [(44, 45, 46), (44, 45, 47), (1, 2, 3), (44, 45, 46), (255, 0, 0), (0, 45, 46)]
    img("trns_rgb8", 6, 2, 2, 8, lambda x, y: v8[(x + y) % 6], trns=struct.pack(">HHH", 300, 301, 302))
    return out


def encode(spec):
    return encode_png(spec["w"], spec["h"], spec["ctype"], spec["depth"], spec["pix"], palette=spec["palette"],
                      trns=spec["trns"], interlace=spec["interlace"], best=spec["best"])


def bad_images(good):
    out = {}
    sig = b"\x89PNG\r\n\x1a\n"

    def hdr(w, h, depth=8, ctype=2):
        return sig + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))

    tiny_idat = chunk(b"IDAT", zlib.compress(b"\x00" + b"\x00" * 3)) + chunk(b"IEND", b"")
    out["bad_zero_w"] = hdr(0, 5) + tiny_idat
    out["bad_zero_h"] = hdr(5, 0) + tiny_idat
    out["bad_huge"] = hdr(60000, 60000) + tiny_idat
    out["bad_wide"] = hdr(70000, 1) + tiny_idat
    out["bad_depth"] = hdr(4, 4, depth=3, ctype=0) + tiny_idat
    out["bad_trns"] = (hdr(2, 1, depth=8, ctype=0) + chunk(b"tRNS", b"\x05")
                       + chunk(b"IDAT", zlib.compress(b"\x00\x05\x06")) + chunk(b"IEND", b""))

    # corrupt the IDAT payload of tiny.png: find the IDAT chunk
    src = good["tiny"]
    i = src.index(b"IDAT")
    n = struct.unpack(">I", src[i - 4:i])[0]
    b = bytearray(src)
    b[i + 4 + n + 3] ^= 0x01                    # last byte of the IDAT CRC: data intact, CRC wrong
    out["bad_crc"] = bytes(b)
    payload = bytearray(src[i + 4:i + 4 + n])
    for k in range(2, len(payload) - 4, 7):     # wreck the deflate stream, keep the chunk valid
        payload[k] ^= 0xFF
    out["bad_zlib"] = src[:i - 4] + chunk(b"IDAT", bytes(payload)) + chunk(b"IEND", b"")
    # 30 x 20 RGB declared, only 5 rows of data
    rows = b"".join(b"\x00" + bytes(90) for _ in range(5))
    out["bad_short"] = hdr(30, 20) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    out["bad_notpng"] = b"this is not a PNG file, just some text\n" * 3
    out["bad_empty"] = b""
    return out


def main():
    good = {name: encode(spec) for name, spec in good_images().items()}
    for name, data in good.items():
        write(os.path.join(HERE, name + ".png"), data)
    for name, data in bad_images(good).items():
        write(os.path.join(HERE, name + ".png"), data)
    write(os.path.join(DATA, "sample.png"), encode_png(200, 150, 2, 8, from_img(sample_picture()), best=True))
    total = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE) if f.endswith(".png"))
    print("make.py: wrote %d good + bad PNGs (%d bytes) and sample.png (%d bytes)"
          % (len(os.listdir(HERE)) - 1, total, os.path.getsize(os.path.join(DATA, "sample.png"))))


if __name__ == "__main__":
    main()
