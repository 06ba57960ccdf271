//go:build goexperiment.simd

package bench

const simdNote = "GOEXPERIMENT=simd"
