package tensor

import (
	"math/rand/v2"
	"testing"
)

// logits1024 is a [1, 1024, 50257] tensor: GPT-2's logits for a 1024-token prompt.
func logits1024(b *testing.B) *Tensor {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	d := make([]float32, 1024*50257)
	for i := range d {
		d[i] = float32(r.NormFloat64() * 3)
	}
	return New(d, 1, 1024, 50257)
}

func BenchmarkSoftmaxLogits1024(b *testing.B) {
	x := logits1024(b)
	b.ResetTimer()
	for b.Loop() {
		x.Softmax(-1)
	}
}

func BenchmarkLogSoftmaxLogits1024(b *testing.B) {
	x := logits1024(b)
	b.ResetTimer()
	for b.Loop() {
		x.LogSoftmax(-1)
	}
}

func BenchmarkTopK5Logits1024(b *testing.B) {
	x := logits1024(b)
	b.ResetTimer()
	for b.Loop() {
		x.TopK(5)
	}
}

func BenchmarkArgMaxLogits1024(b *testing.B) {
	x := logits1024(b)
	b.ResetTimer()
	for b.Loop() {
		x.ArgMax(-1)
	}
}

func BenchmarkSoftmaxTopKLastPosition(b *testing.B) {
	x := logits1024(b)
	b.ResetTimer()
	for b.Loop() {
		x.At(0, -1).Softmax(-1).TopK(5)
	}
}

func BenchmarkSubNormLogits1024(b *testing.B) {
	x := logits1024(b)
	y := x.Add(1)
	b.ResetTimer()
	for b.Loop() {
		x.Sub(y).Norm(-1)
	}
}
