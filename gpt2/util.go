package gpt2

import (
	"strconv"
	"unsafe"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

type shapesShape = shapes.Shape

func makeShape(dt dtypes.DType, dims ...int) shapes.Shape { return shapes.Make(dt, dims...) }

func itoa(i int) string { return strconv.Itoa(i) }

func float32Bytes(data []float32) []byte {
	if len(data) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), len(data)*4)
}
