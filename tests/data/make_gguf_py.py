"""make_gguf_py.py - write the GGUF test files of tests/data with the reference `gguf` package
(gguf-py from llama.cpp), and check a GGUF written by g4's C writer.

    python tests/data/make_gguf_py.py            # (re)write tests/data/quant_kat.gguf, meta_py.gguf
    python tests/data/make_gguf_py.py --check F  # read F (written by tests/test_gguf with
                                                 # G4_KEEP_GGUF=F) with gguf.GGUFReader and verify it

quant_kat.gguf - known answers for ref/quant.c (tests/test_quant.c):
    src            F32 [256, 4]   random fp32 data (blocks of different scales, zeros, outliers)
    <t>            gguf-py's quantization of src to t in {q8_0, q4_0, bf16, f16}
    <t>.deq        F32: gguf-py's dequantization of <t>
    rand.<t>       random bytes as blocks of t in {q8_0, q4_0, q4_k, q6_k} (gguf-py cannot
                   quantize q4_k / q6_k; f16 scale fields avoid exponent 31, i.e. inf / NaN)
    rand.<t>.deq   F32: gguf-py's dequantization of rand.<t>
    special        F32 [64]: conversion edge cases (RNE ties, NaN, inf, subnormals, -0, ...)
    special.bf16 / special.f16   gguf-py's / numpy's conversion of special

meta_py.gguf - every metadata value type and several tensors (tests/test_gguf.c): see write_meta.
Tensor values use the exact formula pat(i) = ((i*37) % 101 - 50) / 32, i = flat index.
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from gguf.quants import quantize, dequantize

HERE = os.path.dirname(os.path.abspath(__file__))


def pat(n):
    i = np.arange(n, dtype=np.int64)
    return (((i * 37) % 101 - 50).astype(np.float32) / np.float32(32)).astype(np.float32)


def fix_f16(b, offs, bsize):
    """in a uint8 array of blocks of bsize bytes, make the f16 at each offset in offs finite"""
    flat = b.reshape(-1, bsize)
    for o in offs:
        h = flat[:, o].astype(np.uint16) | (flat[:, o + 1].astype(np.uint16) << 8)
        bad = (h & 0x7C00) == 0x7C00
        h = np.where(bad, h & ~np.uint16(0x4000), h).astype(np.uint16)
        flat[:, o] = (h & 0xFF).astype(np.uint8)
        flat[:, o + 1] = (h >> 8).astype(np.uint8)
    return b


def specials():
    u = [
        0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000,
        0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFE00001,            # quiet NaNs (signs, payloads)
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF818000,  # bf16 ties and neighbours
        0x7F7FFFFF, 0x7F7F7FFF, 0x7F7F8000, 0xFF7F8000,              # bf16 overflow edge
        0x00000001, 0x807FFFFF, 0x00008000, 0x00018000, 0x00010000,  # f32 subnormals
        0x477FE000, 0x477FEFFF, 0x477FF000, 0xC77FF000, 0x47800000,  # 65504, <65520, 65520 (f16 inf)
        0x33800000, 0x33000000, 0x33000001, 0xB3000000, 0x33C00000,  # 2^-24, 2^-25 tie, ... 1.5*2^-24
        0x34400000, 0x38800000, 0x387FE000, 0x387FF000, 0x387FFFFF,  # 3*2^-24, 2^-14 and below
        0x3F801000, 0x3F803000, 0x3F801001, 0x3F800FFF, 0x3F802000,  # f16 ties around 1.0
        0x38000000, 0x37800000, 0x3A800000,                          # f16 subnormals 2^-15, 2^-16
    ]
    rng = np.random.default_rng(7)
    while len(u) < 64:
        u.append(int(rng.integers(0, 2**32)) & 0xFFFFFFFF)
    a = np.array(u, dtype=np.uint32)
    # random ones: keep them finite
    exp = (a >> 23) & 0xFF
    a = np.where(exp == 0xFF, a & ~np.uint32(0x40000000), a).astype(np.uint32)
    a[:10] = np.array(u[:10], dtype=np.uint32)
    return a.view(np.float32)


def write_kat(path):
    rng = np.random.default_rng(1234)
    src = rng.standard_normal((4, 256)).astype(np.float32)
    scales = np.exp(rng.uniform(-6, 3, size=(4, 8))).astype(np.float32)   # one per 32-block
    src *= np.repeat(scales, 32, axis=1)
    src[0, 32:64] = 0.0                            # an all-zero block
    src[1, 0:32] = np.abs(src[1, 0:32])            # an all-positive block
    src[2, 64:96] = -np.abs(src[2, 64:96])         # an all-negative block
    src[3, 100] = 50.0                             # an outlier
    src[3, 160:192] = 1e-6 * src[3, 160:192]       # tiny values (f16 subnormal scales)

    w = gguf.GGUFWriter(path, "g4kat")
    w.add_tensor("src", src)
    for name, qt in (("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("bf16", Q.BF16)):
        q = quantize(src, qt)
        w.add_tensor(name, q, raw_dtype=qt)
        w.add_tensor(name + ".deq", dequantize(q, qt).astype(np.float32))
    h = src.astype(np.float16)
    w.add_tensor("f16", h)
    w.add_tensor("f16.deq", h.astype(np.float32))

    for name, qt, offs in (("q8_0", Q.Q8_0, [0]), ("q4_0", Q.Q4_0, [0]),
                           ("q4_k", Q.Q4_K, [0, 2]), ("q6_k", Q.Q6_K, [208])):
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        nb = 1024 // bs
        b = rng.integers(0, 256, size=(4, nb // 4 * ts), dtype=np.uint8)
        b = fix_f16(b, offs, ts)
        w.add_tensor("rand." + name, b, raw_dtype=qt)
        w.add_tensor("rand." + name + ".deq", dequantize(b, qt).astype(np.float32))

    sp = specials()
    w.add_tensor("special", sp)
    with np.errstate(all="ignore"):
        w.add_tensor("special.bf16", quantize(sp, Q.BF16), raw_dtype=Q.BF16)
        w.add_tensor("special.f16", sp.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_meta(path):
    w = gguf.GGUFWriter(path, "g4test")
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_uint64("t.u64", 0xFFFFFFFFFFFFFFF0)
    w.add_int64("t.i64", -(2**62) - 3)
    w.add_float64("t.f64", 0.1)
    w.add_bool("t.true", True)
    w.add_bool("t.false", False)
    w.add_string("t.str", "h\u00e9llo w\u00f6rld")
    w.add_key_value("t.empty", "", V.STRING)
    w.add_array("t.arr_i32", [1, -2, 3, 2147483647, -2147483648])
    w.add_key_value("t.arr_u8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("t.arr_i64", [-(2**40), 7], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("t.arr_u16", [65535, 2], V.ARRAY, sub_type=V.UINT16)
    w.add_array("t.arr_f32", [0.5, -1.25, 3.0])
    w.add_key_value("t.arr_f64", [0.1, -2.5], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("t.arr_bool", [True, False, True])
    w.add_array("t.arr_str", ["a", "bc", "", "\u00fcn\u00ef"])
    w.add_array("t.arr_arr", [[1, 2, 3], [4, 5]])
    w.add_array("t.arr_arr_str", [["x", "yz"], ["w"]])
    w.add_array("t.arr_arr_arr", [[[1], [2, 3]], [[4]]])

    w.add_tensor("t.f32", pat(15).reshape(5, 3))                     # ne [3, 5]
    w.add_tensor("t.f16", pat(128).reshape(2, 64).astype(np.float16))
    w.add_tensor("t.bf16", quantize(pat(192).reshape(2, 3, 32), Q.BF16), raw_dtype=Q.BF16)
    w.add_tensor("t.q8_0", quantize(pat(128).reshape(2, 64), Q.Q8_0), raw_dtype=Q.Q8_0)
    w.add_tensor("t.q4_0", quantize(pat(64).reshape(1, 1, 1, 64), Q.Q4_0), raw_dtype=Q.Q4_0)
    rng = np.random.default_rng(99)
    for name, qt, offs in (("t.q4_k", Q.Q4_K, [0, 2]), ("t.q6_k", Q.Q6_K, [208])):
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        b = fix_f16(rng.integers(0, 256, size=(2, ts), dtype=np.uint8), offs, ts)
        w.add_tensor(name, b, raw_dtype=qt)
        w.add_tensor(name + ".deq", dequantize(b, qt).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_c_file(path):
    """verify the file written by tests/test_gguf.c (test_c_roundtrip) with gguf.GGUFReader"""
    r = gguf.GGUFReader(path)
    bad = []

    def expect(cond, msg):
        if not cond:
            bad.append(msg)

    f = {k: v for k, v in r.fields.items()}
    expect(f["t.u32"].contents() == 123456789, "t.u32")
    expect(f["t.i32"].contents() == -42, "t.i32")
    expect(f["t.f32"].contents() == np.float32(0.15625), "t.f32")
    expect(f["t.bool"].contents() is True or f["t.bool"].contents() == 1, "t.bool")
    expect(f["t.str"].contents() == "hello, gguf", "t.str")
    expect(f["general.architecture"].contents() == "g4test", "arch")
    expect(list(f["t.arr_i32"].contents()) == [1, -2, 3], "t.arr_i32")
    expect(list(f["t.arr_f32"].contents()) == [0.5, -0.25], "t.arr_f32")
    expect(list(f["t.arr_u64"].contents()) == [2**63 + 1, 5], "t.arr_u64")
    expect([bool(x) for x in f["t.arr_bool"].contents()] == [True, False], "t.arr_bool")
    expect(f["t.arr_str"].contents() == ["a", "bc", "", "\u00fcn\u00ef"], "t.arr_str")
    shapes = {"mem.f32": [8, 3], "rows.q8_0": [64, 5], "rows.q4_0": [64, 2], "rows.q4_k": [256, 2],
              "rows.q6_k": [256, 3], "rows.bf16": [16, 2, 3], "rows.f16": [32, 1, 1, 2]}
    names = [t.name for t in r.tensors]
    expect(names == list(shapes), f"tensor order {names}")
    for t in r.tensors:
        expect(list(map(int, t.shape)) == shapes.get(t.name), f"{t.name} shape {list(t.shape)}")
        n = int(np.prod(t.shape))
        if t.name == "mem.f32":
            want = (np.arange(n, dtype=np.float32) * np.float32(0.25) - np.float32(1)).astype(np.float32)
        else:
            want = pat(n)
        got = dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float32)
        err = float(np.max(np.abs(got - want)))
        tt = t.tensor_type
        if tt in (Q.F32, Q.F16, Q.BF16):
            ok = err == 0.0                                  # pat values are exact in these types
        else:
            # our Q8_0/Q4_0 are ggml's reference quantizers: bytes must equal gguf-py's
            ok = True
            if tt in (Q.Q8_0, Q.Q4_0):
                ref = quantize(want.reshape(-1, int(t.shape[0])), tt).reshape(-1)
                ok = np.array_equal(ref, np.asarray(t.data).reshape(-1))
            # derived bounds for |pat| <= A = 50/32 (see tests/test_quant.c): q8_0 d/2 + 127|f16(d)-d|
            # with d = A/127; q4_0 |d| (clamped side) with d = A/8; q4_k (S + d)/2 with
            # S = (2A + dmin)/15, d = S/63; q6_k (S + d)/2 with S = A/31, d = S/127; 1% margin
            A = 50 / 32
            S4 = (2 * A + A / 63) / 15
            bound = {Q.Q8_0: A / 127 * (0.5 + 127 / 2048), Q.Q4_0: A / 8 * (1 + 8 / 2048),
                     Q.Q4_K: (S4 + S4 / 63) / 2, Q.Q6_K: (A / 31 + A / 31 / 127) / 2}[tt] * 1.01
            ok = ok and err <= bound
        print(f"  {t.name:10s} {tt.name:5s} shape {list(map(int, t.shape))} max|deq - value| = {err:.6g}"
              f" {'ok' if ok else 'BAD'}")
        expect(ok, t.name)
    if bad:
        print("FAIL", path, bad)
        return 1
    print("OK: gguf-py reads", path, "with", len(r.fields), "fields and", len(r.tensors), "tensors")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return check_c_file(sys.argv[2])
    write_kat(os.path.join(HERE, "quant_kat.gguf"))
    write_meta(os.path.join(HERE, "meta_py.gguf"))
    for n in ("quant_kat.gguf", "meta_py.gguf"):
        print(n, os.path.getsize(os.path.join(HERE, n)), "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
