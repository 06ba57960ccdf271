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

// The operations, one per GoMLX function of the same name.
var (
	// Add: x + y, elementwise, with GoMLX broadcasting (a scalar, or axes of size 1).
	Add = graph.Add
	// Sub: x - y, elementwise, with GoMLX broadcasting (a scalar, or axes of size 1).
	Sub = graph.Sub
	// Mul: x * y, elementwise, with GoMLX broadcasting (a scalar, or axes of size 1).
	Mul = graph.Mul
	// Div: x / y, elementwise, with GoMLX broadcasting (a scalar, or axes of size 1).
	Div = graph.Div
	// Neg: -x; same shape.
	Neg = graph.Neg
	// Abs: |x|; same shape.
	Abs = graph.Abs
	// Exp: e^x; same shape.
	Exp = graph.Exp
	// Log: natural logarithm; same shape.
	Log = graph.Log
	// Tanh: hyperbolic tangent; same shape.
	Tanh = graph.Tanh
	// Sqrt: square root; same shape.
	Sqrt = graph.Sqrt
	// Square: x²; same shape.
	Square = graph.Square
	// ZerosLike: zeros of x's shape and dtype.
	ZerosLike = graph.ZerosLike
	// OnesLike: ones of x's shape and dtype.
	OnesLike = graph.OnesLike
	// Reshape: the same values in new dimensions (one may be -1); the sizes must match.
	Reshape = graph.Reshape
	// Transpose: swaps two axes.
	Transpose = graph.Transpose
	// Slice: one AxisRange/AxisElem spec per leading axis; AxisElem keeps the axis with size 1.
	Slice = graph.Slice
	// SliceAxis: a range of one axis.
	SliceAxis = graph.SliceAxis
	// AxisRange: a Slice spec: all of an axis, or [start, end) (negative counts from the end).
	AxisRange = graph.AxisRange
	// AxisElem: a Slice spec: one index of an axis (negative counts from the end).
	AxisElem = graph.AxisElem
	// Concatenate: joins values along an axis; other dimensions must match.
	Concatenate = graph.Concatenate
	// ReduceSum: sums over the given axes (all when none), removing them.
	ReduceSum = graph.ReduceSum
	// ReduceMean: averages over the given axes (all when none), removing them.
	ReduceMean = graph.ReduceMean
	// ReduceMax: maximum over the given axes (all when none), removing them.
	ReduceMax = graph.ReduceMax
	// ReduceAllSum: sum of every element, a scalar.
	ReduceAllSum = graph.ReduceAllSum
	// ReduceAllMean: mean of every element, a scalar.
	ReduceAllMean = graph.ReduceAllMean
	// Softmax: softmax over the given axes (default the last); same shape.
	Softmax = graph.Softmax
	// LogSoftmax: log of softmax over the given axes (default the last); same shape.
	LogSoftmax = graph.LogSoftmax
	// ArgMax: index of the maximum along an axis, which is removed.
	ArgMax = graph.ArgMax
	// Where: cond ? x : y elementwise; a scalar x or y, or a cond that is a prefix of their shape, broadcasts.
	Where = graph.Where
	// BroadcastToDims: repeats axes of size 1 to the given dimensions.
	BroadcastToDims = graph.BroadcastToDims
	// ExpandAxes: inserts axes of size 1 at the given positions.
	ExpandAxes = graph.ExpandAxes
	// Squeeze: removes axes of size 1 (the given ones, or all).
	Squeeze = graph.Squeeze
	// ConvertDType: the same values in another dtype.
	ConvertDType = graph.ConvertDType
	// StopGradient: x, with no gradient flowing back through it.
	StopGradient = graph.StopGradient
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
