#!/usr/bin/python3
"""PyTorch timings for the tensor benchmarks of docs/performance.md (one thread, the same
[1, 1024, 50257] logits as tensor/bench_test.go; median of 5 runs, in ms).
Run: /usr/bin/python3 tests/reference/bench_tensor_torch.py"""
import statistics
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
x = torch.randn(1, 1024, 50257, dtype=torch.float32)


def ms(f, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


for name, f in [
    ("Softmax over the vocabulary", lambda: torch.softmax(x, -1)),
    ("LogSoftmax", lambda: torch.log_softmax(x, -1)),
    ("TopK(5)", lambda: torch.topk(x, 5, -1)),
    ("ArgMax", lambda: torch.argmax(x, -1)),
    ("At(0, -1).Softmax(-1).TopK(5)", lambda: torch.topk(torch.softmax(x[0, -1], -1), 5)),
]:
    print("%-32s %10.2f ms" % (name, ms(f)))
