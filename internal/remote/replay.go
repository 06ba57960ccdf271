package remote

import (
	"bytes"
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

// Limits bound what one program may ask of a host. Zero fields take the defaults.
type Limits struct {
	MaxProgramBytes int   // the encoded program
	MaxOps          int   // ops in the program
	MaxValueBytes   int64 // any one value (a parameter, a constant, an op's result)
	MaxTotalBytes   int64 // all values of the program together: a bound on its memory
	// MaxFLOPs bounds the multiply-adds of the program's dot products (2 per multiply-add),
	// counted from their shapes before anything compiles or runs: a bound on its time.
	MaxFLOPs float64
	// Denied lists ops a host refuses (by compute's op name). Nil: DefaultDenied.
	Denied map[string]bool
}

// DefaultDenied are the ops a shared host refuses: collectives (they would wait on peers
// that do not exist) and the random bit generator's state (a host-wide resource).
var DefaultDenied = map[string]bool{
	"AllReduce": true, "AllGather": true, "CollectiveBroadcast": true,
}

func (l Limits) withDefaults() Limits {
	if l.MaxProgramBytes == 0 {
		l.MaxProgramBytes = 64 << 20
	}
	if l.MaxOps == 0 {
		l.MaxOps = 200_000
	}
	if l.MaxValueBytes == 0 {
		l.MaxValueBytes = 2 << 30
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = 64 << 30
	}
	if l.MaxFLOPs == 0 {
		l.MaxFLOPs = 1e14
	}
	if l.Denied == nil {
		l.Denied = DefaultDenied
	}
	return l
}

// Replayed is a program rebuilt on a host's backend, ready to compile.
type Replayed struct {
	Builder     compute.Builder
	InputNames  []string
	InputShapes []shapes.Shape
	NumOps      int
	TotalBytes  int64
	FLOPs       float64 // of its dot products
}

// replayer rebuilds a program on a backend.
type replayer struct {
	b      compute.Builder
	fns    []compute.Function
	values []compute.Value
	limits Limits
	total  int64
	flops  float64
	dec    *decoder
}

func (r *replayer) value(d *decoder) compute.Value {
	id := d.uint()
	if id == 0 || d.err != nil {
		return nil
	}
	if id-1 >= uint64(len(r.values)) {
		d.fail("value %d is used before it is defined (%d values so far)", id-1, len(r.values))
		return nil
	}
	return r.values[id-1]
}

func (r *replayer) function(d *decoder) compute.Function {
	id := d.uint()
	if d.err != nil {
		return nil
	}
	if id >= uint64(len(r.fns)) {
		d.fail("function %d is not defined (%d functions)", id, len(r.fns))
		return nil
	}
	return r.fns[id]
}

// Replay decodes a program and rebuilds it on backend b, checking it against the limits:
// every op must be one the host allows, every value within the size limits. Errors say
// which op and why; a malformed program is an error, never a panic (panics raised by the
// backend while building are returned as errors too).
func Replay(b compute.Backend, name string, prog []byte, limits Limits) (rep *Replayed, err error) {
	limits = limits.withDefaults()
	if len(prog) > limits.MaxProgramBytes {
		return nil, fmt.Errorf("the program is %d bytes, the host takes at most %d", len(prog), limits.MaxProgramBytes)
	}
	if !bytes.HasPrefix(prog, []byte(programMagic)) {
		return nil, fmt.Errorf("not a gonnsight program (it does not start with %q)", programMagic)
	}
	d := &decoder{buf: prog, pos: len(programMagic)}
	if id := d.uint(); id != opsetID {
		return nil, fmt.Errorf("the program was recorded against another op set (id %x, the host has %x): client and host run different versions of gonnsight or compute", id, opsetID)
	}
	r := &replayer{limits: limits, dec: d}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the host's backend panicked while building the program: %v", p)
		}
		if err != nil && r.b != nil {
			// The builder is dropped; nothing was compiled.
			rep = nil
		}
	}()
	r.b = b.Builder(name)
	r.fns = []compute.Function{r.b.Main()}
	rep = &Replayed{Builder: r.b}
	returned := false
	for !d.done() {
		start := d.pos
		fid := d.uint()
		op := int(d.uint())
		if d.err != nil {
			break
		}
		if fid >= uint64(len(r.fns)) {
			return nil, fmt.Errorf("program byte %d: op %s in function %d, which is not defined", start, opName(op), fid)
		}
		if returned && fid == 0 {
			return nil, fmt.Errorf("program byte %d: op %s after the main function returned", start, opName(op))
		}
		rep.NumOps++
		if rep.NumOps > limits.MaxOps {
			return nil, fmt.Errorf("the program has more than %d ops, the host's limit", limits.MaxOps)
		}
		f := r.fns[fid]
		var outs []compute.Value
		var opErr error
		switch op {
		case opNewFunction:
			nf, err := r.b.NewFunction(d.string())
			if err != nil {
				opErr = err
				break
			}
			r.fns = append(r.fns, nf)
		case opClosure:
			c, err := f.Closure()
			if err != nil {
				opErr = err
				break
			}
			r.fns = append(r.fns, c)
		case opParameter:
			pname, sh := d.string(), d.shape()
			if d.err != nil {
				break
			}
			if err := r.checkSize("Parameter "+pname, sh); err != nil {
				return nil, err
			}
			if fid == 0 {
				for _, n := range rep.InputNames {
					if n == pname {
						return nil, fmt.Errorf("parameter %q is declared twice", pname)
					}
				}
				rep.InputNames = append(rep.InputNames, pname)
				rep.InputShapes = append(rep.InputShapes, sh)
			}
			v, err := f.Parameter(pname, sh, nil)
			outs, opErr = []compute.Value{v}, err
		case opConstant:
			dt := dtypes.DType(d.uint())
			n := d.length()
			if n > maxRank {
				d.fail("constant of rank %d", n)
			}
			dims := make([]int, 0, n)
			for i := 0; i < n && d.err == nil; i++ {
				x := int(d.int())
				if x < 0 {
					d.fail("negative dimension")
				}
				dims = append(dims, x)
			}
			raw := d.bytes()
			if d.err != nil {
				break
			}
			sh := shapes.Make(dt, dims...)
			if dt == dtypes.InvalidDType || dt.Size() == 0 && dt != dtypes.Bool || int(sh.ByteSize()) != len(raw) {
				return nil, fmt.Errorf("program byte %d: constant %s has %d bytes of data", start, sh, len(raw))
			}
			if err := r.checkSize("Constant", sh); err != nil {
				return nil, err
			}
			flat := dtypes.MakeAnySlice(dt, sh.Size())
			copy(dtypes.UnsafeByteSliceFromAny(flat), raw)
			v, err := f.Constant(flat, dims...)
			outs, opErr = []compute.Value{v}, err
		case opReturn:
			n := d.length()
			vals := make([]compute.Value, n)
			for i := range vals {
				vals[i] = r.value(d)
				if vals[i] == nil && d.err == nil {
					d.fail("Return of an undefined value")
				}
			}
			if d.err != nil {
				break
			}
			opErr = f.Return(vals, nil)
			if fid == 0 {
				returned = true
			}
		default:
			i := op - firstGeneratedOp
			if i < 0 || i >= len(opNames) {
				return nil, fmt.Errorf("program byte %d: unknown opcode %d", start, op)
			}
			if limits.Denied[opNames[i]] {
				return nil, fmt.Errorf("program byte %d: op %s is not allowed on this host", start, opNames[i])
			}
			var contracted int64
			if op == opDotGeneral {
				contracted = r.peekContracted(f, d)
			}
			outs, opErr = r.replayOp(f, op, d)
			if opErr == nil && d.err == nil && contracted > 0 && len(outs) == 1 {
				if sh, err := f.Shape(outs[0]); err == nil {
					r.flops += 2 * float64(sh.Size()) * float64(contracted)
					if r.flops > limits.MaxFLOPs {
						return nil, fmt.Errorf("program byte %d: its dot products take more than the host's limit of %.3g FLOPs", start, limits.MaxFLOPs)
					}
				}
			}
		}
		if d.err != nil {
			return nil, fmt.Errorf("op %s: %w", opName(op), d.err)
		}
		if opErr != nil {
			return nil, fmt.Errorf("program byte %d: op %s: %w", start, opName(op), opErr)
		}
		for _, v := range outs {
			sh, err := f.Shape(v)
			if err != nil {
				return nil, fmt.Errorf("op %s: %w", opName(op), err)
			}
			if err := r.checkSize(opName(op), sh); err != nil {
				return nil, err
			}
			r.values = append(r.values, v)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if !returned {
		return nil, fmt.Errorf("the program's main function never returns")
	}
	rep.TotalBytes, rep.FLOPs = r.total, r.flops
	return rep, nil
}

// peekContracted reads, without consuming them, a DotGeneral's left operand and contracting
// axes, and returns the product of those axes' sizes (0 when they do not make sense: the op
// itself then fails with the backend's message).
func (r *replayer) peekContracted(f compute.Function, d *decoder) int64 {
	peek := *d
	lhs := r.value(&peek)
	axes := decSliceInt(r, &peek)
	if peek.err != nil || lhs == nil {
		return 0
	}
	sh, err := f.Shape(lhs)
	if err != nil {
		return 0
	}
	k := int64(1)
	for _, a := range axes {
		if a < 0 || a >= sh.Rank() {
			return 0
		}
		k *= int64(sh.Dimensions[a])
	}
	return k
}

func (r *replayer) checkSize(what string, sh shapes.Shape) error {
	size := int64(1)
	for _, d := range sh.Dimensions {
		if d < 0 {
			return fmt.Errorf("%s: dynamic shape %s", what, sh)
		}
		if d != 0 && size > r.limits.MaxValueBytes/int64(d) {
			return fmt.Errorf("%s: a value of shape %s is more than the host's limit of %d bytes per value", what, sh, r.limits.MaxValueBytes)
		}
		size *= int64(d)
	}
	bytes := size * int64(max(1, sh.DType.Size()))
	if bytes > r.limits.MaxValueBytes {
		return fmt.Errorf("%s: a value of shape %s takes %d bytes, more than the host's limit of %d per value", what, sh, bytes, r.limits.MaxValueBytes)
	}
	r.total += bytes
	if r.total > r.limits.MaxTotalBytes {
		return fmt.Errorf("%s: the program's values take more than the host's limit of %d bytes per request", what, r.limits.MaxTotalBytes)
	}
	return nil
}
