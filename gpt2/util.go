package gpt2

import (
	"strconv"
	"unsafe"
)

func itoa(i int) string { return strconv.Itoa(i) }

func float32Bytes(data []float32) []byte {
	if len(data) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), len(data)*4)
}
