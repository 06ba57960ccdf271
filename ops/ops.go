// Package ops re-exports the GoMLX graph operations a notebook needs inside Set, Skip,
// Compute and Backward functions, so that cells import only gonnsight packages (GoNB would
// otherwise try to `go get` GoMLX on its own, outside gonnsight's pinned versions).
package ops

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

type (
	// Node is a value in the graph being built.
	Node = graph.Node
	// Tensor is a concrete value (a saved result).
	Tensor = tensors.Tensor
	// SliceAxisSpec selects a range of one axis in Slice.
	SliceAxisSpec = graph.SliceAxisSpec
)

// Float32 is the float32 dtype.
var Float32 = dtypes.Float32

var (
	Add             = graph.Add
	Sub             = graph.Sub
	Mul             = graph.Mul
	Div             = graph.Div
	Neg             = graph.Neg
	Abs             = graph.Abs
	Exp             = graph.Exp
	Log             = graph.Log
	Tanh            = graph.Tanh
	Sqrt            = graph.Sqrt
	Square          = graph.Square
	ZerosLike       = graph.ZerosLike
	OnesLike        = graph.OnesLike
	Reshape         = graph.Reshape
	Transpose       = graph.Transpose
	Slice           = graph.Slice
	SliceAxis       = graph.SliceAxis
	AxisRange       = graph.AxisRange
	AxisElem        = graph.AxisElem
	Concatenate     = graph.Concatenate
	ReduceSum       = graph.ReduceSum
	ReduceMean      = graph.ReduceMean
	ReduceMax       = graph.ReduceMax
	ReduceAllSum    = graph.ReduceAllSum
	ReduceAllMean   = graph.ReduceAllMean
	Softmax         = graph.Softmax
	LogSoftmax      = graph.LogSoftmax
	ArgMax          = graph.ArgMax
	Where           = graph.Where
	BroadcastToDims = graph.BroadcastToDims
	ExpandAxes      = graph.ExpandAxes
	Squeeze         = graph.Squeeze
	ConvertDType    = graph.ConvertDType
	StopGradient    = graph.StopGradient
)

// MulScalar multiplies by a constant (baked into the graph: changing it recompiles; use
// Tracer.Input for values you sweep).
func MulScalar(x *Node, c float64) *Node { return graph.MulScalar(x, c) }

// AddScalar adds a constant.
func AddScalar(x *Node, c float64) *Node { return graph.AddScalar(x, c) }

// Scalar is a float32 constant in x's graph.
func Scalar(x *Node, v float64) *Node { return graph.Scalar(x.Graph(), x.DType(), v) }

// LogitDiff is logits[row, -1, a] - logits[row, -1, b] as a scalar, for a [batch, seq, vocab]
// logits value: the usual metric of patching experiments.
func LogitDiff(logits *Node, row, a, b int) *Node {
	last := graph.Slice(logits, graph.AxisElem(row), graph.AxisElem(-1), graph.AxisRange())
	last = graph.Reshape(last, -1)
	return graph.Reshape(graph.Sub(graph.Slice(last, graph.AxisElem(a)), graph.Slice(last, graph.AxisElem(b))))
}
