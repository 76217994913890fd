"""golden/gen_audio.py - audio front-end goldens from the official Hugging Face Gemma 4 Unified code.

What it does
  1. For every test clip (tests/data/wav/*.wav, made by tests/data/wav/make.py, and
     tests/data/sample.wav) runs the reference audio path exactly as the processor does for a
     file path:
       waveform = transformers.audio_utils.load_audio(path, sampling_rate=16000, backend="soundfile")
         (libsndfile decode to float32, channel mean, soxr "HQ" resampling for other rates, length
          padded/trimmed to ceil(n * 16000 / rate));
       feats = Gemma4UnifiedAudioFeatureExtractor()(waveform)   (shipped config: 640 samples/token)
     and records the frames, the mask and the processor's token count
     (Gemma4UnifiedProcessor._compute_audio_num_tokens). `backend="soundfile"` is pinned: the
     default "auto" picks torchcodec (FFmpeg's resampler) when torchcodec is installed; it is not
     installed here, so "auto" = "soundfile" on this machine anyway.
     data_first.wav (data chunk before fmt) is rejected by libsndfile ("No 'data' chunk marker");
     its golden is decoded here byte by byte with the int16 / 32768 rule that the other s16
     goldens confirm against libsndfile.
  2. Runs Gemma4UnifiedMultimodalEmbedder (the model's embed_audio) with a [64, 640] random bf16
     projection on 7 frames, twice: bf16 module (the checkpoint dtype: frames cast to bf16, norm
     and Linear outputs bf16) and f32 module fed the same bf16-rounded frames (= g4's bf16 = 0
     mode, which always casts frames to bf16 like the checkpoint).
  3. Writes golden/audio/<clip>.g4t, golden/audio/embed.g4t and golden/audio/MANIFEST.

Tensors (format .g4t: golden/README.md):
  <clip>.g4t: frames f32 [n][640], mask i32 [n] (1 = valid), n_tokens i32 [1] (processor count),
              n_samples i32 [1] (waveform length at 16 kHz), rate i32 [1] and channels i32 [1]
              (of the file), ref_decoder i32 [1] (1 = libsndfile via load_audio, 2 = decoded here).
  embed.g4t:  weight f32 [64][640] (bf16 values), frames f32 [7][640] (raw, before the bf16 cast),
              norm_bf16 / norm_f32 f32 [7][640] (embedding_pre_projection_norm outputs),
              embed_bf16 / embed_f32 f32 [7][64], eps f32 [1].

Needs soundfile and soxr besides torch/transformers/numpy (transformers[audio]); they are not in
the project's venv, so install them next to it, e.g.
    pip install --target /tmp/g4aud soundfile==0.14.0 soxr==1.1.0 cffi pycparser --no-deps
    PYTHONPATH=/tmp/g4aud /root/g4venv/bin/python golden/gen_audio.py
Run by hand (not in CI); the versions used are recorded in golden/audio/MANIFEST.
"""
import datetime
import hashlib
import os
import platform
import struct
import sys

import numpy as np

try:
    import soundfile
    import soxr
except ImportError as e:  # pragma: no cover
    sys.exit("gen_audio.py: FAIL: needs soundfile and soxr (%s); see the docstring" % e)
import torch
import transformers

# The audio path needs no torchvision, but transformers imports it (via image_utils) when it is
# installed; a torchvision built for another torch fails at import. Then tell transformers it is
# absent (only in this process) rather than fail on something the audio path never uses.
try:
    import torchvision  # noqa: F401
except Exception as e:  # pragma: no cover
    import transformers.utils as _tu
    import transformers.utils.import_utils as _tiu
    print("gen_audio.py: note: torchvision unusable (%s); hiding it from transformers" % str(e).splitlines()[-1])
    _tiu.is_torchvision_available = _tu.is_torchvision_available = lambda: False
    sys.modules.pop("torchvision", None)
from transformers.audio_utils import load_audio
from transformers.models.gemma4_unified.configuration_gemma4_unified import (
    Gemma4UnifiedAudioConfig, Gemma4UnifiedTextConfig)
from transformers.models.gemma4_unified.feature_extraction_gemma4_unified import (
    Gemma4UnifiedAudioFeatureExtractor)
from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedMultimodalEmbedder
from transformers.models.gemma4_unified.processing_gemma4_unified import Gemma4UnifiedProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "audio")
WAV = os.path.join(ROOT, "tests", "data", "wav")
G4T_VERSION = 1
SEED = 20260522
D_EMB = 64

CLIPS = ["s16_short", "s16_640", "s16_partial", "s16_stereo", "u8_mono", "s24_mono", "s32_mono",
         "f32_mono", "f64_mono", "ext_s16_3ch", "ext_f32_stereo", "ext_s32v24", "chunks_odd",
         "data_first", "s16_44k1", "s16_8k", "f32_48k_stereo", "sample"]


def fail(msg):
    sys.exit("gen_audio.py: FAIL: " + msg)


def write_g4t(path, tensors):
    """tensors: list of (name, numpy float32 / int32 array); format of golden/README.md"""
    with open(path, "wb") as f:
        f.write(b"G4GT" + struct.pack("<II", G4T_VERSION, len(tensors)))
        for name, a in tensors:
            a = np.asarray(a)
            if a.dtype == np.float32:
                dt = 0
                if not np.all(np.isfinite(a)):
                    fail("%s: %s not finite" % (path, name))
            elif a.dtype == np.int32:
                dt = 1
            else:
                fail("%s: %s has dtype %s" % (path, name, a.dtype))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", dt, a.ndim))
            f.write(struct.pack("<%dQ" % a.ndim, *a.shape))
            f.write(np.ascontiguousarray(a, dtype="<f4" if dt == 0 else "<i4").tobytes())


def clip_path(name):
    return os.path.join(ROOT, "tests", "data", "sample.wav") if name == "sample" else os.path.join(WAV, name + ".wav")


def decode_s16_by_hand(path):
    """minimal RIFF walk for data_first.wav (s16 mono): int16 / 32768 as float32"""
    b = open(path, "rb").read()
    off, data, fmt = 12, None, None
    while off + 8 <= len(b):
        cid, size = b[off:off + 4], struct.unpack("<I", b[off + 4:off + 8])[0]
        if cid == b"data":
            data = b[off + 8:off + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", b[off + 8:off + 24])
        off += 8 + size + (size & 1)
    if fmt is None or data is None or fmt[0] != 1 or fmt[1] != 1 or fmt[5] != 16 or fmt[2] != 16000:
        fail("data_first.wav is not the s16 mono 16 kHz file make.py writes")
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) * np.float32(1 / 32768)).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    fe = Gemma4UnifiedAudioFeatureExtractor()
    if fe.audio_samples_per_token != 640 or fe.sampling_rate != 16000 or fe.padding_value != 0.0:
        fail("unexpected feature extractor defaults")

    class ProcStub:  # _compute_audio_num_tokens only reads self.feature_extractor
        feature_extractor = fe

    written = []
    for name in CLIPS:
        path = clip_path(name)
        info = soundfile.info(path) if name != "data_first" else None
        if name == "data_first":
            try:
                load_audio(path, sampling_rate=16000, backend="soundfile")
                fail("libsndfile now reads data_first.wav: use it and drop the hand decoder")
            except Exception:
                pass
            wav, rate, ch, dec = decode_s16_by_hand(path), 16000, 1, 2
        else:
            wav = load_audio(path, sampling_rate=16000, backend="soundfile")
            rate, ch, dec = info.samplerate, info.channels, 1
        if wav.dtype != np.float32 or wav.ndim != 1:
            fail("%s: load_audio gave %s %s" % (name, wav.dtype, wav.shape))
        feats = fe(wav, return_tensors="np")
        frames = feats["input_features"][0].astype(np.float32)
        mask = feats["input_features_mask"][0].astype(np.int32)
        ntok = Gemma4UnifiedProcessor._compute_audio_num_tokens(ProcStub(), wav, 16000)
        n = -(-len(wav) // 640)
        if frames.shape != (n, 640) or mask.shape != (n,) or mask.sum() != n or ntok != n:
            fail("%s: frames %s mask %s tokens %d, expected %d frames" % (name, frames.shape, mask.sum(), ntok, n))
        if not np.array_equal(frames.reshape(-1)[:len(wav)], wav) or np.any(frames.reshape(-1)[len(wav):] != 0):
            fail("%s: frames are not the zero-padded waveform" % name)
        out = os.path.join(OUT, name + ".g4t")
        write_g4t(out, [("frames", frames), ("mask", mask), ("n_tokens", np.array([ntok], np.int32)),
                        ("n_samples", np.array([len(wav)], np.int32)), ("rate", np.array([rate], np.int32)),
                        ("channels", np.array([ch], np.int32)), ("ref_decoder", np.array([dec], np.int32))])
        written.append(out)
        print("%-15s %6d Hz %d ch -> %6d samples, %3d frames" % (name, rate, ch, len(wav), n))

    # ---- the embedder
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    W = rng.normal(0.0, 1.0 / np.sqrt(640), size=(D_EMB, 640)).astype(np.float32)
    W = torch.from_numpy(W).to(torch.bfloat16).float().numpy()
    fr = []
    for nm, idx in (("s16_partial", [0, 1, 2, 3]), ("f32_mono", [0, 1])):
        g = fe(load_audio(clip_path(nm), sampling_rate=16000, backend="soundfile"), return_tensors="np")
        fr.append(g["input_features"][0][idx])
    fr.append(np.zeros((1, 640), np.float32))          # silence: the norm must give 0, not NaN
    frames = np.concatenate(fr).astype(np.float32)
    acfg = Gemma4UnifiedAudioConfig()
    tcfg = Gemma4UnifiedTextConfig(hidden_size=D_EMB)
    res = {}
    for tag, dt in (("bf16", torch.bfloat16), ("f32", torch.float32)):
        emb = Gemma4UnifiedMultimodalEmbedder(acfg, tcfg).eval()
        with torch.no_grad():
            emb.embedding_projection.weight.copy_(torch.from_numpy(W))
        emb = emb.to(dt)
        if not torch.equal(emb.embedding_projection.weight.float(), torch.from_numpy(W)):
            fail("weight not bf16-exact")
        seen = {}
        emb.embedding_pre_projection_norm.register_forward_hook(lambda m, i, o: seen.__setitem__("norm", o))
        x = torch.from_numpy(frames)
        if tag == "f32":
            x = x.to(torch.bfloat16).float()           # g4 casts to bf16 always (checkpoint dtype)
        with torch.no_grad():
            y = emb(x[None])[0]
        if y.dtype != dt or seen["norm"].dtype != dt:
            fail("dtype of the %s run" % tag)
        res["norm_" + tag] = seen["norm"][0].float().numpy()
        res["embed_" + tag] = y.float().numpy()
    if emb.eps != 1e-6:
        fail("audio rms_norm_eps %g" % emb.eps)
    if np.any(res["embed_bf16"][-1] != 0) or np.any(res["norm_f32"][-1] != 0):
        fail("silent frame does not embed to 0")
    out = os.path.join(OUT, "embed.g4t")
    write_g4t(out, [("weight", W), ("frames", frames), ("norm_bf16", res["norm_bf16"]),
                    ("norm_f32", res["norm_f32"]), ("embed_bf16", res["embed_bf16"]),
                    ("embed_f32", res["embed_f32"]), ("eps", np.array([emb.eps], np.float32))])
    written.append(out)
    d = np.abs(res["embed_bf16"] - res["embed_f32"]).max()
    print("embed: bf16 vs f32 max |diff| %.3g (max |embed| %.3g)" % (d, np.abs(res["embed_f32"]).max()))

    # ---- MANIFEST
    def sha(p):
        return hashlib.sha256(open(p, "rb").read()).hexdigest()
    lines = ["# golden/audio/MANIFEST - provenance and checksums of the audio goldens (golden/gen_audio.py)",
             "format g4t %d" % G4T_VERSION,
             "python %s" % platform.python_version(),
             "torch %s" % torch.__version__,
             "transformers %s" % transformers.__version__,
             "numpy %s" % np.__version__,
             "soundfile %s (libsndfile %s)" % (soundfile.__version__, soundfile.__libsndfile_version__),
             "soxr %s" % soxr.__version__,
             "command python golden/gen_audio.py",
             "date %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "seed %d" % SEED,
             "generator-sha256 %s" % sha(os.path.abspath(__file__))]
    for name in CLIPS:
        p = clip_path(name)
        lines.append("input-sha256 %s %d %s" % (sha(p), os.path.getsize(p), os.path.relpath(p, ROOT)))
    for p in written:
        lines.append("sha256 %s %d %s" % (sha(p), os.path.getsize(p), os.path.relpath(p, HERE)))
    with open(os.path.join(OUT, "MANIFEST"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(p) for p in written)
    print("wrote %d files, %d bytes, and golden/audio/MANIFEST" % (len(written), total))


if __name__ == "__main__":
    main()
