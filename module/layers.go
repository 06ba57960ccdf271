package module

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
)

// MatMulLast multiplies the last axis of x by w. wIn is the axis of w that is contracted
// (0 for [in,out] layouts, 1 for PyTorch's [out,in]). x is folded to 2-D first, because every
// backend runs plain 2-D matmuls fastest.
func MatMulLast(x, w *Node, wIn int) *Node {
	dims := x.Shape().Dimensions
	in := dims[len(dims)-1]
	rows := 1
	for _, d := range dims[:len(dims)-1] {
		rows *= d
	}
	wd := w.Shape().Dimensions
	if wd[wIn] != in {
		Errorf("shape mismatch: input has %d features (shape %v) but weight %v expects %d", in, dims, wd, wd[wIn])
	}
	out := wd[1-wIn]
	x2 := x
	if len(dims) != 2 {
		x2 = g.Reshape(x, rows, in)
	}
	y := g.DotGeneral(x2, []int{1}, nil, w, []int{wIn}, nil)
	if len(dims) != 2 {
		newDims := append(append([]int{}, dims[:len(dims)-1]...), out)
		y = g.Reshape(y, newDims...)
	}
	return y
}

// TransposedSuffix names a parameter that holds another 2-D parameter transposed:
// "transformer.wte.weight.T" is transformer.wte.weight with its axes swapped. The runner
// that feeds weights computes it once from the original and keeps it (Transposes), so that a
// matmul can use the layout its backend runs fastest without a transpose on every call.
const TransposedSuffix = ".T"

// TransposedParam returns the [cols, rows] parameter name+TransposedSuffix of gr, the
// transpose of the [rows, cols] parameter name, creating it on first use.
func TransposedParam(gr *g.Graph, name string, rows, cols int, dt dtypes.DType) *Node {
	full := name + TransposedSuffix
	if n := gr.GetParameterByName(full); n != nil {
		return n
	}
	return g.Parameter(gr, full, shapes.Make(dt, cols, rows))
}

// Linear is PyTorch's nn.Linear: weight [out, in], y = x @ W^T + b.
type Linear struct {
	In, Out int
	NoBias  bool
}

// NewLinear is a Linear layer from in to out features, with a bias.
func NewLinear(in, out int) *Linear { return &Linear{In: in, Out: out} }

func (l *Linear) Params() []ParamSpec {
	p := []ParamSpec{{Name: "weight", Shape: []int{l.Out, l.In}, Init: Normal(0.02)}}
	if !l.NoBias {
		p = append(p, ParamSpec{Name: "bias", Shape: []int{l.Out}, Init: InitZeros})
	}
	return p
}
func (l *Linear) Describe() string {
	bias := "True"
	if l.NoBias {
		bias = "False"
	}
	return fmt.Sprintf("in_features=%d, out_features=%d, bias=%s", l.In, l.Out, bias)
}
func (l *Linear) Forward(c *Ctx, in ...*Node) []*Node {
	y := MatMulLast(in[0], c.Param("weight"), 1)
	if !l.NoBias {
		y = g.Add(y, g.ExpandLeftToRank(c.Param("bias"), y.Rank()))
	}
	return []*Node{y}
}

// Conv1D is GPT-2's projection layer: weight stored [in, out], y = x @ W + b.
type Conv1D struct{ In, Out int }

// NewConv1D is a Conv1D (Hugging Face's GPT-2 linear: weight [in, out]) from in to out features.
func NewConv1D(in, out int) *Conv1D { return &Conv1D{In: in, Out: out} }

func (l *Conv1D) Params() []ParamSpec {
	return []ParamSpec{
		{Name: "weight", Shape: []int{l.In, l.Out}, Init: Normal(0.02)},
		{Name: "bias", Shape: []int{l.Out}, Init: InitZeros},
	}
}
func (l *Conv1D) Describe() string { return fmt.Sprintf("nf=%d, nx=%d", l.Out, l.In) }
func (l *Conv1D) Forward(c *Ctx, in ...*Node) []*Node {
	y := MatMulLast(in[0], c.Param("weight"), 0)
	return []*Node{g.Add(y, g.ExpandLeftToRank(c.Param("bias"), y.Rank()))}
}

// LayerNorm normalises the last axis: (x-mean)/sqrt(var+eps)*weight+bias.
type LayerNorm struct {
	Dim int
	Eps float64
}

// NewLayerNorm normalizes the last axis of size dim, with weight and bias.
func NewLayerNorm(dim int, eps float64) *LayerNorm { return &LayerNorm{Dim: dim, Eps: eps} }

func (l *LayerNorm) Params() []ParamSpec {
	return []ParamSpec{{Name: "weight", Shape: []int{l.Dim}, Init: InitOnes}, {Name: "bias", Shape: []int{l.Dim}, Init: InitZeros}}
}
func (l *LayerNorm) Describe() string {
	return fmt.Sprintf("(%d,), eps=%s, elementwise_affine=True", l.Dim, strconv.FormatFloat(l.Eps, 'g', -1, 64))
}
func (l *LayerNorm) Forward(c *Ctx, in ...*Node) []*Node {
	x, w, b := in[0], c.Param("weight"), c.Param("bias")
	if c.Fuse() {
		// The decomposed ops stay in the graph for gradients; the fused kernel computes.
		y, _ := g.InternalFusedOpCaller(
			func() *Node {
				r := x.Rank()
				return g.BackendFusedLayerNorm(x, []int{r - 1}, l.Eps, g.ExpandLeftToRank(w, r), g.ExpandLeftToRank(b, r))
			},
			func() *Node { return LayerNormOp(x, w, b, l.Eps) }, true)
		return []*Node{y}
	}
	return []*Node{LayerNormOp(x, w, b, l.Eps)}
}

// LayerNormOp normalises the last axis of x and applies weight and bias.
func LayerNormOp(x, weight, bias *Node, eps float64) *Node {
	axis := x.Rank() - 1
	mean := g.ReduceAndKeep(x, g.ReduceMean, axis)
	centered := g.Sub(x, mean)
	variance := g.ReduceAndKeep(g.Square(centered), g.ReduceMean, axis)
	// Sqrt then Div instead of Rsqrt: every backend has these two.
	y := g.Div(centered, g.Sqrt(g.AddScalar(variance, eps)))
	r := y.Rank()
	return g.Add(g.Mul(y, g.ExpandLeftToRank(weight, r)), g.ExpandLeftToRank(bias, r))
}

// Softmax is softmax over axis. GoMLX's g.Softmax builds the decomposed ops and then, on
// backends with a fused kernel, a fused node that is what runs: the decomposed nodes stay in
// the graph unused, so an edit of one of them would change nothing. Where the running module
// may not fuse (captures, and modules an edit rewrites), the decomposed ops are all there is.
func Softmax(c *Ctx, x *Node, axis int) *Node {
	if c.Fuse() {
		return g.Softmax(x, axis)
	}
	if axis < 0 {
		axis += x.Rank()
	}
	// Shifted by the (constant for gradients) maximum for stability, as g.Softmax does.
	shift := g.StopGradient(g.ReduceAndKeep(x, g.ReduceMax, axis))
	e := g.Exp(g.Sub(x, shift))
	return g.Div(e, g.ReduceAndKeep(e, g.ReduceSum, axis))
}

// Embedding looks up rows of weight [num, dim] by integer ids.
type Embedding struct{ Num, Dim int }

// NewEmbedding maps ids in [0, num) to rows of a [num, dim] table.
func NewEmbedding(num, dim int) *Embedding { return &Embedding{Num: num, Dim: dim} }

func (e *Embedding) Params() []ParamSpec {
	return []ParamSpec{{Name: "weight", Shape: []int{e.Num, e.Dim}, Init: Normal(0.02)}}
}
func (e *Embedding) Describe() string { return fmt.Sprintf("%d, %d", e.Num, e.Dim) }
func (e *Embedding) Forward(c *Ctx, in ...*Node) []*Node {
	ids := in[0]
	return []*Node{g.Gather(c.Param("weight"), g.ExpandAxes(ids, -1))}
}

// Dropout is the identity at inference (gonnsight never trains); it is kept as a module so
// that paths and printed trees match PyTorch's.
type Dropout struct{ P float64 }

func (d *Dropout) Describe() string {
	return fmt.Sprintf("p=%s, inplace=False", strconv.FormatFloat(d.P, 'g', -1, 64))
}
func (d *Dropout) Forward(c *Ctx, in ...*Node) []*Node { return in }

// Activation applies an elementwise function by the name Hugging Face's configs give it
// (activation_function): one of KnownActivations.
type Activation struct{ Kind string }

// KnownActivations are the activation_function values Activation computes ("" is identity).
var KnownActivations = []string{"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "quick_gelu",
	"relu", "silu", "swish", "tanh", "sigmoid", "linear", "identity"}

func (a *Activation) TypeName() string {
	switch a.Kind {
	case "gelu_new":
		return "NewGELUActivation"
	case "gelu_pytorch_tanh":
		return "PytorchGELUTanh"
	case "gelu_fast":
		return "FastGELUActivation"
	case "gelu":
		return "GELUActivation"
	case "quick_gelu":
		return "QuickGELUActivation"
	case "relu":
		return "ReLU"
	case "silu", "swish":
		return "SiLU"
	case "tanh":
		return "Tanh"
	case "linear":
		return "LinearActivation"
	}
	return "Activation"
}
func (a *Activation) Forward(c *Ctx, in ...*Node) []*Node {
	x := in[0]
	var y *Node
	switch a.Kind {
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": // the same tanh approximation
		// 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))
		decomposed := func() *Node {
			inner := g.MulScalar(g.Add(x, g.MulScalar(g.Mul(x, g.Square(x)), 0.044715)), math.Sqrt(2/math.Pi))
			return g.Mul(g.MulScalar(x, 0.5), g.OnePlus(g.Tanh(inner)))
		}
		if c.Fuse() {
			y, _ = g.InternalFusedOpCaller(func() *Node { return g.BackendFusedGelu(x, false) }, decomposed, true)
		} else {
			y = decomposed()
		}
	case "gelu":
		y = g.Mul(g.MulScalar(x, 0.5), g.OnePlus(g.Erf(g.MulScalar(x, 1/math.Sqrt2))))
	case "relu":
		y = g.Max(x, g.ZerosLike(x))
	case "tanh":
		y = g.Tanh(x)
	case "sigmoid":
		y = g.Logistic(x)
	case "quick_gelu": // x * sigmoid(1.702 x)
		y = g.Mul(x, g.Logistic(g.MulScalar(x, 1.702)))
	case "silu", "swish": // x * sigmoid(x)
		y = g.Mul(x, g.Logistic(x))
	case "identity", "linear", "":
		y = x
	default:
		Errorf("unknown activation %q (known: %s)", a.Kind, strings.Join(KnownActivations, ", "))
	}
	return []*Node{y}
}

// List holds children named "0", "1", ... (PyTorch's ModuleList). Its forward runs them in
// sequence, which makes it also a Sequential.
type List struct {
	Items []Module
	Type  string
}

func (l *List) TypeName() string {
	if l.Type != "" {
		return l.Type
	}
	return "ModuleList"
}
func (l *List) Children() []Child {
	out := make([]Child, len(l.Items))
	for i, m := range l.Items {
		out[i] = Child{Name: strconv.Itoa(i), Module: m}
	}
	return out
}
func (l *List) Forward(c *Ctx, in ...*Node) []*Node {
	for i := range l.Items {
		in = c.Call(strconv.Itoa(i), in...)
	}
	return in
}

// Identity passes its inputs through (the seed's WrapperModule).
type Identity struct{}

func (Identity) TypeName() string                    { return "WrapperModule" }
func (Identity) Forward(c *Ctx, in ...*Node) []*Node { return in }

// Split cuts x into n equal parts along axis (torch.split), labelling the parts
// "getitem", "getitem_1", ... as FX names the items of a split.
func Split(c *Ctx, x *Node, axis, n int) []*Node {
	parts := g.Split(x, axis, n)
	for i, p := range parts {
		name := "getitem"
		if i > 0 {
			name = "getitem_" + strconv.Itoa(i)
		}
		parts[i] = c.Label(name, p)
	}
	return parts
}
