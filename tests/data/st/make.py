# make.py - regenerate the safetensors test files with the real `safetensors` Python package.
#   /root/g4venv/bin/python tests/data/st/make.py      (from the repo root)
# tests/test_safetensors.c recomputes every value with the same formulas and compares exactly.
import json, os
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))

def bf16_vals(n, k):   # multiples of 1/8 in [-11/8, 11/8]: exact in bf16
    return torch.tensor([((i * 7 + k) % 23 - 11) / 8.0 for i in range(n)], dtype=torch.float64)

def f32_vals(n, k):    # i*0.1 - k*0.01 computed in double, rounded once to float32
    return torch.tensor([i * 0.1 - k * 0.01 for i in range(n)], dtype=torch.float64).to(torch.float32)

def f16_vals(n, k):    # (i - k) / 2 + 1/1024: exact in f16 for these ranges
    return torch.tensor([(i - k) / 2.0 + 1.0 / 1024 for i in range(n)], dtype=torch.float64)

os.makedirs(f"{here}/tiny", exist_ok=True)
save_file({
    "w.bf16": bf16_vals(15, 1).to(torch.bfloat16).reshape(3, 5),
    "w.f32": f32_vals(24, 3).reshape(2, 3, 4),
    "w.f16": f16_vals(4, 2).to(torch.float16),
    "scalar": torch.tensor(0.75, dtype=torch.float32),
    "layer_scalar": torch.tensor([0.5], dtype=torch.bfloat16),
    "empty": torch.zeros(0, 3, dtype=torch.float32),
    "m.4d": bf16_vals(2 * 1 * 3 * 2, 5).to(torch.bfloat16).reshape(2, 1, 3, 2),
}, f"{here}/tiny/model.safetensors", metadata={"format": "pt"})

os.makedirs(f"{here}/shard", exist_ok=True)
s1 = {"a.weight": bf16_vals(8, 2).to(torch.bfloat16).reshape(2, 4), "b.weight": f32_vals(3, 7)}
s2 = {"c.weight": f16_vals(4, 1).to(torch.float16).reshape(2, 2)}
n1, n2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
save_file(s1, f"{here}/shard/{n1}", metadata={"format": "pt"})
save_file(s2, f"{here}/shard/{n2}", metadata={"format": "pt"})
total = sum(t.numel() * t.element_size() for t in list(s1.values()) + list(s2.values()))
with open(f"{here}/shard/model.safetensors.index.json", "w") as f:
    json.dump({"metadata": {"total_size": total},
               "weight_map": {"a.weight": n1, "b.weight": n1, "c.weight": n2}}, f, indent=2)
