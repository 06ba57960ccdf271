#!/usr/bin/env bash
# The test command of README.md: go vet, staticcheck (fails on any finding), every Go test,
# including the end-to-end tests that run the notebooks through the installed kernel
# (./install.sh first). Fuzz targets run their seed
# corpus as ordinary tests here; docs/reliability.md gives the command that fuzzes longer.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd
export PATH="$HOME/.local/bin:$PATH"
go vet ./...
# staticcheck, pinned: install.sh builds it into the tools folder (gonnsight kernel install --lint).
STATICCHECK="${GONNSIGHT_HOME:-$HOME/.local/share/gonnsight}/bin/staticcheck"
STATICCHECK_VERSION="(0.8.2)" # honnef.co/go/tools v0.8.2, internal/kernel StaticcheckTool
if [ ! -x "$STATICCHECK" ] || ! "$STATICCHECK" -version | grep -qF "$STATICCHECK_VERSION"; then
  echo "test.sh: no staticcheck $STATICCHECK_VERSION at $STATICCHECK: run ./install.sh (or gonnsight kernel install --lint)" >&2
  exit 1
fi
"$STATICCHECK" ./... # exits non-zero on any finding
go test -count=1 -timeout 60m ./... "$@"
# Race tests over the packages that share models across goroutines (and the model host). -d=checkptr=0: under
# -race, gomlx/compute's AVX-512 matmul (internal/gobackend/dot/matmul/avx512_small.go) dies
# with "fatal error: checkptr: pointer arithmetic result points to invalid allocation" before
# any test runs; turning checkptr off keeps the race detector (docs/reliability.md).
go test -race -gcflags=all=-d=checkptr=0 -count=1 -timeout 20m ./nnsight ./edit ./internal/host
