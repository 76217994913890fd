# make.py - regenerate the config.json test files with the installed transformers
# (Gemma4UnifiedConfig / Gemma4UnifiedTextConfig .to_json_file):
#   /root/g4venv/bin/python tests/data/config/make.py     (from the repo root)
# and print, for each, what transformers itself derives per layer (checked against ref/config.c
# by tests/test_config.c, whose expected values are these).
import json, os
from transformers import Gemma4UnifiedConfig, Gemma4UnifiedTextConfig, GenerationConfig

here = os.path.dirname(os.path.abspath(__file__))
def out(name):
    os.makedirs(f"{here}/{name}", exist_ok=True)
    return f"{here}/{name}/config.json"

tiny = dict(hidden_size=128, num_hidden_layers=6, intermediate_size=256, num_attention_heads=4,
            num_key_value_heads=2, num_global_key_value_heads=1, head_dim=32, global_head_dim=64,
            vocab_size=512, sliding_window=8,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2,
            final_logit_softcapping=30.0, attention_k_eq_v=True)
big = dict(hidden_size=3840, num_hidden_layers=48, intermediate_size=15360, num_attention_heads=16,
           num_key_value_heads=8, num_global_key_value_heads=1, head_dim=256, global_head_dim=512,
           vocab_size=262144, sliding_window=1024,
           layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 8,
           final_logit_softcapping=30.0, attention_k_eq_v=True)

# multimodal parts: g4's tiny ids and embedder sizes (mm width 96 != hidden 128, 64 position
# rows); the 12b uses transformers' defaults (the released checkpoint's values)
tiny_mm = dict(vision_config=dict(mm_embed_dim=96, mm_posemb_size=64, output_proj_dims=96),
               audio_config=dict(audio_embed_dim=640), boi_token_id=500, boa_token_id=501,
               image_token_id=502, audio_token_id=503, eoi_token_id=504, eoa_token_index=505,
               video_token_id=506)
big_mm = dict(vision_config={}, audio_config={})

# transformers' own serialization (per_layer_config holds the global-layer overrides)
Gemma4UnifiedConfig(text_config=tiny, **tiny_mm).to_json_file(out("tiny"))
Gemma4UnifiedTextConfig(**tiny).to_json_file(out("tiny_text"))
Gemma4UnifiedConfig(text_config=big, eos_token_id=[1, 106], **big_mm).to_json_file(out("12b"))
# composite without vision/audio: default (12b) ids lie outside the vocab -> g4 reads them as 0
Gemma4UnifiedConfig(text_config=tiny).to_json_file(out("tiny_textonly"))

# the published checkpoint's form: global_head_dim / num_global_key_value_heads, no per_layer_config
d = json.load(open(out("12b")))
del d["text_config"]["per_layer_config"]
d["text_config"]["global_head_dim"] = 512
d["text_config"]["num_global_key_value_heads"] = 1
json.dump(d, open(out("12b_hub"), "w"), indent=2, sort_keys=True)
GenerationConfig(bos_token_id=2, eos_token_id=[1, 106, 50], pad_token_id=0, do_sample=True, temperature=1.0,
                 top_k=64, top_p=0.95, suppress_tokens=[258883, 258882]).to_json_file(f"{here}/12b_hub/generation_config.json")

# tiny with a generation_config beside it
Gemma4UnifiedConfig(text_config=tiny, **tiny_mm).to_json_file(out("tiny_gen"))
GenerationConfig(eos_token_id=[1, 106, 50, 3], suppress_tokens=[5, 7]).to_json_file(f"{here}/tiny_gen/generation_config.json")

# every field absent: the class defaults
json.dump({"model_type": "gemma4_unified_text"}, open(out("defaults"), "w"))

# what transformers derives, for the expected values in tests/test_config.c
for name in ["tiny", "tiny_text", "tiny_textonly", "12b", "12b_hub", "tiny_gen", "defaults"]:
    p = f"{here}/{name}/config.json"
    m = json.load(open(p))["model_type"]
    c = (Gemma4UnifiedConfig if m == "gemma4_unified" else Gemma4UnifiedTextConfig).from_json_file(p)
    t = c.text_config if m == "gemma4_unified" else c
    L = t.num_hidden_layers
    layers = [t.per_layer_config[l] for l in range(L)]
    glob = [l for l in range(L) if t.layer_types[l] == "full_attention"]
    print(name, dict(L=L, d=t.hidden_size, ff=t.intermediate_size, h=t.num_attention_heads,
          hd=sorted({(x.head_dim, x.num_key_value_heads, t.layer_types[i]) for i, x in enumerate(layers)}),
          glob=glob, vocab=t.vocab_size, win=t.sliding_window, rope=t.rope_parameters, eps=t.rms_norm_eps,
          cap=t.final_logit_softcapping, keqv=t.attention_k_eq_v, ids=(t.bos_token_id, t.eos_token_id, t.pad_token_id)))
    if m == "gemma4_unified":
        v, a = c.vision_config, c.audio_config
        print("   ", dict(boi=c.boi_token_id, eoi=c.eoi_token_id, image=c.image_token_id, boa=c.boa_token_id,
              eoa=c.eoa_token_index, audio_tok=c.audio_token_id,
              vision=v and (v.mm_embed_dim, v.mm_posemb_size, v.output_proj_dims, v.model_patch_size),
              audio_dim=a and a.audio_embed_dim))
