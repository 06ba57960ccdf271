#!/usr/bin/env bash
# gonnsight set-up on a fresh Debian/Ubuntu machine (idempotent: a second run is fast and
# changes nothing). Installs what is missing, builds the CLI and the kernel tools, registers
# the "Go (gonnsight)" Jupyter kernel, generates the tiny random test model, pre-warms the Go
# build cache and runs the walkthrough notebook headless as a smoke test.
#
#   ./install.sh            # everything
#   ./install.sh --gpu      # also install the CUDA PJRT plugin for XLA (needs internet)
#   ./install.sh --no-smoke # skip the notebook smoke test
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
export GOEXPERIMENT=simd
export GONNSIGHT_HOME=${GONNSIGHT_HOME:-$HOME/.local/share/gonnsight}
BIN_DIR=${GONNSIGHT_BIN:-$HOME/.local/bin}
GPU=0 SMOKE=1
for a in "$@"; do
  case "$a" in
    --gpu) GPU=1 ;;
    --no-smoke) SMOKE=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# 1. Go 1.26+
if ! command -v go >/dev/null; then
  echo "install.sh: Go is not installed. Install Go 1.26 or newer from https://go.dev/dl/ and re-run." >&2
  exit 1
fi
GOV=$(go env GOVERSION | sed 's/^go//')
case "$GOV" in 1.2[6-9]*|1.[3-9]*) ;; *) echo "install.sh: Go $GOV is too old; gonnsight needs Go 1.26+" >&2; exit 1 ;; esac
say "Go $GOV (GOEXPERIMENT=simd)"

# 2. Jupyter: from pip where an index is reachable, else the system's packages.
have_jupyter() {
  for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import jupyter_client, nbclient, nbconvert' 2>/dev/null; then
      return 0
    fi
  done
  return 1
}
if have_jupyter; then
  say "Jupyter: present"
elif command -v apt-get >/dev/null; then
  say "Jupyter: installing Debian packages"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq jupyter-client python3-nbclient jupyter-nbconvert \
    jupyter-notebook python3-ipykernel >/dev/null
elif python3 -m pip install --user jupyter nbclient nbconvert >/dev/null 2>&1; then
  say "Jupyter: installed with pip"
else
  echo "install.sh: could not install Jupyter (no apt-get, pip failed): install jupyter, nbclient and nbconvert, then re-run" >&2
  exit 1
fi

# 2b. For the browser test of the tutorials (tests/browser_test.go): Chromium and the classic
# notebook page, from Debian's packages where apt-get is available.
if ! command -v chromium >/dev/null || ! /usr/bin/python3 -c 'import notebook.notebookapp' 2>/dev/null; then
  if command -v apt-get >/dev/null; then
    say "browser test tools: chromium, jupyter-notebook (Debian packages)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium jupyter-notebook >/dev/null
  else
    echo "install.sh: no apt-get: install Chromium and Jupyter's classic notebook for the browser test" >&2
  fi
fi

# 3. The CLI.
say "building gonnsight into $BIN_DIR"
mkdir -p "$BIN_DIR"
go build -o "$BIN_DIR/gonnsight" ./cmd/gonnsight
GN="$BIN_DIR/gonnsight"
"$GN" version

# 4. Kernel tools (GoNB, goimports, gopls from the Go module proxy), kernelspec, pre-warm;
# --lint: also the pinned staticcheck that scripts/test.sh runs.
say "kernel: tools, staticcheck, kernelspec, build-cache pre-warm"
"$GN" kernel install --module "$ROOT" --lint

# 5. The tiny random model (deterministic; for fast tests). The trained default model ships
# in the repository (models/brown-gpt2): nothing to download.
say "tiny test model"
"$GN" make-tiny --default

# 6. Optional: the CUDA PJRT plugin.
if [ "$GPU" = 1 ]; then
  say "XLA CUDA plugin"
  "$GN" install-xla || echo "install.sh: see the message above to install the plugin by hand" >&2
fi

# 7. Smoke test: the walkthrough notebook, headless.
if [ "$SMOKE" = 1 ]; then
  OUTNB="$GONNSIGHT_HOME/smoke/01_edit_walkthrough.ipynb"
  mkdir -p "$(dirname "$OUTNB")"
  say "smoke test: notebooks/01_edit_walkthrough.ipynb"
  "$GN" run notebooks/01_edit_walkthrough.ipynb --out "$OUTNB"
fi
case ":$PATH:" in *":$BIN_DIR:"*) ;; *) echo "note: add $BIN_DIR to your PATH" ;; esac
say "done: start Jupyter (jupyter notebook) and pick the kernel \"Go (gonnsight)\""
