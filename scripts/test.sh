#!/usr/bin/env bash
# The test command of README.md: every Go test, including the end-to-end tests that run the
# notebooks through the installed kernel (./install.sh first). Fuzz targets run their seed
# corpus as ordinary tests here; docs/reliability.md gives the command that fuzzes longer.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd
export PATH="$HOME/.local/bin:$PATH"
go vet ./...
go test -count=1 -timeout 60m ./... "$@"
# Race tests over the packages that share models across goroutines. -d=checkptr=0: under
# -race, gomlx/compute's AVX-512 matmul (internal/gobackend/dot/matmul/avx512_small.go) dies
# with "fatal error: checkptr: pointer arithmetic result points to invalid allocation" before
# any test runs; turning checkptr off keeps the race detector (docs/reliability.md).
go test -race -gcflags=all=-d=checkptr=0 -count=1 -timeout 20m ./nnsight ./edit
