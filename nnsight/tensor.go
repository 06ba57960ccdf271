package nnsight

import (
	"slices"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/tensor"
)

// Tensor returns a saved value ("logits": the model's) as a tensor.Tensor for eager
// arithmetic, with its axis names where the model gives them:
//
//	probs, ids := res.Tensor("logits").At(0, -1).Softmax(-1).TopK(5)
//
// Like the tensor operations it chains into, it panics when there is no such value, with a
// message that lists the saved names (Value returns that as an error instead).
func (r *Result) Tensor(name string) *tensor.Tensor {
	t, err := r.Value(name)
	if err != nil {
		panic(module.WithKind(err, ErrUnknownPath))
	}
	return r.toTensor(name, t)
}

// TensorList is List as tensors: the values saved under name during Generate, one per step.
func (r *Result) TensorList(name string) []*tensor.Tensor {
	var out []*tensor.Tensor
	for _, t := range r.lists[name] {
		out = append(out, r.toTensor(name, t))
	}
	return out
}

func (r *Result) toTensor(name string, t *tensors.Tensor) *tensor.Tensor {
	x := tensor.From(t)
	if a := r.axes[name]; len(a) == x.Rank() {
		x = x.WithAxes(a...)
	}
	return x
}

func (r *Result) setAxes(name string, a []string) {
	if r.axes == nil {
		r.axes = map[string][]string{}
	}
	r.axes[name] = a
}

// Tensor returns the cached value of a path (a key of Paths or any other spelling of it: the
// model's own path, an alias, a negative index) as a tensor.Tensor; it panics with the
// cached paths when the path is not cached.
func (c *Cache) Tensor(path string) *tensor.Tensor {
	key, err := c.key(path)
	if err != nil {
		panic(err)
	}
	return c.toTensor(key, c.Get(key))
}

// Tensors returns the cached values of the given paths, in order (for tensor.Stack):
//
//	resid := tensor.Stack(cache.Tensors(cache.Paths...), 0)   // [layer, batch, pos, embd]
func (c *Cache) Tensors(paths ...string) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(paths))
	for i, p := range paths {
		out[i] = c.Tensor(p)
	}
	return out
}

// axesOf names the axes of a saved proxy's value when the model says what they are and the
// saved value still has that many axes (At and invokes narrow axes, never drop them).
func (tr *trace) axesOf(p *Proxy, rank int) []string {
	for _, rec := range tr.ctx.Calls() {
		if rec.Path != p.key.path || rec.Index != p.key.call {
			continue
		}
		var axes []string
		switch p.key.kind {
		case outputPoint:
			if p.idx == 0 {
				axes = rec.OutputAxes
			}
		case labelPoint:
			for _, l := range rec.Labels {
				if l.Name == p.key.label {
					axes = l.Axes
				}
			}
		}
		if len(axes) == rank {
			return slices.Clone(axes)
		}
		return nil
	}
	return nil
}
