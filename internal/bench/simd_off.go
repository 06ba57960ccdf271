//go:build !goexperiment.simd

package bench

const simdNote = "without GOEXPERIMENT=simd (the Go backend's matmuls are ~10× slower)"
