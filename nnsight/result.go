package nnsight

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// Result holds what a trace saved, by name, and the model's own outputs.
type Result struct {
	values  map[string]*tensors.Tensor
	lists   map[string][]*tensors.Tensor
	order   []string
	outputs []*tensors.Tensor   // the model's outputs (for language models: the logits)
	lm      bool                // a language model: outputs[0] is "logits"
	axes    map[string][]string // axis names of saved values and outputs, where the model says
	Batch   *Batch
	Backend string
}

// Get returns a saved value (nil if no value has that name). "logits" (language models) and
// "output.N" (other models) name the model's outputs unless a saved value took the name.
func (r *Result) Get(name string) *tensors.Tensor {
	if t, ok := r.values[name]; ok {
		return t
	}
	return r.output(name)
}

func (r *Result) output(name string) *tensors.Tensor {
	if name == "logits" && r.lm && len(r.outputs) == 1 {
		return r.outputs[0]
	}
	var i int
	if _, err := fmt.Sscanf(name, "output.%d", &i); err == nil && i >= 0 && i < len(r.outputs) && name == fmt.Sprintf("output.%d", i) {
		return r.outputs[i]
	}
	return nil
}

// Value returns a saved value or an error naming the values that exist.
func (r *Result) Value(name string) (*tensors.Tensor, error) {
	if t := r.Get(name); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("no saved value %q; saved: %s", name, strings.Join(r.Names(), ", "))
}

// Float32 returns a saved value's data and shape.
func (r *Result) Float32(name string) ([]float32, []int, error) {
	t, err := r.Value(name)
	if err != nil {
		return nil, nil, err
	}
	return Float32(t)
}

// Ints returns an integer saved value (ArgMax, token ids; int32 or int64) as ints, with its shape.
func (r *Result) Ints(name string) ([]int, []int, error) {
	t, err := r.Value(name)
	if err != nil {
		return nil, nil, err
	}
	return Ints(t)
}

// List returns the per-step values saved under name during Generate.
func (r *Result) List(name string) []*tensors.Tensor { return r.lists[name] }

// Names lists the model's outputs ("logits") and then the saved names in the order they were saved.
func (r *Result) Names() []string {
	var out []string
	for i := range r.outputs {
		n := fmt.Sprintf("output.%d", i)
		if r.lm {
			n = "logits"
		}
		if _, taken := r.values[n]; !taken {
			out = append(out, n)
		}
	}
	return append(out, r.order...)
}

// Logits is the lm_head output [batch, seq, vocab] when the trace computed it, whatever the
// saved values are called.
func (r *Result) Logits() *tensors.Tensor {
	if r.lm && len(r.outputs) == 1 {
		return r.outputs[0]
	}
	return nil
}

// Ints copies an integer tensor's data out as ints, with its shape.
func Ints(t *tensors.Tensor) ([]int, []int, error) {
	if t == nil {
		return nil, nil, errors.New("nil tensor")
	}
	var out []int
	switch t.DType() {
	case dtypes.Int32:
		for _, v := range tensors.MustCopyFlatData[int32](t) {
			out = append(out, int(v))
		}
	case dtypes.Int64:
		for _, v := range tensors.MustCopyFlatData[int64](t) {
			out = append(out, int(v))
		}
	default:
		return nil, nil, fmt.Errorf("tensor is %s, not an integer type (use Float32)", t.DType())
	}
	return out, t.Shape().Dimensions, nil
}

// Float32 copies a float tensor's data out, with its shape.
func Float32(t *tensors.Tensor) ([]float32, []int, error) {
	if t == nil {
		return nil, nil, errors.New("nil tensor")
	}
	if t.DType() != dtypes.Float32 {
		return nil, nil, fmt.Errorf("tensor is %s, not float32", t.DType())
	}
	return tensors.MustCopyFlatData[float32](t), t.Shape().Dimensions, nil
}
