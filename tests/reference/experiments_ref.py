#!/usr/bin/python3
"""Independent PyTorch reference for gonnsight's experiments package (experiments/).

Uses the hand-written GPT-2 of gpt2_ref.py (same weights, same prompts c and k, same answer
tokens A and B) and computes, one forward per patch as a researcher would by hand:

  resid_pre/attn_out/mlp_out sweeps [L, T]   metric on k with that value at (layer, pos) from c
  heads sweep [L, H]                         metric on k with head h's output (all positions) from c
  attribution resid_pre / heads              grad of the metric on k . (c value - k value)
  ablate_zero / ablate_mean [L, H]           metric on c with head h's output zeroed / replaced
                                             by its mean over positions
  dla_components [2+2L], dla_heads [L, H]    direct logit attribution at the last position of c
  lens [L+1, T, V]                           log_softmax(ln_f(resid) @ unembedding^T), resid before block 0
                                             and after every block
The metric is logits[0, -1, A] - logits[0, -1, B].

Output: testdata/gpt2/<model>/experiments.safetensors (+ experiments.json, the descriptions).
Rerun: /usr/bin/python3 tests/reference/experiments_ref.py   (deterministic)
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref as ref  # noqa: E402

F64 = torch.float64


def build(cfg):
    out_dir = os.path.join(ref.OUT_ROOT, cfg["name"])
    model = ref.GPT2Ref(cfg, ref.make_params(cfg))
    w = model.w
    L, H, E, D = model.L, model.H, model.E, model.D
    A, B = ref.ANS_A, ref.ANS_B
    c = list(cfg["c"])
    k = list(c)
    k[2] = cfg["k_pos2"]
    T = len(c)
    out, desc = {}, {}

    def put(key, t, d):
        out[key] = t.detach().clone()
        desc[key] = d

    def metric(lg):
        return lg[0, -1, A] - lg[0, -1, B]

    # Values at each component, recorded on c and k.
    def record(ids):
        rec, heads = {}, {}

        def hook(p, v):
            rec[p] = v
            return None

        def head_hook(p, ph):
            heads[p] = ph
            return ph
        model.forward(ids, hook=hook, head_hook=head_hook)
        return rec, heads

    rc, hc = record(c)

    def resid_pre_path(li):
        return "transformer.drop" if li == 0 else "transformer.h.%d" % (li - 1)

    comps = {
        "resid_pre": resid_pre_path,
        "attn_out": lambda li: "transformer.h.%d.attn" % li,
        "mlp_out": lambda li: "transformer.h.%d.mlp" % li,
    }
    for name, path in comps.items():
        sweep = torch.zeros(L, T, dtype=F64)
        for li in range(L):
            for pi in range(T):
                tgt = path(li)

                def patch(p, v, tgt=tgt, pi=pi):
                    if p != tgt:
                        return None
                    v = v.clone()
                    v[:, pi, :] = rc[tgt][:, pi, :]
                    return v
                sweep[li, pi] = metric(model.forward(k, hook=patch))
        put("patch/%s" % name, sweep, "[L,T] metric on k with %s at (layer, pos) from c" % name)

    heads = torch.zeros(L, H, dtype=F64)
    for li in range(L):
        for h in range(H):
            tgt = "transformer.h.%d" % li

            def hp(p, ph, tgt=tgt, h=h):
                if p != tgt:
                    return ph
                ph = ph.clone()
                ph[:, h] = hc[tgt][:, h]
                return ph
            heads[li, h] = metric(model.forward(k, head_hook=hp))
    put("patch/heads", heads, "[L,H] metric on k with head h's output (all positions) from c")

    # Attribution patching: gradients on k.
    for name in ("resid_pre", "heads"):
        grads = {}

        def hook(p, v):
            # The first value is made a leaf that needs a gradient; later ones keep theirs.
            if p == "transformer.drop":
                v = v.detach().clone().requires_grad_(True)
            if name == "resid_pre" and p in [resid_pre_path(li) for li in range(L)]:
                v.retain_grad()
                grads[p] = v
            return v

        def head_hook(p, ph):
            if name == "heads":
                ph.retain_grad()
                grads[p] = ph
            return ph
        rk, hk = record(k)
        with torch.enable_grad():
            lg = model.forward(k, hook=hook, head_hook=head_hook)
            metric(lg).backward()
        if name == "resid_pre":
            attr = torch.zeros(L, T, dtype=F64)
            for li in range(L):
                p = resid_pre_path(li)
                attr[li] = ((rc[p] - rk[p]) * grads[p].grad).sum(-1)[0]
        else:
            attr = torch.zeros(L, H, dtype=F64)
            for li in range(L):
                p = "transformer.h.%d" % li
                attr[li] = ((hc[p] - hk[p]) * grads[p].grad).sum((-1, -2))[0]
        put("attribution/%s" % name, attr, "[L,%s] grad of the metric on k . (c - k value)" % ("T" if name == "resid_pre" else "H"))

    # Head ablation on c.
    for how in ("zero", "mean"):
        abl = torch.zeros(L, H, dtype=F64)
        for li in range(L):
            for h in range(H):
                tgt = "transformer.h.%d" % li

                def ah(p, ph, tgt=tgt, h=h):
                    if p != tgt:
                        return ph
                    ph = ph.clone()
                    if how == "zero":
                        ph[:, h] = 0
                    else:
                        ph[:, h] = ph[:, h].mean(dim=1, keepdim=True)
                    return ph
                abl[li, h] = metric(model.forward(c, head_hook=ah))
        put("ablate/%s" % how, abl, "[L,H] metric on c with head h's output %s-ablated (all positions)" % how)

    # Direct logit attribution at the last position of c.
    final = rc["transformer.h.%d" % (L - 1)][0, -1]
    scale = torch.sqrt(((final - final.mean()) ** 2).mean() + model.eps)
    u = ref.unembedding(w, cfg)  # wte, or lm_head.weight when untied (tiny-c)
    d = w["ln_f.weight"] * (u[A] - u[B])

    def proj(v):
        return float(((v - v.mean()) / scale * d).sum())
    parts = [proj(rc["transformer.wte"][0, -1]), proj(rc["transformer.wpe"][0, -1])]
    dla_heads = torch.zeros(L, H, dtype=F64)
    for li in range(L):
        parts.append(proj(rc["transformer.h.%d.attn" % li][0, -1]))
        parts.append(proj(rc["transformer.h.%d.mlp" % li][0, -1]))
        wo = w["h.%d.attn.c_proj.weight" % li]
        z = hc["transformer.h.%d" % li][0, :, -1]  # [H, D]
        for h in range(H):
            dla_heads[li, h] = proj(z[h] @ wo[h * D:(h + 1) * D])
    put("dla/components", torch.tensor(parts, dtype=F64), "[2+2L] embed, pos_embed, then each layer's attn and mlp")
    put("dla/heads", dla_heads, "[L,H] each head's output (without c_proj bias)")

    # Logit lens on c.
    rows = [rc["transformer.drop"]] + [rc["transformer.h.%d" % li] for li in range(L)]
    lens = torch.stack([torch.log_softmax(ref.layer_norm(r, w["ln_f.weight"], w["ln_f.bias"], model.eps)
                                          @ u.t(), -1)[0] for r in rows])
    put("lens", lens, "[L+1,T,V] log-probabilities of the logit lens on c")

    ref.write_safetensors(os.path.join(out_dir, "experiments.safetensors"), out)
    ref.write_json(os.path.join(out_dir, "experiments.json"),
                   {"description": "experiments/ golden values from tests/reference/experiments_ref.py; "
                                   "metric = logits[0,-1,A] - logits[0,-1,B] with A=%d, B=%d" % (A, B),
                    "c": c, "k": k, "A": A, "B": B, "keys": desc})
    return len(out)


def main():
    n = [build(cfg) for cfg in ref.MODELS]
    print("experiments_ref: %s golden keys" % n)


if __name__ == "__main__":
    sys.exit(main())
