package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOpenFloat32 opens a ~100 MB file and gets its F32 tensor. With
// mmap this costs O(header): "mmap/1MiB" and "mmap/100MiB" take about the
// same time. "readfile/100MiB" is the O(size) baseline of reading and
// decoding the whole file.
func BenchmarkOpenFloat32(b *testing.B) {
	create := func(n int) string {
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)
		}
		p := filepath.Join(b.TempDir(), fmt.Sprintf("f%d.safetensors", n))
		if err := Write(p, []Tensor{F32("big", []int{n / 1024, 1024}, data), F32("small", []int{4}, []float32{1, 2, 3, 4})}, nil); err != nil {
			b.Fatal(err)
		}
		return p
	}
	for _, mib := range []int{1, 100} {
		n := mib << 18 // float32 elements in mib MiB
		p := create(n)
		b.Run(fmt.Sprintf("mmap/%dMiB", mib), func(b *testing.B) {
			for b.Loop() {
				f, err := Open(p)
				if err != nil {
					b.Fatal(err)
				}
				v, err := f.Float32("big")
				if err != nil || len(v) != n || v[n-1] != float32(n-1) {
					b.Fatalf("bad read: %v", err)
				}
				f.Close()
			}
		})
		if mib != 100 {
			continue
		}
		b.Run(fmt.Sprintf("readfile/%dMiB", mib), func(b *testing.B) {
			for b.Loop() {
				buf, err := os.ReadFile(p)
				if err != nil {
					b.Fatal(err)
				}
				start := 8 + binary.LittleEndian.Uint64(buf)
				v := make([]float32, n)
				for i := range v {
					v[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[start+uint64(4*i):]))
				}
				if v[n-1] != float32(n-1) {
					b.Fatal("bad read")
				}
			}
		})
	}
}
