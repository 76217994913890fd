"""golden/gen.py - golden tensors for g4 from the official Hugging Face Gemma 4 Unified code.

What it does
  1. Builds g4's builtin "tiny" text config as a transformers Gemma4UnifiedConfig (text_config
     only, vision/audio None) and writes it to golden/tiny/config.json.
  2. Draws deterministic random weights (numpy PCG64, one stream per tensor name), rounds every
     value to bf16 and saves golden/tiny/model.safetensors (BF16) under the real checkpoint's
     on-disk names (spec 5.1: model.language_model.*, no lm_head, no v_proj on full layers).
  3. Loads that file back with Gemma4UnifiedForConditionalGeneration.from_pretrained, twice:
     float32 (bf16 weights upcast) and bfloat16, both attn_implementation="eager" on CPU, and
     checks that the loaded parameters are bit-identical to what was drawn (no missing or
     unexpected keys, lm_head tied to the embedding, layer_scalar loaded).
  4. Runs fixed token prompts and records tensors at named taps with forward hooks, writing one
     .g4t file per (run, dtype) plus golden/MANIFEST. The .g4t format and every tensor name are
     documented in golden/README.md.

Inputs: none (everything is fixed here). Outputs: golden/tiny/*, golden/MANIFEST.
Spec sections followed: 1 (text decoder), 5.1 (tensor names), 7 (traps the weights must expose).

Usage:  python golden/gen.py            (from the repo root or anywhere; paths are relative
                                          to this file)
"""
import datetime
import hashlib
import json
import os
import platform
import struct
import sys
import zlib

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
import transformers.models.gemma4_unified.modeling_gemma4_unified as hfmod
from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tiny")
SEED = 20260522
G4T_VERSION = 1
REGEN_CMD = "python golden/gen.py"

# ---------------------------------------------------------------------------------------------
# g4's builtin "tiny" config (must match ref/config.c g4_config_builtin("tiny"))
# ---------------------------------------------------------------------------------------------
D_MODEL, D_FF, N_HEADS = 128, 256, 4
N_KV_SWA, N_KV_FULL = 2, 1
HD_SWA, HD_FULL = 32, 64
VOCAB, WINDOW = 512, 8
LAYER_TYPES = ["sliding_attention", "sliding_attention", "full_attention",
               "sliding_attention", "sliding_attention", "full_attention"]
N_LAYERS = len(LAYER_TYPES)

TEXT_CONFIG = dict(
    vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=D_FF,
    num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS,
    num_key_value_heads=N_KV_SWA, head_dim=HD_SWA,
    global_head_dim=HD_FULL, num_global_key_value_heads=N_KV_FULL, attention_k_eq_v=True,
    sliding_window=WINDOW, layer_types=list(LAYER_TYPES),
    rope_parameters={
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                           "rope_theta": 1000000.0},
    },
    rms_norm_eps=1e-6, final_logit_softcapping=30.0, tie_word_embeddings=True,
    hidden_activation="gelu_pytorch_tanh", max_position_embeddings=262144,
    num_kv_shared_layers=0, use_double_wide_mlp=False, attention_bias=False,
    use_bidirectional_attention="vision",
    bos_token_id=2, eos_token_id=1, pad_token_id=0,
)

# ---------------------------------------------------------------------------------------------
# Prompts (token ids; 2 = BOS). No pad/eos inside. See README for what each one checks.
# ---------------------------------------------------------------------------------------------
PROMPT_SHORT = [2, 47, 311, 5, 260]                                           # 5 tokens
PROMPT_LONG = [2, 101, 7, 388, 45, 212, 499, 13, 64, 300,
               150, 27, 420, 88, 9, 333, 256, 71, 190, 480]                   # 20 tokens > window 8
PROMPT_DECODE_PREFILL = [2, 18, 240, 77, 403, 5, 129, 350, 61, 222, 14, 97]   # 12 tokens
PROMPT_DECODE_STEPS = [305, 48, 176, 441]                                     # 4 cached steps
N_GENERATE = 8
QK_NORM_CENTER = 0.4
QK_LAYERS = [0, 2]   # sliding and global layer whose q/k/v are dumped (f32, long prompt)

assert len(PROMPT_SHORT) == 5 and len(PROMPT_LONG) == 20
assert len(PROMPT_DECODE_PREFILL) == 12 and len(PROMPT_DECODE_STEPS) == 4


def fail(msg):
    print("gen.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def is_global(l):
    return LAYER_TYPES[l] == "full_attention"


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------
def bf16_round(a):
    """float32 numpy -> nearest-even bf16 values, returned as float32 numpy."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).float().numpy()


def rng_for(name):
    # one independent stream per tensor: the values do not depend on generation order
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def make_weights():
    """Returns {on-disk name: float32 numpy array of bf16-representable values}, in a fixed order."""
    W = {}
    P = "model.language_model."

    def mat(name, rows, cols, std=None):
        std = (1.0 / np.sqrt(cols)) if std is None else std
        W[name] = bf16_round(rng_for(name).standard_normal((rows, cols)) * std)

    def norm(name, n, center=1.0, rel=0.3):
        W[name] = bf16_round(center * (1.0 + rel * rng_for(name).standard_normal(n)))

    # scaled embedding x*sqrt(128) has std ~1 with std 1/sqrt(128) here
    mat(P + "embed_tokens.weight", VOCAB, D_MODEL, std=1.0 / np.sqrt(D_MODEL))
    for l in range(N_LAYERS):
        L = P + "layers.%d." % l
        hd = HD_FULL if is_global(l) else HD_SWA
        nkv = N_KV_FULL if is_global(l) else N_KV_SWA
        norm(L + "input_layernorm.weight", D_MODEL)
        norm(L + "post_attention_layernorm.weight", D_MODEL)
        norm(L + "pre_feedforward_layernorm.weight", D_MODEL)
        norm(L + "post_feedforward_layernorm.weight", D_MODEL)
        W[L + "layer_scalar"] = bf16_round(rng_for(L + "layer_scalar").uniform(0.05, 0.95, 1))
        mat(L + "mlp.gate_proj.weight", D_FF, D_MODEL)
        mat(L + "mlp.up_proj.weight", D_FF, D_MODEL)
        mat(L + "mlp.down_proj.weight", D_MODEL, D_FF)
        mat(L + "self_attn.q_proj.weight", N_HEADS * hd, D_MODEL)
        mat(L + "self_attn.k_proj.weight", nkv * hd, D_MODEL)
        if not is_global(l):                       # K=V: full layers have no v_proj
            mat(L + "self_attn.v_proj.weight", nkv * hd, D_MODEL)
        mat(L + "self_attn.o_proj.weight", D_MODEL, N_HEADS * hd)
        # q/k norm weights centred on 0.4: scores q.k (scale 1.0) then have std ~1, like a
        # trained model. Centred on 1 the softmax is so peaked that the network becomes chaotic
        # (HF's own f32 noise reached 7e-4 on the logits and bf16 vs f32 differed by 10).
        norm(L + "self_attn.q_norm.weight", hd, center=QK_NORM_CENTER)
        norm(L + "self_attn.k_norm.weight", hd, center=QK_NORM_CENTER)
    # Final norm weight centred on 10 (not 1): logits then have std ~10 and reach past +-30,
    # so the soft-cap (spec 7.8) changes them a lot; 1+w vs w (7.1) is also 10% off here.
    norm(P + "norm.weight", D_MODEL, center=10.0)
    for k, v in W.items():
        if not np.all(np.isfinite(v)):
            fail("non-finite weight " + k)
    return W


# ---------------------------------------------------------------------------------------------
# .g4t writer (format: README.md)
# ---------------------------------------------------------------------------------------------
def write_g4t(path, tensors):
    """tensors: list of (name, numpy array float32 or int32)."""
    names = [n for n, _ in tensors]
    if len(set(names)) != len(names):
        fail("duplicate tensor names in " + path)
    with open(path, "wb") as f:
        f.write(b"G4GT")
        f.write(struct.pack("<II", G4T_VERSION, len(tensors)))
        for name, a in tensors:
            a = np.asarray(a)
            if a.dtype == np.float32:
                dt, data = 0, np.ascontiguousarray(a, dtype="<f4")
            elif a.dtype == np.int32:
                dt, data = 1, np.ascontiguousarray(a, dtype="<i4")
            else:
                fail("tensor %s has dtype %s (want float32/int32)" % (name, a.dtype))
            if dt == 0 and not np.all(np.isfinite(data)):
                fail("tensor %s is not finite" % name)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<II", dt, a.ndim))
            f.write(struct.pack("<%dQ" % a.ndim, *a.shape))
            f.write(data.tobytes())


# ---------------------------------------------------------------------------------------------
# Taps
# ---------------------------------------------------------------------------------------------
class Recorder:
    """Forward hooks that copy module outputs into self.rec[prefix + name] as float32 numpy [T][...]."""

    def __init__(self, model):
        self.model = model
        self.on = False
        self.prefix = ""
        self.rec = {}
        self.want_qk = False
        self.masks = {}        # layer -> additive mask seen by self_attn (only when want_mask)
        self.want_mask = False
        self.cur_layer = -1
        self.rope_calls = 0
        lm = model.model.language_model
        self.handles = []
        hk = self.handles.append
        hk(lm.embed_tokens.register_forward_hook(self._out("embed")))
        for l, layer in enumerate(lm.layers):
            hk(layer.register_forward_hook(self._out("layer_out.%d" % l)))
            hk(layer.self_attn.o_proj.register_forward_hook(self._out("attn_out.%d" % l)))
            hk(layer.mlp.register_forward_hook(self._out("ffn_out.%d" % l)))
            hk(layer.self_attn.register_forward_pre_hook(self._attn_pre(l), with_kwargs=True))
            hk(layer.self_attn.v_norm.register_forward_hook(self._vnorm(l)))
        hk(lm.norm.register_forward_hook(self._out("final_norm")))
        hk(model.lm_head.register_forward_hook(self._out("logits_raw")))

    @staticmethod
    def _np(t):
        # [1, T, ...] -> float32 numpy [T, ...]
        t = t.detach()
        if t.dim() >= 1 and t.shape[0] == 1:
            t = t[0]
        return t.float().numpy().copy()

    def put(self, name, arr):
        key = self.prefix + name
        if key in self.rec:
            fail("tap %s recorded twice" % key)
        self.rec[key] = arr

    def _out(self, name):
        def hook(mod, inp, out):
            if self.on:
                o = out[0] if isinstance(out, tuple) else out
                self.put(name, self._np(o))
        return hook

    def _attn_pre(self, l):
        def hook(mod, args, kwargs):
            self.cur_layer = l
            self.rope_calls = 0
            if self.on and self.want_mask:
                m = kwargs.get("attention_mask")
                self.masks[l] = None if m is None else m.detach().float().clone()
        return hook

    def _vnorm(self, l):
        def hook(mod, inp, out):
            if self.on and self.want_qk and l in QK_LAYERS:
                self.put("v.%d" % l, self._np(out))
        return hook

    def rope_wrapper(self, orig):
        def wrapped(x, cos, sin, unsqueeze_dim=1):
            y = orig(x, cos, sin, unsqueeze_dim=unsqueeze_dim)
            if self.on and self.want_qk and self.cur_layer in QK_LAYERS:
                which = "q" if self.rope_calls == 0 else "k"
                if unsqueeze_dim != 2 or self.rope_calls > 1:
                    fail("unexpected apply_rotary_pos_emb call pattern")
                self.put("%s_prerope.%d" % (which, self.cur_layer), self._np(x))
                self.put("%s_rope.%d" % (which, self.cur_layer), self._np(y))
            self.rope_calls += 1
            return y
        return wrapped


# ---------------------------------------------------------------------------------------------
# Checks on HF behaviour
# ---------------------------------------------------------------------------------------------
def check_mask(mask, T, l, verbose):
    """mask: additive [1,1,T,T]. Spec 1.5: global kv<=q; sliding kv<=q and kv>q-window."""
    if mask is None:
        fail("layer %d got no attention mask (eager path should build one)" % l)
    m = mask[0, 0]
    if tuple(m.shape) != (T, T):
        fail("layer %d mask shape %s, want (%d,%d)" % (l, tuple(m.shape), T, T))
    allowed = (m == 0)
    blocked = m < -1e30
    if not bool((allowed | blocked).all()):
        fail("layer %d mask has values other than 0 and a large negative number" % l)
    q = torch.arange(T)[:, None]
    kv = torch.arange(T)[None, :]
    want = kv <= q
    if not is_global(l):
        want = want & (kv > q - WINDOW)
    if not bool((allowed == want).all()):
        fail("layer %d mask differs from spec 1.5" % l)
    if verbose:
        kind = "global" if is_global(l) else "sliding"
        print("  HF %s mask, layer %d, T=%d (rows q, cols kv; 1 = attend), min value %g:"
              % (kind, l, T, float(m.min())))
        for i in range(T):
            print("    q=%2d " % i + "".join("1" if a else "." for a in allowed[i].tolist()))


def load_model(dtype):
    model, info = Gemma4UnifiedForConditionalGeneration.from_pretrained(
        OUT, dtype=dtype, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        print("loading info:", info)
        fail("from_pretrained reported missing/unexpected/mismatched keys or errors: %s" % bad)
    model.eval()
    # The released checkpoint is bf16, so its embedding scale is sqrt(hidden) cast to bf16
    # (62.0 for 3840; here 11.3125 for 128). HF's f32 upcast of the same weights would keep
    # sqrt(hidden) in fp32; g4 follows the checkpoint (issue 2, spec 7.7), so the f32 goldens
    # use the checkpoint's bf16-rounded scale as well. The bf16 run is unchanged by this.
    emb = model.model.language_model.embed_tokens
    emb.embed_scale.fill_(float(torch.tensor(TEXT_CONFIG["hidden_size"] ** 0.5).to(torch.bfloat16)))
    return model


def check_loaded(model, W, dtype):
    sd = model.state_dict()
    lm = model.model.language_model
    if model.lm_head.weight.data_ptr() != lm.embed_tokens.weight.data_ptr():
        fail("lm_head is not tied to embed_tokens")
    expected = set(W) | {"lm_head.weight"}
    extra = set(sd) - expected
    missing = expected - set(sd)
    if extra or missing:
        fail("state_dict keys differ: extra %s missing %s" % (sorted(extra), sorted(missing)))
    for k, v in W.items():
        t = sd[k]
        if t.dtype != dtype:
            fail("%s loaded as %s, want %s" % (k, t.dtype, dtype))
        if tuple(t.shape) != v.shape or not np.array_equal(t.float().numpy(), v):
            fail("%s differs after loading" % k)
    if not np.array_equal(sd["lm_head.weight"].float().numpy(), W["model.language_model.embed_tokens.weight"]):
        fail("lm_head weight differs from embedding")
    for l in range(N_LAYERS):
        a = lm.layers[l].self_attn
        if (a.v_proj is None) != is_global(l):
            fail("layer %d v_proj presence wrong" % l)
        if a.scaling != 1.0:
            fail("layer %d attention scaling %r (spec: 1.0)" % (l, a.scaling))
        if a.head_dim != (HD_FULL if is_global(l) else HD_SWA):
            fail("layer %d head_dim %d" % (l, a.head_dim))


def rope_info(model):
    rot = model.model.language_model.rotary_emb
    out = {}
    for lt in ("sliding_attention", "full_attention"):
        out[lt] = getattr(rot, lt + "_inv_freq")
    return out


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
def common_tensors(rec, tokens, prefix="", mids=True, raw=True):
    """Tensor list for one forward in file order: tokens, embed, per-layer taps, final, logits.
    mids: include attn_out.l / ffn_out.l; raw: include logits_raw (pre soft-cap)."""
    r = rec.rec
    out = []
    T = len(tokens)
    out.append((prefix + "tokens", np.asarray(tokens, dtype=np.int32)))
    out.append((prefix + "embed", r[prefix + "embed"]))
    for l in range(N_LAYERS):
        for tap in (("attn_out", "ffn_out", "layer_out") if mids else ("layer_out",)):
            out.append((prefix + "%s.%d" % (tap, l), r[prefix + "%s.%d" % (tap, l)]))
    out.append((prefix + "final_norm", r[prefix + "final_norm"]))
    if raw:
        out.append((prefix + "logits_raw", r[prefix + "logits_raw"]))
    out.append((prefix + "logits", r[prefix + "logits"]))
    am = np.argmax(r[prefix + "logits"], axis=-1).astype(np.int32)
    out.append((prefix + "argmax", am))
    out.append((prefix + "greedy", am[-1:].copy()))
    for name, a in out:
        if name != prefix + "greedy" and a.shape[0] != T:
            fail("%s has %d rows, want %d" % (name, a.shape[0], T))
    return out


def top2_margin(row):
    v = np.sort(row.astype(np.float64))
    return round(float(v[-1] - v[-2]), 4)


def forward_record(model, rec, ids, prefix="", past=None, use_cache=False):
    rec.prefix = prefix
    rec.on = True
    with torch.no_grad():
        o = model(input_ids=torch.tensor([ids]), past_key_values=past, use_cache=use_cache)
    rec.on = False
    rec.put("logits", rec._np(o.logits))
    return o


def softcap_check(rec, dtype, prefix=""):
    raw = torch.from_numpy(rec.rec[prefix + "logits_raw"]).to(dtype)
    got = rec.rec[prefix + "logits"]
    # HF: logits / 30 -> tanh -> * 30, each op in the logits dtype
    want = (torch.tanh(raw / 30.0) * 30.0).float().numpy()
    if not np.array_equal(got, want):
        fail("soft-cap is not (tanh(raw/30)*30) in %s: max diff %g" % (dtype, np.abs(got - want).max()))


# ---------------------------------------------------------------------------------------------
# Trap sensitivity: how much each classic porting mistake (spec 7) would move the f32 logits of
# the long prompt. Printed only; shows that the random weights make every trap visible far above
# HF's own f32 noise floor (hf_self_consistency_f32.logits).
# ---------------------------------------------------------------------------------------------
def trap_sensitivity(model):
    lm = model.model.language_model
    ids = torch.tensor([PROMPT_LONG])

    def logits():
        with torch.no_grad():
            return model(input_ids=ids, use_cache=False).logits[0].float().numpy()

    base = logits()
    res = {}

    def measure(name, apply, undo):
        apply()
        try:
            res[name] = float(np.abs(logits() - base).max())
        finally:
            undo()

    norm_cls = hfmod.Gemma4UnifiedRMSNorm
    orig_norm_fwd = norm_cls.forward

    def one_plus_w(self, x):
        y = self._norm(x.float())
        if self.with_scale:
            y = y * (1.0 + self.weight.float())
        return y.type_as(x)
    measure("norm x*(1+w) instead of x*w (7.1)",
            lambda: setattr(norm_cls, "forward", one_plus_w),
            lambda: setattr(norm_cls, "forward", orig_norm_fwd))

    attns = [la.self_attn for la in lm.layers]
    measure("attention scale 1/sqrt(hd) instead of 1 (7.2)",
            lambda: [setattr(a, "scaling", a.head_dim ** -0.5) for a in attns],
            lambda: [setattr(a, "scaling", 1.0) for a in attns])

    rot = lm.rotary_emb
    inv = rot.full_attention_inv_freq.clone()
    n_rot = int(0.25 * HD_FULL // 2)
    wrong = inv.clone()
    wrong[:n_rot] = 1.0 / (1e6 ** (torch.arange(0, 2 * n_rot, 2, dtype=torch.float) / (2 * n_rot)))
    measure("proportional RoPE with rotary-width denominator (7.3)",
            lambda: rot.full_attention_inv_freq.copy_(wrong),
            lambda: rot.full_attention_inv_freq.copy_(inv))
    measure("no RoPE on global layers",
            lambda: rot.full_attention_inv_freq.zero_(),
            lambda: rot.full_attention_inv_freq.copy_(inv))

    vfw = [a.v_norm.forward for a in attns]
    measure("v_norm missing (7.5)",
            lambda: [setattr(a.v_norm, "forward", lambda x: x) for a in attns],
            lambda: [setattr(a.v_norm, "forward", f) for a, f in zip(attns, vfw)])

    scal = [la.layer_scalar.clone() for la in lm.layers]
    measure("layer_scalar ignored (7.6)",
            lambda: [la.layer_scalar.fill_(1.0) for la in lm.layers],
            lambda: [la.layer_scalar.copy_(v) for la, v in zip(lm.layers, scal)])

    emb = lm.embed_tokens
    es = emb.embed_scale.clone()
    measure("embed scale left unrounded in fp32 (7.7; 11.3137 instead of bf16 11.3125)",
            lambda: emb.embed_scale.fill_(TEXT_CONFIG["hidden_size"] ** 0.5),
            lambda: emb.embed_scale.copy_(es))

    measure("sliding window 9 instead of 8 (7.9)",
            lambda: setattr(lm.config, "sliding_window", WINDOW + 1),
            lambda: setattr(lm.config, "sliding_window", WINDOW))
    measure("sliding window 7 instead of 8 (7.9)",
            lambda: setattr(lm.config, "sliding_window", WINDOW - 1),
            lambda: setattr(lm.config, "sliding_window", WINDOW))

    fsc = model.config.get_text_config().final_logit_softcapping
    measure("no final soft-cap (7.8)",
            lambda: setattr(model.config.get_text_config(), "final_logit_softcapping", None),
            lambda: setattr(model.config.get_text_config(), "final_logit_softcapping", fsc))

    if float(np.abs(logits() - base).max()) != 0.0:
        fail("trap_sensitivity did not restore the model")
    return res


def run_all(model, dtype, tag, W, summary):
    rec = Recorder(model)
    orig_rope = hfmod.apply_rotary_pos_emb
    hfmod.apply_rotary_pos_emb = rec.rope_wrapper(orig_rope)
    files = []
    is_f32 = dtype == torch.float32
    try:
        lm = model.model.language_model
        escale = lm.embed_tokens.embed_scale.to(lm.embed_tokens.weight.dtype).float().numpy().reshape(1)
        summary["embed_scale_" + tag] = float(escale[0])
        ls = np.array([float(lm.layers[l].layer_scalar.float()[0]) for l in range(N_LAYERS)], dtype=np.float32)
        inv = rope_info(model)
        summary["inv_freq_dtype_" + tag] = str(inv["full_attention"].dtype)

        # embed tap must equal E[id] * scale (in the model dtype)
        def check_embed(tokens):
            E = torch.from_numpy(W["model.language_model.embed_tokens.weight"]).to(dtype)
            want = (E[torch.tensor(tokens)] * torch.tensor(escale[0]).to(dtype)).float().numpy()
            if not np.array_equal(rec.rec["embed"], want):
                fail("embed tap != E[id] * embed_scale in %s" % dtype)

        # layer_scalar: layer_out.l == (residual after both adds) * s_l, checked in f32
        def check_layer_scalar(tokens):
            if dtype != torch.float32:
                return
            for l in range(N_LAYERS):
                x_in = rec.rec["embed"] if l == 0 else rec.rec["layer_out.%d" % (l - 1)]
                la = lm.layers[l]
                with torch.no_grad():
                    a = la.post_attention_layernorm(torch.from_numpy(rec.rec["attn_out.%d" % l]))
                    h = torch.from_numpy(x_in) + a
                    f = la.post_feedforward_layernorm(torch.from_numpy(rec.rec["ffn_out.%d" % l]))
                    want = ((h + f) * la.layer_scalar).numpy()
                if not np.array_equal(rec.rec["layer_out.%d" % l], want):
                    fail("layer %d: layer_out != (x + pn(attn) + pn(ffn)) * layer_scalar" % l)

        # ---- short
        rec.rec = {}
        rec.want_mask = True
        rec.masks = {}
        forward_record(model, rec, PROMPT_SHORT)
        for l in range(N_LAYERS):
            check_mask(rec.masks.get(l), len(PROMPT_SHORT), l, False)
        check_embed(PROMPT_SHORT)
        check_layer_scalar(PROMPT_SHORT)
        softcap_check(rec, dtype)
        t = common_tensors(rec, PROMPT_SHORT, raw=is_f32)
        t.insert(1, ("embed_scale", escale.astype(np.float32)))
        t.insert(2, ("layer_scalar", ls))
        summary["last_top2_margin_short_" + tag] = top2_margin(rec.rec["logits"][-1])
        files.append(("short_" + tag, t))

        # ---- long (20 > window 8), with q/k/v dumps in f32
        rec.rec = {}
        rec.masks = {}
        rec.want_qk = (dtype == torch.float32)
        forward_record(model, rec, PROMPT_LONG)
        rec.want_qk = False
        for l in range(N_LAYERS):
            check_mask(rec.masks.get(l), len(PROMPT_LONG), l, verbose=(tag == "f32" and l in (0, 2)))
        rec.want_mask = False
        check_embed(PROMPT_LONG)
        check_layer_scalar(PROMPT_LONG)
        softcap_check(rec, dtype)
        t = common_tensors(rec, PROMPT_LONG, raw=is_f32)
        if dtype == torch.float32:
            for l in QK_LAYERS:
                for nm in ("q_prerope", "q_rope", "k_prerope", "k_rope", "v"):
                    t.append(("%s.%d" % (nm, l), rec.rec["%s.%d" % (nm, l)]))
            for lt, short in (("sliding_attention", "swa"), ("full_attention", "full")):
                t.append(("inv_freq.%s" % short, inv[lt].float().numpy().copy()))
        logits_long = rec.rec["logits"]
        summary["max_abs_logit_raw_long_" + tag] = float(np.abs(rec.rec["logits_raw"]).max())
        summary["max_abs_logit_long_" + tag] = float(np.abs(logits_long).max())

        # greedy generation, 8 new tokens, HF generate with the KV cache
        with torch.no_grad():
            g = model.generate(input_ids=torch.tensor([PROMPT_LONG]), max_new_tokens=N_GENERATE,
                               do_sample=False, num_beams=1, eos_token_id=None,
                               pad_token_id=0, suppress_tokens=None)
        gen = g[0, len(PROMPT_LONG):].numpy().astype(np.int32)
        if len(gen) != N_GENERATE:
            fail("generate produced %d tokens" % len(gen))
        if gen[0] != np.argmax(logits_long[-1]):
            fail("generate's first token != argmax of the last prefill logits")
        # cross-check: greedy with full re-forward (no cache)
        ids = list(PROMPT_LONG)
        nocache = []
        margins = []     # top1 - top2 logit gap at each greedy step: how robust the argmax is
        with torch.no_grad():
            for _ in range(N_GENERATE):
                lg = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].float()
                nxt = int(torch.argmax(lg))
                top2 = torch.topk(lg, 2).values
                margins.append(round(float(top2[0] - top2[1]), 4))
                nocache.append(nxt)
                ids.append(nxt)
        summary["generate_" + tag] = gen.tolist()
        summary["generate_nocache_" + tag] = nocache
        summary["generate_top2_margin_" + tag] = margins
        if dtype == torch.float32 and nocache != gen.tolist():
            fail("f32 generate (cache) %s != no-cache greedy %s" % (gen.tolist(), nocache))
        t.append(("generate", gen))
        summary["last_top2_margin_long_" + tag] = top2_margin(logits_long[-1])
        files.append(("long_" + tag, t))

        # ---- decode: prefill 12, then 4 single-token steps through the KV cache
        rec.rec = {}
        o = forward_record(model, rec, PROMPT_DECODE_PREFILL, use_cache=True)
        past = o.past_key_values
        check_embed(PROMPT_DECODE_PREFILL)
        softcap_check(rec, dtype)
        t = common_tensors(rec, PROMPT_DECODE_PREFILL, mids=False, raw=False)
        for s, tok in enumerate(PROMPT_DECODE_STEPS):
            pre = "decode%d." % s
            rec.prefix = pre
            rec.on = True
            with torch.no_grad():
                o = model(input_ids=torch.tensor([[tok]]), past_key_values=past, use_cache=True)
            rec.on = False
            past = o.past_key_values
            rec.put("logits", rec._np(o.logits))
            softcap_check(rec, dtype, pre)
            t += common_tensors(rec, [tok], prefix=pre, mids=False, raw=False)
        # The cached steps must agree with one full forward over all 16 tokens. HF itself is not
        # bit-stable across sequence lengths in f32 (different matmul blockings), so this also
        # measures HF's own f32 noise floor per tap: a lower bound for any C-vs-HF tolerance.
        full_ids = PROMPT_DECODE_PREFILL + PROMPT_DECODE_STEPS
        forward_record(model, rec, full_ids, prefix="full.")
        P = len(PROMPT_DECODE_PREFILL)
        taps = ["embed"] + ["layer_out.%d" % l for l in range(N_LAYERS)] + ["final_norm", "logits"]
        floor = {}
        for tap in taps:
            f = rec.rec["full." + tap]
            d = np.abs(rec.rec[tap] - f[:P]).max()
            for s in range(len(PROMPT_DECODE_STEPS)):
                d = max(d, np.abs(rec.rec["decode%d.%s" % (s, tap)][0] - f[P + s]).max())
            floor[tap] = (float(d), float(np.abs(f).max()))
        summary["hf_self_consistency_" + tag] = floor
        dmax, lmax = floor["logits"]
        # measured 2.9e-5 on max|logit| 26 with torch 2.13 (1.1e-6 relative); bound 1e-5 relative
        if is_f32 and dmax > 1e-5 * lmax:
            fail("f32 cached decode differs from the full forward by %g (max |logit| %g)" % (dmax, lmax))
        dec_am = [int(np.argmax(rec.rec["decode%d.logits" % s][0])) for s in range(len(PROMPT_DECODE_STEPS))]
        full_am = np.argmax(rec.rec["full.logits"][P:], -1).tolist()
        if dec_am != full_am:
            print("  note: %s cached decode argmax %s != full forward %s" % (tag, dec_am, full_am))
        summary["last_top2_margin_decode_" + tag] = [top2_margin(rec.rec["logits"][-1])] + [
            top2_margin(rec.rec["decode%d.logits" % s][0]) for s in range(len(PROMPT_DECODE_STEPS))]
        files.append(("decode_" + tag, t))
    finally:
        hfmod.apply_rotary_pos_emb = orig_rope
        for h in rec.handles:
            h.remove()
    return files


# ---------------------------------------------------------------------------------------------
def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    torch.set_num_threads(1)     # fixed reduction order on CPU -> reproducible bits on one machine
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".g4t"):
            os.remove(os.path.join(OUT, f))

    # ---- config
    cfg = Gemma4UnifiedConfig(text_config=dict(TEXT_CONFIG), vision_config=None, audio_config=None,
                              tie_word_embeddings=True)
    tc = cfg.text_config
    for l in range(N_LAYERS):
        plc = tc.per_layer_config[l]
        want = (HD_FULL, N_KV_FULL) if is_global(l) else (HD_SWA, N_KV_SWA)
        if (plc.head_dim, plc.num_key_value_heads) != want:
            fail("per-layer config of layer %d is (%d,%d), want %s"
                 % (l, plc.head_dim, plc.num_key_value_heads, want))
    cpath = os.path.join(OUT, "config.json")
    cfg.to_json_file(cpath)
    # transformers serialises global_head_dim / num_global_key_value_heads as per_layer_config and
    # drops the two keys; the released checkpoint's config.json has them, so add them back
    # (consistent with per_layer_config; HF ignores them when per_layer_config is present).
    with open(cpath) as f:
        cj = json.load(f)
    cj["text_config"]["global_head_dim"] = HD_FULL
    cj["text_config"]["num_global_key_value_heads"] = N_KV_FULL
    cj["architectures"] = ["Gemma4UnifiedForConditionalGeneration"]
    cj["dtype"] = "bfloat16"
    with open(cpath, "w") as f:
        json.dump(cj, f, indent=2, sort_keys=True)
        f.write("\n")
    cfg2 = Gemma4UnifiedConfig.from_pretrained(OUT)
    if cfg2.text_config.to_dict() != cfg.text_config.to_dict():
        fail("config.json does not round-trip through transformers")

    # ---- weights
    W = make_weights()
    st = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in W.items()}
    safetensors.torch.save_file(st, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    os.chmod(os.path.join(OUT, "model.safetensors"), 0o644)
    print("weights: %d tensors, %d params" % (len(W), sum(v.size for v in W.values())))

    summary = {}
    all_files = []
    for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        print("== %s run" % tag)
        model = load_model(dtype)
        check_loaded(model, W, dtype)
        all_files += run_all(model, dtype, tag, W, summary)
        if dtype == torch.float32:
            traps = trap_sensitivity(model)
        del model

    for name, tensors in all_files:
        write_g4t(os.path.join(OUT, name + ".g4t"), tensors)

    # ---- manifest
    rel = ["tiny/config.json", "tiny/model.safetensors"] + ["tiny/%s.g4t" % n for n, _ in all_files]
    lines = [
        "# golden/MANIFEST - provenance and checksums of the golden files (format: golden/README.md)",
        "format g4t %d" % G4T_VERSION,
        "python %s" % platform.python_version(),
        "torch %s" % torch.__version__,
        "transformers %s" % transformers.__version__,
        "numpy %s" % np.__version__,
        "safetensors %s" % safetensors.__version__,
        "command %s" % REGEN_CMD,
        "date %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed %d" % SEED,
        "generator-sha256 %s" % sha256_file(os.path.abspath(__file__)),
    ]
    total = 0
    for r in rel:
        p = os.path.join(HERE, r)
        sz = os.path.getsize(p)
        total += sz
        lines.append("sha256 %s %d %s" % (sha256_file(p), sz, r))
    with open(os.path.join(HERE, "MANIFEST"), "w") as f:
        f.write("\n".join(lines) + "\n")

    print("== trap sensitivity (f32, long prompt): max |logits change| vs HF f32 noise floor %.2g"
          % summary["hf_self_consistency_f32"]["logits"][0])
    for k, v in traps.items():
        print("  %-66s %.3g" % (k, v))
    print("== summary")
    for k in sorted(summary):
        print("  %s: %s" % (k, summary[k]))
    for name, tensors in all_files:
        print("  %s.g4t: %d tensors, %d bytes" % (name, len(tensors),
                                                 os.path.getsize(os.path.join(OUT, name + ".g4t"))))
    print("  total golden bytes: %d" % total)


if __name__ == "__main__":
    main()
