// Package safetensors reads and writes tensors in the Hugging Face safetensors format.
// Open memory-maps a file (zero-copy tensor views, header validated up front); Write stores tensors atomically.
//
// File layout: an 8-byte little-endian header length N, N bytes of JSON header
//
//	{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}
//
// and then the raw little-endian tensor data; data_offsets are relative to the
// first byte after the header.
package safetensors

import (
	"fmt"
	"math"
	"unsafe"
)

// DType is a safetensors element type, spelled as in the file header.
type DType string

// Supported element types.
const (
	DTypeF32  DType = "F32"
	DTypeF16  DType = "F16"
	DTypeBF16 DType = "BF16"
	DTypeF64  DType = "F64"
	DTypeI64  DType = "I64"
	DTypeI32  DType = "I32"
	DTypeI16  DType = "I16"
	DTypeI8   DType = "I8"
	DTypeU8   DType = "U8"
	DTypeBool DType = "BOOL"
)

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case DTypeF64, DTypeI64:
		return 8
	case DTypeF32, DTypeI32:
		return 4
	case DTypeF16, DTypeBF16, DTypeI16:
		return 2
	case DTypeI8, DTypeU8, DTypeBool:
		return 1
	}
	return 0
}

// TensorInfo describes one tensor of an opened file.
// Begin and End are byte offsets relative to the start of the data section.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements returns the product of the shape (1 for a scalar, shape []).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// maxHeaderSize bounds the JSON header length accepted by Open.
const maxHeaderSize = 100 << 20

// hostLittleEndian reports whether the host stores integers little-endian,
// which is what allows F32 data to be viewed in place.
var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// numElements multiplies dims, reporting false on a negative dim or if the
// product (times elemSize) would not fit in an int64.
func numElements(shape []int64, elemSize int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	if elemSize > 0 && n > math.MaxInt64/elemSize {
		return 0, false
	}
	return n, true
}

func shapeString(shape []int64) string { return fmt.Sprint(shape) }
