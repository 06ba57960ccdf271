#!/usr/bin/python3
"""PyTorch peer of gonnsight's benchmarks (`gonnsight bench --torch`).

A GPT-2 small written here in plain PyTorch (no `transformers`; the semantics of Hugging
Face's GPT2LMHeadModel in eval mode, as in gpt2_ref.py) with random weights drawn like
Hugging Face initialises them, timed on the workloads gonnsight's bench package times:

  * forward: logits at every position for token ids [batch, seq];
  * generate: greedy decoding of NEW tokens after a PROMPT-token prompt, with a hand-written
    key/value cache (the prompt once, then one token per step) or without one (the whole
    prefix every step), logits at every position of each step's input as the model returns them.

Everything runs under torch.no_grad() (inference mode). Threads come from OMP_NUM_THREADS
(`gonnsight bench` sets 2, with OMP_WAIT_POLICY=PASSIVE so idle threads do not spin while
gonnsight runs). Token ids follow the same formula as bench.IDs in Go.

Modes
-----
  bench_torch.py --serve        JSON lines on stdin/stdout: a hello line, then for each
                                request {"op": "forward", "batch": B, "seq": T} or
                                {"op": "generate", "prompt": P, "new": N, "cache": true}
                                one line {"seconds": S} (or {"error": "..."}).
  bench_torch.py [--shapes 1x1,1x8,1x128,1x512,8x64] [--reps 5]
                                standalone: prints a markdown table of medians (ms).
"""

import argparse
import json
import math
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # reported to the Go side as a hello error
    torch = None
    IMPORT_ERROR = str(e)


class GPT2:
    """GPT-2 small: 12 layers, 768 wide, 12 heads, 50257 tokens, 1024 positions."""

    def __init__(self, seed, vocab=50257, positions=1024, embd=768, layers=12, heads=12, eps=1e-5):
        g = torch.Generator().manual_seed(seed)
        self.E, self.H, self.L, self.eps = embd, heads, layers, eps

        def normal(*shape, std=0.02):
            return torch.empty(*shape).normal_(0.0, std, generator=g)

        proj_std = 0.02 / math.sqrt(2 * layers)
        self.wte = normal(vocab, embd)
        self.wpe = normal(positions, embd)
        self.blocks = []
        for _ in range(layers):
            self.blocks.append(dict(
                ln1_w=torch.ones(embd), ln1_b=torch.zeros(embd),
                attn_w=normal(embd, 3 * embd), attn_b=torch.zeros(3 * embd),
                proj_w=normal(embd, embd, std=proj_std), proj_b=torch.zeros(embd),
                ln2_w=torch.ones(embd), ln2_b=torch.zeros(embd),
                fc_w=normal(embd, 4 * embd), fc_b=torch.zeros(4 * embd),
                mlp_proj_w=normal(4 * embd, embd, std=proj_std), mlp_proj_b=torch.zeros(embd),
            ))
        self.lnf_w, self.lnf_b = torch.ones(embd), torch.zeros(embd)

    @staticmethod
    def conv1d(x, w, b):
        # Hugging Face's Conv1D: y = x @ W + b with W stored [in, out].
        shape = x.shape[:-1] + (w.shape[1],)
        return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).view(shape)

    @staticmethod
    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def forward(self, ids, past=None):
        """ids [B, T] (int64); past: list of (k, v) per layer [B, H, S, D] or None.
        Returns logits [B, T, V] and the new cache."""
        B, T = ids.shape
        start = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(start, start + T)
        h = self.wte[ids] + self.wpe[pos]
        D = self.E // self.H
        new_past = []
        for i, p in enumerate(self.blocks):
            x = F.layer_norm(h, (self.E,), p["ln1_w"], p["ln1_b"], self.eps)
            qkv = self.conv1d(x, p["attn_w"], p["attn_b"])
            q, k, v = qkv.split(self.E, dim=2)
            q = q.view(B, T, self.H, D).transpose(1, 2)
            k = k.view(B, T, self.H, D).transpose(1, 2)
            v = v.view(B, T, self.H, D).transpose(1, 2)
            if past is not None:
                k = torch.cat((past[i][0], k), dim=2)
                v = torch.cat((past[i][1], v), dim=2)
            new_past.append((k, v))
            S = k.shape[2]
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D)
            if T > 1:
                causal = torch.ones(S, S, dtype=torch.bool).tril()[S - T:S, :S]
                scores = torch.where(causal, scores, torch.tensor(torch.finfo(scores.dtype).min))
            w = torch.softmax(scores, dim=-1)
            o = torch.matmul(w, v).transpose(1, 2).reshape(B, T, self.E)
            h = h + self.conv1d(o, p["proj_w"], p["proj_b"])
            x = F.layer_norm(h, (self.E,), p["ln2_w"], p["ln2_b"], self.eps)
            m = self.conv1d(self.gelu_new(self.conv1d(x, p["fc_w"], p["fc_b"])), p["mlp_proj_w"], p["mlp_proj_b"])
            h = h + m
        h = F.layer_norm(h, (self.E,), self.lnf_w, self.lnf_b, self.eps)
        return torch.matmul(h, self.wte.t()), new_past


def ids_for(batch, seq):
    return torch.tensor([[(1 + 7919 * b + 104729 * t) % 50257 for t in range(seq)] for b in range(batch)],
                        dtype=torch.long)


def generate(model, prompt_len, new, cache):
    ids = ids_for(1, prompt_len)
    out = []
    if cache:
        logits, past = model.forward(ids)
        for step in range(new):
            tok = int(logits[0, -1].argmax())
            out.append(tok)
            if step + 1 == new:
                break
            logits, past = model.forward(torch.tensor([[tok]]), past)
    else:
        seq = ids
        for _ in range(new):
            logits, _ = model.forward(seq)
            tok = int(logits[0, -1].argmax())
            out.append(tok)
            seq = torch.cat((seq, torch.tensor([[tok]])), dim=1)
    return out


def run(model, req):
    op = req.get("op")
    with torch.no_grad():
        if op == "forward":
            ids = ids_for(int(req["batch"]), int(req["seq"]))
            t0 = time.perf_counter()
            logits, _ = model.forward(ids)
            dt = time.perf_counter() - t0
            assert logits.shape == (ids.shape[0], ids.shape[1], 50257)
            return dt
        if op == "generate":
            t0 = time.perf_counter()
            toks = generate(model, int(req["prompt"]), int(req["new"]), bool(req["cache"]))
            dt = time.perf_counter() - t0
            assert len(toks) == int(req["new"])
            return dt
    raise ValueError("unknown op %r" % op)


def blas_name():
    """The BLAS library this process loaded (after a matmul), e.g. libopenblasp-r0.3.21.so."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in path.lower() or "mkl" in path.lower():
                    return path.rsplit("/", 1)[-1]
    except OSError:
        pass
    return "unknown BLAS"


def serve(seed):
    if torch is None:
        print(json.dumps({"error": "cannot import torch: " + IMPORT_ERROR}), flush=True)
        return 1
    model = GPT2(seed)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_name()}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            resp = {"seconds": run(model, json.loads(line))}
        except Exception as e:  # keep serving; the Go side reports it
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(resp), flush=True)
    return 0


def standalone(seed, shapes, reps):
    model = GPT2(seed)
    rows = []
    work = [("forward %s, ms" % s.replace("x", "×"), {"op": "forward", "batch": int(s.split("x")[0]), "seq": int(s.split("x")[1])}, 1)
            for s in shapes]
    work += [("generate 32 after 8, KV cache, ms/token", {"op": "generate", "prompt": 8, "new": 32, "cache": True}, 32),
             ("generate 32 after 8, no cache, ms/token", {"op": "generate", "prompt": 8, "new": 32, "cache": False}, 32)]
    for name, req, div in work:
        run(model, req)  # warm-up
        ms = [run(model, req) * 1000 / div for _ in range(reps)]
        rows.append((name, statistics.median(ms)))
    print("PyTorch %s, %d threads, %s" % (torch.__version__, torch.get_num_threads(), blas_name()))
    print()
    print("| workload (median) | PyTorch |")
    print("| --- | ---: |")
    for name, v in rows:
        print("| %s | %.3g |" % (name, v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shapes", default="1x1,1x8,1x128,1x512,8x64")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    if a.serve:
        return serve(a.seed)
    standalone(a.seed, a.shapes.split(","), a.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
