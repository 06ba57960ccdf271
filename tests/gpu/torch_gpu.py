"""PyTorch peer of tests/gpu/gpucheck: the same GPT-2-small weights (the model directory
gpucheck wrote) in Hugging Face transformers' GPT2LMHeadModel on the GPU, the same workloads,
printed as JSON. Run on the GPU machine, where torch and transformers are installed."""
import json
import statistics
import sys
import time

import torch
from transformers import GPT2LMHeadModel


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def ids(b, s):
    return torch.tensor([[(i * 131 + j * 17) % 50000 for j in range(s)] for i in range(b)], device="cuda")


def main():
    model_dir, reps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10
    model = GPT2LMHeadModel.from_pretrained(model_dir).cuda().eval()
    out = {}
    with torch.no_grad():
        for b, s in [(1, 128), (8, 128), (32, 512)]:
            x = ids(b, s)
            out[f"forward {b}x{s}"] = timed(lambda: model(x), reps)
        prompt = ids(1, 8)
        out["generate 64 tokens"] = timed(
            lambda: model.generate(prompt, max_new_tokens=64, min_new_tokens=64, do_sample=False,
                                   pad_token_id=50256), max(1, reps // 3))
        clean = ids(1, 16)
        corrupt = clean.clone()
        corrupt[0, 3] = 999

        def sweep():
            for layer in range(12):
                cache = {}
                h = model.transformer.h[layer].register_forward_hook(lambda m, i, o: cache.__setitem__("h", o[0].clone()))
                model(clean)
                h.remove()
                for p in range(16):
                    def patch(m, i, o, p=p):
                        o[0][:, p] = cache["h"][:, p]
                        return o
                    h = model.transformer.h[layer].register_forward_hook(patch)
                    logits = model(corrupt).logits
                    (logits[0, -1, 5] - logits[0, -1, 7]).item()
                    h.remove()
        out["patching sweep 12x16"] = timed(sweep, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
