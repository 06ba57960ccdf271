//go:build onnx

package engine

// The ONNX Runtime backend (onnx:cpu). It needs github.com/gomlx/compute-onnx in go.mod:
// until it is there, build with -tags onnx in a module that requires it.
import _ "github.com/gomlx/compute-onnx"
