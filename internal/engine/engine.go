// Package engine compiles and runs the graphs that modules build: it picks the backend,
// keeps weights resident on it, and reuses a compiled program whenever a newly built graph
// is identical to one compiled before (so sweeps over input values never recompile).
package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Engine owns a backend and a cache of compiled programs.
type Engine struct {
	Backend compute.Backend
	// Name is the backend's configuration ("go", "onnx:cpu", "xla:cuda"), Reason why it was chosen.
	Name, Reason string

	mu       sync.Mutex
	programs map[[32]byte]*graph.Graph
	compiles int
	runs     int
}

// New wraps a backend.
func New(b compute.Backend, name, reason string) *Engine {
	return &Engine{Backend: b, Name: name, Reason: reason, programs: map[[32]byte]*graph.Graph{}}
}

// ChoosesLayouts says whether the backend lays out matmul operands itself (XLA), so that
// keeping transposed copies of weights gains nothing there.
func (e *Engine) ChoosesLayouts() bool {
	return strings.HasPrefix(e.Name, "xla") || strings.HasPrefix(e.Backend.Name(), "xla")
}

// Compiles counts the programs compiled so far (a cache hit does not count).
func (e *Engine) Compiles() int { e.mu.Lock(); defer e.mu.Unlock(); return e.compiles }

// Runs counts program executions.
func (e *Engine) Runs() int { e.mu.Lock(); defer e.mu.Unlock(); return e.runs }

// Feed returns the tensor for a graph parameter, by name.
type Feed func(name string, shape shapes.Shape) (*tensors.Tensor, error)

// Build is the graph-building step: it creates parameters and returns the outputs.
type Build func(g *graph.Graph) ([]*graph.Node, error)

// Run builds a graph, compiles it unless an identical one was compiled before, feeds its
// parameters and runs it. Panics while building become errors.
func (e *Engine) Run(name string, build Build, feed Feed) ([]*tensors.Tensor, error) {
	g, outs, err := e.buildGraph(name, build)
	if err != nil {
		return nil, err
	}
	key := Fingerprint(g, outs)
	e.mu.Lock()
	prog, ok := e.programs[key]
	e.mu.Unlock()
	if !ok {
		if err := catch(func() error { return g.Compile(outs...) }); err != nil {
			return nil, fmt.Errorf("compiling %s on backend %s: %w", name, e.Name, err)
		}
		prog = g
		e.mu.Lock()
		e.programs[key] = prog
		e.compiles++
		e.mu.Unlock()
	} else {
		g.Finalize()
	}
	inputs := make([]any, prog.NumParameters())
	for i := range inputs {
		p := prog.GetParameterByHandle(graph.ParameterHandle(i))
		t, err := feed(p.GetParameterName(), p.Shape())
		if err != nil {
			return nil, err
		}
		if !t.Shape().Equal(p.Shape()) {
			return nil, fmt.Errorf("input %q has shape %s, the graph expects %s", p.GetParameterName(), t.Shape(), p.Shape())
		}
		inputs[i] = t
	}
	var results []*tensors.Tensor
	err = catch(func() error {
		results = prog.Run(inputs...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("running %s on backend %s: %w", name, e.Name, err)
	}
	e.mu.Lock()
	e.runs++
	e.mu.Unlock()
	return results, nil
}

// BuildOnly builds a graph (no compile, no run) and returns it with its outputs: for shape
// inference and graph capture. The caller must Finalize the graph.
func (e *Engine) BuildOnly(name string, build Build) (*graph.Graph, []*graph.Node, error) {
	return e.buildGraph(name, build)
}

func (e *Engine) buildGraph(name string, build Build) (g *graph.Graph, outs []*graph.Node, err error) {
	err = catch(func() error {
		g = graph.NewGraph(e.Backend, name)
		var berr error
		outs, berr = build(g)
		return berr
	})
	if err != nil && g != nil {
		catch(func() error { g.Finalize(); return nil })
	}
	return
}

// catch turns a panic into an error; a panic with an error (e.g. a module.Error) keeps
// that error, with its message alone.
func catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch x := r.(type) {
			case error:
				err = x
			default:
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}
	}()
	return fn()
}

// Catch runs fn and turns panics raised while building graphs into errors.
func Catch(fn func() error) error { return catch(fn) }

// Fingerprint hashes a built graph: every node's op, static parameters, input ids, shapes
// and constant values, plus the outputs. Two graphs with the same fingerprint compute the
// same function of their parameters, so one compiled program serves both.
func Fingerprint(g *graph.Graph, outs []*graph.Node) [32]byte {
	h := sha256.New()
	var buf []byte
	for _, n := range g.Nodes() {
		switch {
		case n.Type() == graph.NodeTypeConstant:
			h.Write([]byte("const"))
			h.Write([]byte(n.Shape().String()))
			if t := n.ConstantValue(); t != nil {
				t.ConstBytes(func(b []byte) { h.Write(b) })
			}
		case plainOps[n.Type()] && !n.IsLogged() && !n.StopGradient() && n.CustomGradient() == nil:
			// Ops whose only static parameter is their output shape: hashing the type, input
			// ids and shape is exact and avoids formatting n.String() (most of the cost of
			// every cached run, e.g. each generation step).
			buf = append(buf[:0], 0xff)
			buf = binary.AppendUvarint(buf, uint64(n.Type()))
			buf = binary.AppendUvarint(buf, uint64(len(n.Inputs())))
			for _, in := range n.Inputs() {
				buf = binary.AppendUvarint(buf, uint64(in.Id()))
			}
			sh := n.Shape()
			buf = binary.AppendUvarint(buf, uint64(sh.DType))
			buf = binary.AppendUvarint(buf, uint64(len(sh.Dimensions)))
			for _, d := range sh.Dimensions {
				buf = binary.AppendVarint(buf, int64(d))
			}
			h.Write(buf)
		default:
			h.Write([]byte(n.String()))
			h.Write([]byte{0})
		}
	}
	buf = append(buf[:0], 0xfe)
	for _, o := range outs {
		buf = binary.AppendUvarint(buf, uint64(o.Id()))
	}
	h.Write(buf)
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return key
}

// plainOps are the node types whose inputs and output shape say everything about them
// (their GoMLX node inputs hold only the operands; Reshape's dimensions and ConvertDType's
// dtype are the output shape's).
var plainOps = map[graph.NodeType]bool{
	graph.NodeTypeAdd: true, graph.NodeTypeSub: true, graph.NodeTypeMul: true, graph.NodeTypeDiv: true,
	graph.NodeTypeMax: true, graph.NodeTypeMin: true, graph.NodeTypePow: true,
	graph.NodeTypeNeg: true, graph.NodeTypeExp: true, graph.NodeTypeLog: true, graph.NodeTypeTanh: true,
	graph.NodeTypeSqrt: true, graph.NodeTypeRsqrt: true, graph.NodeTypeAbs: true, graph.NodeTypeLogistic: true,
	graph.NodeTypeErf:         true,
	graph.NodeTypeLessOrEqual: true, graph.NodeTypeLessThan: true, graph.NodeTypeGreaterThan: true,
	graph.NodeTypeGreaterOrEqual: true, graph.NodeTypeEqual: true, graph.NodeTypeNotEqual: true,
	graph.NodeTypeLogicalAnd: true, graph.NodeTypeLogicalOr: true, graph.NodeTypeLogicalNot: true,
	graph.NodeTypeWhere: true, graph.NodeTypeReshape: true, graph.NodeTypeConvertDType: true,
}
