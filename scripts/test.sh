#!/usr/bin/env bash
# The test command of README.md: every Go test, including the end-to-end tests that run the
# notebooks through the installed kernel (./install.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd
export PATH="$HOME/.local/bin:$PATH"
go vet ./...
go test -count=1 -timeout 60m ./... "$@"
