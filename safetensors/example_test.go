package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gonnsight/gonnsight/safetensors"
)

func ExampleWrite() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	err = safetensors.Write(path, []safetensors.Tensor{
		safetensors.F32("layer.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		safetensors.F32("layer.bias", []int{3}, []float32{0.5, 0.5, 0.5}),
		safetensors.I64("step", nil, []int64{1000}), // shape nil (or []): a scalar
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}

	f, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		fmt.Println(name, info.DType, info.Shape)
	}
	// Output:
	// layer.bias F32 [3]
	// layer.weight F32 [2 3]
	// step I64 []
}

func ExampleOpen() {
	f, err := safetensors.Open("testdata/python.safetensors")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close() // slices from f must not be used after Close

	w, err := f.Float32("weight") // zero-copy view of the mapped file
	if err != nil {
		log.Fatal(err)
	}
	h, err := f.Float32("half") // F16, converted to a new []float32
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w[:3], h[:2], f.Metadata()["format"])
	// Output: [0.1 -2.5 3] [1 -0.5] pt
}

func ExampleTensorInfo_NumElements() {
	fmt.Println(safetensors.TensorInfo{Shape: []int{2, 3}}.NumElements(), safetensors.TensorInfo{}.NumElements())
	// Output: 6 1
}
