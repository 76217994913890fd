"""make.py - write the small test WAV files of tests/data/wav/ and the sample clip tests/data/sample.wav.

Standard library only (math, random, struct): every file is written byte by byte here, so the
odd cases (chunks in unusual order, odd-sized chunks with their pad byte, WAVE_FORMAT_EXTENSIBLE,
8/24/32-bit, float64) are exactly what this script says. Run from anywhere:

    python3 tests/data/wav/make.py

The output is deterministic (fixed seeds; values quantized to integers or written as exact
floats), and the committed files are what the goldens (golden/gen_audio.py) were made from.

Clips (name: rate, format, channels, length, content):
  s16_short       16 kHz s16 mono, 300 samples (< 1 frame); first samples -32768, 32767, 0, -1, 1
  s16_640         16 kHz s16 mono, exactly 640 samples (one full frame, no padding)
  s16_partial     16 kHz s16 mono, 3*640 + 123 samples (partial last frame)
  s16_stereo      16 kHz s16 stereo, 4000 frames; L and R differ (downmix rounding cases)
  u8_mono         16 kHz 8-bit unsigned mono, 1000 samples incl. 0, 255, 128
  s24_mono        16 kHz 24-bit mono, 1000 samples incl. -2^23, 2^23-1
  s32_mono        16 kHz 32-bit int mono, 1000 samples incl. values float32 cannot hold exactly
  f32_mono        16 kHz float32 mono, 1000 samples incl. values beyond [-1, 1]
  f64_mono        16 kHz float64 mono, 1000 samples that need rounding to float32
  ext_s16_3ch     16 kHz WAVE_FORMAT_EXTENSIBLE PCM s16, 3 channels, 700 frames
  ext_f32_stereo  16 kHz WAVE_FORMAT_EXTENSIBLE IEEE float32, stereo, 900 frames
  ext_s32v24      16 kHz WAVE_FORMAT_EXTENSIBLE PCM 32-bit container with 24 valid bits, 800 samples
  chunks_odd      16 kHz u8 mono, 1001 samples: odd LIST chunk before fmt, fact chunk, odd data
                  chunk + pad byte, a trailing unknown chunk
  data_first      16 kHz s16 mono, 500 samples: the data chunk comes before the fmt chunk
  s16_44k1        44.1 kHz s16 mono, 0.6 s: 1 kHz + 3 kHz tones, a chirp to 6 kHz, a 10 kHz tone
  s16_8k          8 kHz s16 mono, 0.5 s: 1 kHz + 2.5 kHz tones (upsampling)
  f32_48k_stereo  48 kHz float32 stereo, 0.15 s: different tones left and right
and ../sample.wav: 16 kHz s16 mono, 2.5 s, a few notes with soft envelopes and a chirp (the clip
`make run` uses).
"""
import math
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GUID_TAIL = bytes([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])


def chunk(cid, body):
    """One RIFF chunk: id, size, body, and a pad byte when the size is odd."""
    assert len(cid) == 4
    out = cid + struct.pack("<I", len(body)) + body
    if len(body) % 2:
        out += b"\x00"
    return out


def fmt_body(tag, ch, rate, bits, ext=None):
    """fmt chunk body. ext = (valid_bits, subformat_tag) for WAVE_FORMAT_EXTENSIBLE (tag 0xFFFE)."""
    block = ch * (bits // 8)
    b = struct.pack("<HHIIHH", tag, ch, rate, rate * block, block, bits)
    if ext is not None:
        valid, sub = ext
        mask = (1 << ch) - 1
        b += struct.pack("<HHI", 22, valid, mask) + struct.pack("<H", sub) + GUID_TAIL
    return b


def riff(chunks):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pack(kind, vals):
    """Interleaved sample values -> bytes. kind: u8, s16, s24, s32 (integers), f32, f64."""
    if kind == "u8":
        return bytes(vals)
    if kind == "s16":
        return struct.pack("<%dh" % len(vals), *vals)
    if kind == "s24":
        return b"".join(struct.pack("<i", v)[:3] for v in vals)
    if kind == "s32":
        return struct.pack("<%di" % len(vals), *vals)
    if kind == "f32":
        return struct.pack("<%df" % len(vals), *vals)
    if kind == "f64":
        return struct.pack("<%dd" % len(vals), *vals)
    raise ValueError(kind)


def q16(x):
    return max(-32768, min(32767, int(round(x * 32767))))


def write(name, data):
    path = os.path.join(HERE, name) if not name.startswith("..") else os.path.normpath(os.path.join(HERE, name))
    with open(path, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (os.path.relpath(path, os.path.join(HERE, "..", "..", "..")), len(data)))


def simple(name, kind, ch, rate, vals, tag=None, ext=None):
    bits = {"u8": 8, "s16": 16, "s24": 24, "s32": 32, "f32": 32, "f64": 64}[kind]
    if tag is None:
        tag = 3 if kind in ("f32", "f64") else 1
    write(name, riff([chunk(b"fmt ", fmt_body(tag, ch, rate, bits, ext)), chunk(b"data", pack(kind, vals))]))


def tone(n, rate, parts, phase=0.0):
    """sum of a*sin(2 pi f t + phase) for (f, a) in parts, n samples at rate"""
    return [sum(a * math.sin(2 * math.pi * f * i / rate + phase) for f, a in parts) for i in range(n)]


def main():
    rng = random.Random(20260522)

    # --- 16 kHz s16 mono: frame-boundary lengths
    v = [q16(x) for x in tone(300, 16000, [(440, 0.5), (1250, 0.2)])]
    v[:5] = [-32768, 32767, 0, -1, 1]
    simple("s16_short.wav", "s16", 1, 16000, v)
    simple("s16_640.wav", "s16", 1, 16000, [q16(x) for x in tone(640, 16000, [(523.25, 0.6)])])
    simple("s16_partial.wav", "s16", 1, 16000,
           [q16(x + 0.05 * rng.uniform(-1, 1)) for x in tone(3 * 640 + 123, 16000, [(330, 0.4), (2000, 0.2)])])

    # --- stereo: left a tone, right noise; the first frames hit odd sums (mean rounding)
    L = [q16(x) for x in tone(4000, 16000, [(700, 0.45)])]
    R = [rng.randint(-12000, 12000) for _ in range(4000)]
    L[:4] = [1, -32768, 32767, 3]
    R[:4] = [2, -32768, -32768, 32767]
    inter = [s for pair in zip(L, R) for s in pair]
    simple("s16_stereo.wav", "s16", 2, 16000, inter)

    # --- other PCM depths and float
    u8 = [max(0, min(255, 128 + int(round(100 * x)))) for x in tone(1000, 16000, [(900, 1.0)])]
    u8[:4] = [0, 255, 128, 127]
    simple("u8_mono.wav", "u8", 1, 16000, u8)
    s24 = [int(round(x * 8388607)) for x in tone(1000, 16000, [(600, 0.7), (3100, 0.2)])]
    s24[:4] = [-8388608, 8388607, 1, -1]
    simple("s24_mono.wav", "s24", 1, 16000, s24)
    s32 = [int(round(x * 2147483647)) for x in tone(1000, 16000, [(1500, 0.8)])]
    s32[:5] = [-2147483648, 2147483647, 123456789, -987654321, 1]
    simple("s32_mono.wav", "s32", 1, 16000, s32)
    f32 = [struct.unpack("<f", struct.pack("<f", x))[0] for x in tone(1000, 16000, [(250, 0.9), (5000, 0.1)])]
    f32[:4] = [1.5, -1.25, 1e-30, -0.0]
    simple("f32_mono.wav", "f32", 1, 16000, f32)
    f64 = tone(1000, 16000, [(440, 0.33), (4400, 0.11)])
    f64[:3] = [0.1, 1.0 / 3.0, -2.0 / 3.0]
    simple("f64_mono.wav", "f64", 1, 16000, f64)

    # --- WAVE_FORMAT_EXTENSIBLE
    a = [q16(x) for x in tone(700, 16000, [(400, 0.5)])]
    b = [q16(x) for x in tone(700, 16000, [(1000, 0.3)])]
    c = [rng.randint(-20000, 20000) for _ in range(700)]
    a[:3], b[:3], c[:3] = [1, 32767, -32768], [1, 32767, -32768], [1, 32767, -32767]
    simple("ext_s16_3ch.wav", "s16", 3, 16000, [s for t in zip(a, b, c) for s in t], tag=0xFFFE, ext=(16, 1))
    l = tone(900, 16000, [(800, 0.6)])
    r = tone(900, 16000, [(1800, 0.6)], phase=0.3)
    fl = [struct.unpack("<f", struct.pack("<f", x))[0] for pair in zip(l, r) for x in pair]
    simple("ext_f32_stereo.wav", "f32", 2, 16000, fl, tag=0xFFFE, ext=(32, 3))
    v24 = [int(round(x * 8388607)) * 256 for x in tone(800, 16000, [(1100, 0.75)])]
    simple("ext_s32v24.wav", "s32", 1, 16000, v24, tag=0xFFFE, ext=(24, 1))

    # --- chunk layout: odd LIST before fmt, fact, odd data + pad, trailing unknown chunk
    u8b = [max(0, min(255, 128 + int(round(90 * x)))) for x in tone(1001, 16000, [(1234, 1.0)])]
    write("chunks_odd.wav", riff([
        chunk(b"LIST", b"INFOx"),                       # 5 bytes: odd, padded
        chunk(b"fmt ", fmt_body(1, 1, 16000, 8)),
        chunk(b"fact", struct.pack("<I", 1001)),
        chunk(b"data", pack("u8", u8b)),               # 1001 bytes: odd, padded
        chunk(b"zzzz", b"trailing unknown chunk"),
    ]))
    d = [q16(x) for x in tone(500, 16000, [(3000, 0.5)])]
    write("data_first.wav", riff([chunk(b"data", pack("s16", d)), chunk(b"fmt ", fmt_body(1, 1, 16000, 16))]))

    # --- other rates
    n = int(0.6 * 44100)
    x = tone(n, 44100, [(1000, 0.3), (3000, 0.15), (10000, 0.1)])
    for i in range(n):  # linear chirp 200 Hz -> 6 kHz
        t = i / 44100
        x[i] += 0.2 * math.sin(2 * math.pi * (200 * t + 0.5 * (5800 / 0.6) * t * t))
    simple("s16_44k1.wav", "s16", 1, 44100, [q16(s) for s in x])
    simple("s16_8k.wav", "s16", 1, 8000, [q16(s) for s in tone(4000, 8000, [(1000, 0.4), (2500, 0.3)])])
    n = int(0.15 * 48000)
    l = tone(n, 48000, [(600, 0.5), (5000, 0.2)])
    r = tone(n, 48000, [(1500, 0.5), (12000, 0.2)])
    fl = [struct.unpack("<f", struct.pack("<f", s))[0] for pair in zip(l, r) for s in pair]
    simple("f32_48k_stereo.wav", "f32", 2, 48000, fl)

    # --- the sample clip for `make run`: C5 E5 G5 C6 notes with soft envelopes, then a chirp
    rate, n = 16000, 40000
    y = [0.0] * n
    notes = [(523.25, 0.0), (659.25, 0.4), (783.99, 0.8), (1046.5, 1.2)]
    for f, t0 in notes:
        i0, dur = int(t0 * rate), int(0.45 * rate)
        for i in range(dur):
            env = math.sin(math.pi * i / dur) ** 2
            y[i0 + i] += 0.35 * env * (math.sin(2 * math.pi * f * i / rate) + 0.3 * math.sin(4 * math.pi * f * i / rate))
    i0 = int(1.75 * rate)
    for i in range(n - i0):
        t = i / rate
        env = math.sin(math.pi * i / (n - i0)) ** 2
        y[i0 + i] += 0.3 * env * math.sin(2 * math.pi * (300 * t + 0.5 * 3000 / 0.75 * t * t))
    simple("../sample.wav", "s16", 1, rate, [q16(s) for s in y])


if __name__ == "__main__":
    main()
