package remote

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

//go:generate go run ./gen

// Hand-written opcodes; generated ones (ops_gen.go) follow.
const (
	opNewFunction    = 1 + iota // name: a new top-level function
	opClosure                   // a closure of the op's function
	opParameter                 // name, shape
	opConstant                  // dtype, dims, raw bytes
	opReturn                    // values
	firstGeneratedOp = 16
)

// programMagic starts every program; opsetID follows it, so a host built against another
// version of compute's op set refuses the program instead of misreading it.
const programMagic = "gonnsight-program-1"

var opsetID = func() uint64 {
	h := fnv.New64a()
	for _, n := range opNames {
		h.Write([]byte(n))
		h.Write([]byte{0})
	}
	return h.Sum64()
}()

// opName names an opcode for messages.
func opName(op int) string {
	switch op {
	case opNewFunction:
		return "NewFunction"
	case opClosure:
		return "Closure"
	case opParameter:
		return "Parameter"
	case opConstant:
		return "Constant"
	case opReturn:
		return "Return"
	}
	if i := op - firstGeneratedOp; i >= 0 && i < len(opNames) {
		return opNames[i]
	}
	return fmt.Sprintf("op#%d", op)
}

func errUnknownOp(op int) error { return fmt.Errorf("unknown opcode %d", op) }

func sameCount(op string, got, want int) error {
	if got != want {
		return fmt.Errorf("%s returned %d values on the host, %d when recorded", op, got, want)
	}
	return nil
}

func concat(parts ...[]compute.Value) []compute.Value {
	if len(parts) == 1 {
		return parts[0]
	}
	var out []compute.Value
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Program is a recorded graph: what a host compiles and runs.
type Program struct {
	Bytes        []byte
	Hash         [32]byte
	InputNames   []string
	InputShapes  []shapes.Shape
	OutputShapes []shapes.Shape
	NumOps       int
}

// recBuilder records a program while a shadow builder of a local backend infers shapes and
// checks every op exactly as a backend would.
type recBuilder struct {
	backend *Backend
	inner   compute.Builder
	name    string
	enc     encoder
	fns     []*recFunction
	values  int
	nops    int
	inNames []string
	inShape []shapes.Shape
	outs    []shapes.Shape
	done    bool
}

type recValue struct {
	id    int
	inner compute.Value
}

type recFunction struct {
	b      *recBuilder
	inner  compute.Function
	id     int
	parent *recFunction
}

func newRecBuilder(b *Backend, name string) *recBuilder {
	rb := &recBuilder{backend: b, inner: b.shadow.Builder(name), name: name}
	rb.enc.buf = append(rb.enc.buf, programMagic...)
	rb.enc.uint(opsetID)
	rb.fns = []*recFunction{{b: rb, inner: rb.inner.Main(), id: 0}}
	return rb
}

func (b *recBuilder) Name() string           { return b.name }
func (b *recBuilder) Main() compute.Function { return b.fns[0] }

func (b *recBuilder) NewFunction(name string) (compute.Function, error) {
	inner, err := b.inner.NewFunction(name)
	if err != nil {
		return nil, err
	}
	f := &recFunction{b: b, inner: inner, id: len(b.fns)}
	b.fns = append(b.fns, f)
	e := b.fns[0].op(opNewFunction)
	e.string(name)
	return f, nil
}

func (b *recBuilder) OpShape(v compute.Value) (shapes.Shape, error) {
	rv, ok := v.(*recValue)
	if !ok {
		return shapes.Shape{}, fmt.Errorf("OpShape of a value (%T) this recorder did not make", v)
	}
	return b.inner.OpShape(rv.inner)
}

var errDistributed = fmt.Errorf("distributed execution through a model host: %w (shard on the host instead, see docs/scaling.md)", compute.ErrNotImplemented)

func (b *recBuilder) DistributedSPMD(int) error                     { return errDistributed }
func (b *recBuilder) DistributedAutoSharding(...compute.Mesh) error { return errDistributed }
func (b *recBuilder) DeviceAssignment(...compute.DeviceNum) error   { return errDistributed }

// Compile ends the recording: the executable it returns sends the program to the host.
func (b *recBuilder) Compile() (compute.Executable, error) {
	if b.done {
		return nil, errors.New("program compiled twice")
	}
	if b.outs == nil {
		return nil, errors.New("the main function never returned its outputs")
	}
	if b.enc.err != nil {
		return nil, b.enc.err
	}
	b.done = true
	p := &Program{Bytes: b.enc.buf, Hash: sha256.Sum256(b.enc.buf), InputNames: b.inNames,
		InputShapes: b.inShape, OutputShapes: b.outs, NumOps: b.nops}
	if b.backend.onCompile != nil {
		b.backend.onCompile(p)
	}
	return &executable{backend: b.backend, prog: p}, nil
}

// begin checks that op may be recorded: the host can run it and the program is still open.
func (f *recFunction) begin(op int) error {
	if f.b.done {
		return errors.New("op added after the program was compiled")
	}
	if i := op - firstGeneratedOp; i >= 0 && i < len(opNames) {
		if ot, err := compute.OpTypeString(opNames[i]); err == nil && f.b.backend.caps.Operations != nil && !f.b.backend.caps.Operations[ot] {
			return fmt.Errorf("%s on the model host's backend %s: %w", opNames[i], f.b.backend.hostName, compute.ErrNotImplemented)
		}
	}
	return nil
}

// op starts an op's record and returns the encoder for its arguments.
func (f *recFunction) op(op int) *encoder {
	f.b.nops++
	e := &f.b.enc
	e.uint(uint64(f.id))
	e.uint(uint64(op))
	return e
}

func (f *recFunction) end() error { return f.b.enc.err }

func (f *recFunction) in(v compute.Value) compute.Value {
	if rv, ok := v.(*recValue); ok {
		return rv.inner
	}
	return v
}

func (f *recFunction) fn(g compute.Function) compute.Function {
	if rf, ok := g.(*recFunction); ok {
		return rf.inner
	}
	return g
}

func (f *recFunction) out(v compute.Value) compute.Value {
	rv := &recValue{id: f.b.values, inner: v}
	f.b.values++
	return rv
}

func (f *recFunction) outs(vs []compute.Value) []compute.Value {
	out := make([]compute.Value, len(vs))
	for i, v := range vs {
		out[i] = f.out(v)
	}
	return out
}

func (f *recFunction) Name() string             { return f.inner.Name() }
func (f *recFunction) Builder() compute.Builder { return f.b }
func (f *recFunction) Parent() compute.Function {
	if f.parent == nil {
		return nil
	}
	return f.parent
}

func (f *recFunction) Closure() (compute.Function, error) {
	inner, err := f.inner.Closure()
	if err != nil {
		return nil, err
	}
	c := &recFunction{b: f.b, inner: inner, id: len(f.b.fns), parent: f}
	f.b.fns = append(f.b.fns, c)
	f.op(opClosure)
	return c, nil
}

func (f *recFunction) Parameter(name string, shape shapes.Shape, sharding *compute.ShardingSpec) (compute.Value, error) {
	if sharding != nil {
		return nil, errDistributed
	}
	v, err := f.inner.Parameter(name, shape, nil)
	if err != nil {
		return nil, err
	}
	e := f.op(opParameter)
	e.string(name)
	e.shape(shape)
	if f.id == 0 {
		f.b.inNames = append(f.b.inNames, name)
		f.b.inShape = append(f.b.inShape, shape)
	}
	return f.out(v), f.end()
}

func (f *recFunction) Constant(flat any, dims ...int) (compute.Value, error) {
	v, err := f.inner.Constant(flat, dims...)
	if err != nil {
		return nil, err
	}
	rt := reflect.TypeOf(flat)
	if rt == nil || rt.Kind() != reflect.Slice {
		return nil, fmt.Errorf("Constant wants a flat slice, got %T", flat)
	}
	dt := dtypes.FromGoType(rt.Elem())
	e := f.op(opConstant)
	e.uint(uint64(dt))
	e.uint(uint64(len(dims)))
	for _, d := range dims {
		e.int(int64(d))
	}
	e.bytes(dtypes.UnsafeByteSliceFromAny(flat))
	return f.out(v), f.end()
}

func (f *recFunction) Shape(v compute.Value) (shapes.Shape, error) {
	return f.inner.Shape(f.in(v))
}

func (f *recFunction) Return(outputs []compute.Value, shardings []*compute.ShardingSpec) error {
	for _, s := range shardings {
		if s != nil {
			return errDistributed
		}
	}
	inner := make([]compute.Value, len(outputs))
	for i, o := range outputs {
		inner[i] = f.in(o)
	}
	if err := f.inner.Return(inner, nil); err != nil {
		return err
	}
	e := f.op(opReturn)
	e.uint(uint64(len(outputs)))
	for _, o := range outputs {
		e.value(o)
	}
	if f.id == 0 {
		f.b.outs = []shapes.Shape{}
		for _, o := range inner {
			s, err := f.inner.Shape(o)
			if err != nil {
				return err
			}
			f.b.outs = append(f.b.outs, s)
		}
	}
	return f.end()
}

// OpsetID identifies the op set programs are recorded with.
func OpsetID() uint64 { return opsetID }
