#!/usr/bin/python3
"""induction_toy.py — how fast does a small GPT-2 learn to copy a repeated random segment?

A controlled experiment behind docs/induction.md, no corpus needed: a 2-layer GPT-2 (pre-norm
blocks, 4 heads, n_embd 128, gelu_new MLPs, learned positions, final layer norm) is trained on
rows that repeat a random segment of 8 to 32 tokens until the row is full, so that every token
after the first copy can be predicted by an induction head. Only one thing changes between runs:
whether the output layer is tied to the token embedding (GPT-2's default), the spread of the
initial embeddings, the vocabulary the segments are drawn from. It prints the training loss
(mean of the last 50 steps) every 100 steps and, at the end, the loss on the second copy of 64
held-out repeated segments: ln(vocab) means no copying, near 0 means an induction head.

    /usr/bin/python3 scripts/induction_toy.py                        # GPT-2 as gonnsight trains it
    /usr/bin/python3 scripts/induction_toy.py --untied --emb-std 1   # the variant that learns

Needs Debian's python3-torch. Seeded: the same options give the same numbers on one machine.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--vocab", type=int, default=64, help="segments are drawn uniformly from this many ids")
ap.add_argument("--table", type=int, default=0, help="the model's vocabulary (embedding and output rows; 0: --vocab): a real model has many more ids than the segments use")
ap.add_argument("--untied", action="store_true", help="an output layer of its own instead of the token embedding")
ap.add_argument("--emb-std", type=float, default=0.02, help="initial spread of the token and position embeddings (GPT-2: 0.02)")
ap.add_argument("--std", type=float, default=0.02, help="initial spread of every other matrix (GPT-2: 0.02)")
ap.add_argument("--layers", type=int, default=2)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--embd", type=int, default=128)
ap.add_argument("--ctx", type=int, default=64)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--steps", type=int, default=400)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
a = ap.parse_args()
torch.manual_seed(a.seed)
if a.threads:
    torch.set_num_threads(a.threads)
V, D, T = a.vocab, a.embd, a.ctx
N = a.table or V  # rows of the embedding and the output layer


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.out = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.up, self.down = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x, mask):
        B, n, _ = x.shape
        q, k, v = (t.view(B, n, a.heads, D // a.heads).transpose(1, 2) for t in self.qkv(self.ln_1(x)).split(D, -1))
        att = (q @ k.transpose(-1, -2) / math.sqrt(D // a.heads)).masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.out((att @ v).transpose(1, 2).reshape(B, n, D))
        return x + self.down(F.gelu(self.up(self.ln_2(x)), approximate="tanh"))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(N, D), nn.Embedding(T, D)
        self.blocks = nn.ModuleList(Block() for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(D)
        self.head = None if not a.untied else nn.Linear(D, N, bias=False)
        for name, w in self.named_parameters():
            if name.startswith(("tok.", "pos.")):
                nn.init.normal_(w, 0, a.emb_std)
            elif w.dim() == 2:
                nn.init.normal_(w, 0, a.std)
            elif name.endswith("bias"):
                nn.init.zeros_(w)  # layer norms keep their weight 1

    def forward(self, ids):
        n = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(n))
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        for b in self.blocks:
            x = b(x, mask)
        h = self.ln_f(x)
        return self.head(h) if self.head is not None else h @ self.tok.weight.T


def rows(gen, count):
    out = torch.empty(count, T + 1, dtype=torch.long)
    for r in range(count):
        n = int(torch.randint(8, 33, (1,), generator=gen))
        out[r] = torch.randint(0, V, (n,), generator=gen).repeat(T // n + 2)[:T + 1]
    return out


model = Model()
opt = torch.optim.AdamW(model.parameters(), a.lr, betas=(0.9, 0.95), weight_decay=0.1)
gen = torch.Generator().manual_seed(a.seed + 1)
half = T // 2
test_seg = torch.randint(0, V, (64, half), generator=torch.Generator().manual_seed(999))
test = torch.cat([test_seg, test_seg], 1)
start, recent, curve = time.time(), [], []
for step in range(1, a.steps + 1):
    for g in opt.param_groups:
        g["lr"] = a.lr * min(1.0, step / 100)
    ids = rows(gen, a.batch)
    loss = F.cross_entropy(model(ids[:, :-1]).reshape(-1, N), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    recent = (recent + [loss.item()])[-50:]
    if step % 100 == 0:
        curve.append(f"{sum(recent) / len(recent):.2f}")
with torch.no_grad():
    per = F.cross_entropy(model(test[:, :-1]).reshape(-1, N), test[:, 1:].reshape(-1), reduction="none").view(64, -1)
options = f"vocab {V}{f' of {N} ids' if N != V else ''}, {'untied' if a.untied else 'tied'}, embeddings N(0, {a.emb_std}), matrices N(0, {a.std}), {a.layers} layers, ctx {T}"
print(f"{options}: training loss every 100 steps {' '.join(curve)}; "
      f"second copy {per[:, half:].mean().item():.2f} (first {per[:, :half - 1].mean().item():.2f}, ln vocab {math.log(V):.2f}); "
      f"{a.steps} steps in {time.time() - start:.0f} s", flush=True)
