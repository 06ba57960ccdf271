#!/usr/bin/python3
"""Independent reference for package tensor: writes tensor/testdata/golden.json.

Each case is one PyTorch operation (Debian's python3-torch) on fixed random inputs; the Go
test (tensor/golden_test.go) applies the matching tensor method to the same inputs and
compares. Run from the repository root:  /usr/bin/python3 tests/reference/tensor_ref.py
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tensor", "testdata", "golden.json")

torch.manual_seed(0)
x = torch.randn(2, 3, 5)
y = torch.randn(3, 1)
z = torch.rand(5) + 0.5
w = torch.randn(3, 5)
m = torch.randn(5, 4)
ints = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
# A row with ties, to pin the tie order of ArgMax and TopK (the first index wins).
ties = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.5, 0.5, 0.5, 0.5, 0.5]])

inputs = {"x": x, "y": y, "z": z, "w": w, "m": m, "ints": ints, "ties": ties}

cases = {
    "softmax_last": F.softmax(x, dim=-1),
    "softmax_axis1": F.softmax(x, dim=1),
    "log_softmax_last": F.log_softmax(x, dim=-1),
    "log_softmax_axis0": F.log_softmax(x, dim=0),
    "sum_0_2": x.sum(dim=(0, 2)),
    "sum_all": x.sum(),
    "mean_1": x.mean(dim=1),
    "mean_all": x.mean(),
    "norm_last": x.norm(dim=-1),
    "norm_0_1": torch.linalg.vector_norm(x, dim=(0, 1)),
    "max_1": x.amax(dim=1),
    "min_0": x.amin(dim=0),
    "argmax_last": x.argmax(dim=-1),
    "argmax_1": x.argmax(dim=1),
    "argmin_last": x.argmin(dim=-1),
    "argmax_ties": ties.argmax(dim=-1),
    "topk3_values": x.topk(3, dim=-1).values,
    "topk3_indices": x.topk(3, dim=-1).indices,
    "topk_ties_values": ties.topk(4, dim=-1, sorted=True).values,
    "add_broadcast": x + y,
    "mul_broadcast": x * y,
    "div_vector": x / z,
    "sub_scalar": x - 2.5,
    "cosine_last": F.cosine_similarity(x, w, dim=-1),
    "cosine_axis0": F.cosine_similarity(x[0], w, dim=0),
    "stack_axis1": torch.stack([x[0], x[1]], dim=1),
    "cat_axis2": torch.cat([x, x[:, :, :2]], dim=2),
    "permute_201": x.permute(2, 0, 1),
    "transpose_last": x.transpose(-1, -2),
    "matmul": x @ m,
    "matmul_vec": x[0, 0] @ m,
    "slice": x[:, 1:3, -2:],
    "take": x.index_select(2, torch.tensor([4, 0, 4])),
    "at_0_last": x[0, -1],
    "index_axis1": x[:, 2],
    "ints_sum_last": ints.sum(dim=-1),
    "ints_add": ints + 1,
    "exp": x.exp(),
    "abs": x.abs(),
    "pow2": x.pow(2),
}

# PyTorch leaves the order of tied values in topk unspecified (here it gives [2, 4, 1, 3]);
# the Go TopK promises the lower index first, so that order is written by hand.
cases["topk_ties_indices"] = torch.tensor([[1, 2, 4, 3], [0, 1, 2, 3]])


def enc(t):
    return {"shape": list(t.shape), "data": t.flatten().tolist(), "int": not t.is_floating_point()}


out = {"torch": torch.__version__, "inputs": {k: enc(v) for k, v in inputs.items()},
       "cases": {k: enc(v) for k, v in cases.items()}}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(out, f, indent=0)
print("wrote", OUT, len(cases), "cases")
