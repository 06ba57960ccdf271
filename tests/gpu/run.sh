#!/usr/bin/env bash
# GPU check for issue 8: GPT-2-small on XLA CUDA against the Go backend (parity) and against
# PyTorch + transformers on the same GPU (speed).
#
#   tests/gpu/run.sh build          # on the development machine: builds tests/gpu/bin/gpucheck (cgo)
#   tests/gpu/run.sh run [REPS]     # on the GPU machine (no network): finds the jax CUDA plugin,
#                                   # writes random GPT-2-small weights, runs both, prints a ratio table
#   tests/gpu/run.sh dry            # CPU dry run of the same steps with a fake plugin path
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd
BIN=tests/gpu/bin
OUT=${OUT:-/tmp/gonnsight-gpu}
mkdir -p "$OUT"

find_plugin() {
  for p in ${GONNSIGHT_XLA_PLUGIN:-} \
      $(ls -d /usr/local/lib/python3*/dist-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so \
             /usr/local/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so \
             /usr/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so \
             /opt/conda/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so \
             "$HOME"/.local/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null); do
    [ -f "$p" ] && { echo "$p"; return; }
  done
  python3 - <<'PY' 2>/dev/null || true
import glob, site, sys
for d in site.getsitepackages() + [site.getusersitepackages()]:
    for p in glob.glob(d + "/jax_plugins/xla_cuda*/xla_cuda_plugin.so"):
        print(p); sys.exit(0)
PY
}

case "${1:-}" in
  build)
    mkdir -p "$BIN"
    go build -o "$BIN/gpucheck" ./tests/gpu/gpucheck
    echo "built $BIN/gpucheck"
    ;;
  run)
    REPS=${2:-10}
    [ -x "$BIN/gpucheck" ] || { echo "no $BIN/gpucheck: run 'tests/gpu/run.sh build' on the development machine and carry $BIN"; exit 1; }
    PLUGIN=$(find_plugin)
    if [ -z "$PLUGIN" ]; then
      echo "no CUDA PJRT plugin found (pip install jax[cuda13] or jax-cuda13-pjrt puts xla_cuda_plugin.so under jax_plugins/)"; exit 1
    fi
    echo "plugin: $PLUGIN"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$BIN/gpucheck" -backend "xla:$PLUGIN" -dir "$OUT/model" -reps "$REPS" | tee "$OUT/go.json"
    if python3 -c 'import torch, transformers' 2>/dev/null; then
      python3 tests/gpu/torch_gpu.py "$OUT/model" "$REPS" | tee "$OUT/torch.json"
      python3 - "$OUT/go.json" "$OUT/torch.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
print("\n| workload | gonnsight XLA CUDA (ms) | PyTorch + transformers (ms) | ratio |")
print("|---|---|---|---|")
for k, v in g["TimesMS"].items():
    tv = t.get(k)
    print(f"| {k} | {v:.1f} | {tv:.1f} | {v/tv:.2f} |" if tv else f"| {k} | {v:.1f} | - | - |")
print("\nmax relative error XLA vs Go backend:", json.dumps(g["MaxRelErr"]))
PY
    else
      echo "torch/transformers not installed here: no PyTorch comparison"
    fi
    ;;
  dry)
    mkdir -p "$OUT/fake"
    echo "not a plugin" > "$OUT/fake/xla_cuda_plugin.so"
    GONNSIGHT_XLA_PLUGIN="$OUT/fake/xla_cuda_plugin.so" go run ./tests/gpu/gpucheck -dir "$OUT/model" -reps 1 -quick
    ;;
  *)
    sed -n '2,9p' "$0"; exit 2 ;;
esac
