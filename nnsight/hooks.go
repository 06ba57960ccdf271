package nnsight

import (
	"fmt"
	"slices"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
)

// stopSignal ends a build early (Tracer.Stop).
type stopSignal struct{}

// The trace is the module.Hooks of its build: it applies its events at each point.

func (tr *trace) BeforeCall(c *module.Ctx, rec *module.CallRecord, in []*Node) ([]*Node, []*Node) {
	key := pointKey{path: rec.Path, kind: inputPoint, call: rec.Index}
	var newIn []*Node
	if evs := tr.points[key]; len(evs) > 0 {
		newIn = append([]*Node(nil), in...)
		for i := range newIn {
			newIn[i] = tr.apply(key, i, newIn[i])
		}
		tr.fired[key] = true
		in = newIn
	}
	if len(tr.caches) > 0 && rec.Path != "" && len(in) > 0 {
		tr.record(callKey(rec)+".input", rec.Path, in[0], false, module.Join(rec.Path, "input"))
	}
	// A skip for the whole batch replaces the forward; skips for one invoke's rows are
	// applied to the output (AfterCall), so each invoke keeps its own.
	for _, sk := range tr.skips[skipKey(rec)] {
		if sk.rows != nil {
			continue
		}
		var x *Node
		switch v := sk.value.(type) {
		case func(*Node) *Node:
			if len(in) == 0 {
				module.Errorf("Skip of %s: a function value needs the module's input, and it has none", rec.Path)
			}
			x = v(in[0])
		default:
			x = tr.valueNode(v, nil, fmt.Sprintf("Skip of %s", rec.Path))
		}
		return newIn, []*Node{x}
	}
	return newIn, nil
}

func (tr *trace) AfterCall(c *module.Ctx, rec *module.CallRecord, out []*Node) []*Node {
	key := pointKey{path: rec.Path, kind: outputPoint, call: rec.Index}
	var result []*Node
	for _, sk := range tr.skips[skipKey(rec)] {
		if sk.rows == nil {
			continue
		}
		// A skip for one invoke: the forward ran for the batch; that invoke's rows are replaced.
		if result == nil {
			result = append([]*Node(nil), out...)
		}
		what := "Skip of " + rec.Path + " in " + sk.who
		var x *Node
		if fn, ok := sk.value.(func(*Node) *Node); ok {
			if len(rec.Inputs) == 0 {
				module.Errorf("%s: a function value needs the module's input, and it has none", what)
			}
			x = fn(view(rec.Inputs[0], sk.rows, nil))
		} else {
			x = tr.valueNode(sk.value, nil, what)
		}
		result[0] = replaceRegion(result[0], sk.rows, nil, x, what)
		out = result
	}
	if evs := tr.points[key]; len(evs) > 0 {
		result = append([]*Node(nil), out...)
		for i := range result {
			result[i] = tr.apply(key, i, result[i])
		}
		tr.fired[key] = true
	}
	if len(tr.caches) > 0 && rec.Path != "" {
		final := out
		if result != nil {
			final = result
		}
		if len(final) > 0 {
			tr.record(callKey(rec), rec.Path, final[0], false)
		}
	}
	tr.maybeStop()
	return result
}

// callKey names a call in caches: its path, with "@n" for the n-th call after the first.
func callKey(rec *module.CallRecord) string {
	if rec.Index == 0 {
		return rec.Path
	}
	return fmt.Sprintf("%s@%d", rec.Path, rec.Index)
}

func (tr *trace) OnLabel(c *module.Ctx, rec *module.CallRecord, name string, x *Node) *Node {
	key := pointKey{path: rec.Path, kind: labelPoint, label: name, call: rec.Index}
	var y *Node
	if evs := tr.points[key]; len(evs) > 0 {
		y = tr.apply(key, 0, x)
		tr.fired[key] = true
	}
	if len(tr.caches) > 0 {
		v := x
		if y != nil {
			v = y
		}
		tr.record(module.Join(callKey(rec), name), module.Join(rec.Path, name), v, c.LabelingOnDemand())
	}
	return y
}

func skipKey(rec *module.CallRecord) string { return fmt.Sprintf("%s#%d", rec.Path, rec.Index) }

// gradIdentity routes the forward value at a point through an identity whose gradient
// function applies the active backward pass's reads and sets at that point.
func (tr *trace) gradIdentity(key pointKey, idx int, x *Node) *Node {
	gk := gradKey{key, idx}
	if gp := tr.gradAt[gk]; gp != nil {
		return x // already routed; later forward events see the same value
	}
	if tr.gradAt == nil {
		tr.gradAt = map[gradKey]*gradPoint{}
	}
	gp := &gradPoint{x: x}
	gp.y = g.IdentityWithCustomGradient(x, func(_, v *Node) *Node {
		if tr.active == nil {
			return v
		}
		for _, ev := range tr.active.events {
			q := ev.grad
			if q.key != key || q.idx != idx {
				continue
			}
			if !ev.isSet {
				q.node = view(v, q.rows, q.region)
				continue
			}
			cur := view(v, q.rows, q.region)
			var nv *Node
			if fn, ok := ev.set.(func(*Node) *Node); ok {
				nv = fn(cur)
			} else {
				nv = tr.valueNode(ev.set, cur, "Set on the gradient of "+q.String())
			}
			nv = fitShape(nv, cur, "Set on the gradient of "+q.String())
			v = replaceRegion(v, q.rows, q.region, nv, "gradient of "+q.String())
			q.node = nv
		}
		return v
	})
	tr.gradAt[gk] = gp
	return gp.y
}

func (tr *trace) maybeStop() {
	if !tr.stop {
		return
	}
	for k := range tr.points {
		if !tr.fired[k] {
			return
		}
	}
	panic(stopSignal{})
}

// apply runs the events registered at a point, in the order they were registered, on the
// point's idx-th value x, and returns the value the model continues with.
func (tr *trace) apply(key pointKey, idx int, x *Node) *Node {
	for _, ev := range tr.points[key] {
		p := ev.proxy
		if p.idx != idx {
			continue
		}
		switch {
		case ev.grad:
			x = tr.gradIdentity(key, idx, x)
		case ev.isSet:
			cur := view(x, p.rows, p.region)
			var nv *Node
			if fn, ok := ev.set.(func(*Node) *Node); ok {
				nv = fn(cur)
			} else {
				nv = tr.valueNode(ev.set, cur, "Set on "+p.String())
			}
			if !nv.Shape().IsScalar() && !sameDims(nv, cur) && coversAll(x, p.rows, p.region) {
				// A new value of another shape replaces the whole value; the forward after it
				// accepts that shape or fails, and the error says which Set changed it.
				if nv.DType() != cur.DType() {
					nv = g.ConvertDType(nv, cur.DType())
				}
				tr.reshaped = append(tr.reshaped, fmt.Sprintf("Set on %s changed its shape from %v to %v",
					p, cur.Shape().Dimensions, nv.Shape().Dimensions))
				x, p.node = nv, nv
				continue
			}
			nv = fitShape(nv, cur, "Set on "+p.String())
			x = replaceRegion(x, p.rows, p.region, nv, p.String())
			p.node = nv
		default:
			p.node = view(x, p.rows, p.region)
		}
	}
	return x
}

// valueNode turns a Set/Skip value into a node: a Proxy's node, a *Node, or a graph input.
func (tr *trace) valueNode(v any, like *Node, what string) *Node {
	switch x := v.(type) {
	case *Proxy:
		return x.Node()
	case *Node:
		return x
	case nil:
		module.Errorf("%s: nil value", what)
	}
	t, err := toTensor(v)
	if err != nil {
		module.Errorf("%s: %v", what, err)
	}
	return tr.inputNode(t)
}

func (tr *trace) inputNode(t *tensors.Tensor) *Node {
	name := fmt.Sprintf("nnsight.input.%d", tr.nInputs)
	tr.nInputs++
	tr.inputs[name] = t
	return g.Parameter(tr.ctx.G, name, t.Shape())
}

func sameDims(a, b *Node) bool { return slices.Equal(a.Shape().Dimensions, b.Shape().Dimensions) }

// coversAll reports whether rows+region select the whole of x.
func coversAll(x *Node, rows *[2]int, region []axisRange) bool {
	for i, r := range resolveRanges(x, rows, region) {
		if r[0] != 0 || r[1] != x.Shape().Dimensions[i] {
			return false
		}
	}
	return true
}

// fitShape checks that a new value can replace cur: same shape, or a scalar (broadcast).
func fitShape(nv, cur *Node, what string) *Node {
	if nv.DType() != cur.DType() {
		nv = g.ConvertDType(nv, cur.DType())
	}
	if nv.Shape().Equal(cur.Shape()) {
		return nv
	}
	if nv.Shape().IsScalar() {
		return g.BroadcastToDims(nv, cur.Shape().Dimensions...)
	}
	module.KindErrorf(ErrShape, "%s: the new value has shape %v but the value it replaces has shape %v",
		what, nv.Shape().Dimensions, cur.Shape().Dimensions)
	return nil
}

// resolveRanges turns rows + region into per-axis [lo, hi) ranges for x.
func resolveRanges(x *Node, rows *[2]int, region []axisRange) [][2]int {
	dims := x.Shape().Dimensions
	r := make([][2]int, len(dims))
	for i, d := range dims {
		r[i] = [2]int{0, d}
	}
	if rows != nil && len(dims) > 0 {
		r[0] = *rows
	}
	for _, a := range region {
		axis := a.axis
		if axis < 0 {
			axis += len(dims)
		}
		if axis < 0 || axis >= len(dims) {
			module.KindErrorf(ErrOutOfRange, "At(%d, %d, %d): axis out of range for a value of shape %v", a.axis, a.lo, a.hi, dims)
		}
		size := r[axis][1] - r[axis][0]
		lo, hi := a.lo, a.hi
		if lo < 0 {
			lo += size
		}
		if hi < 0 {
			hi += size
		} else if hi == 0 && a.lo < 0 {
			hi = size
		}
		if lo < 0 || hi > size || lo >= hi {
			module.KindErrorf(ErrOutOfRange, "At(%d, %d, %d): range out of bounds for axis %d of size %d (value shape %v)",
				a.axis, a.lo, a.hi, axis, size, dims)
		}
		r[axis] = [2]int{r[axis][0] + lo, r[axis][0] + hi}
	}
	return r
}

func view(x *Node, rows *[2]int, region []axisRange) *Node {
	if rows == nil && len(region) == 0 {
		return x
	}
	r := resolveRanges(x, rows, region)
	specs := make([]g.SliceAxisSpec, len(r))
	full := true
	for i, ab := range r {
		specs[i] = g.AxisRange(ab[0], ab[1])
		if ab[0] != 0 || ab[1] != x.Shape().Dimensions[i] {
			full = false
		}
	}
	if full {
		return x
	}
	return g.Slice(x, specs...)
}

// replaceRegion returns x with the region given by rows+region replaced by nv, built from
// slices and concatenations (every backend has them, and they are differentiable).
func replaceRegion(x *Node, rows *[2]int, region []axisRange, nv *Node, what string) *Node {
	r := resolveRanges(x, rows, region)
	want := make([]int, len(r))
	for i, ab := range r {
		want[i] = ab[1] - ab[0]
	}
	if !slices.Equal(nv.Shape().Dimensions, want) {
		if nv.Shape().IsScalar() {
			nv = g.BroadcastToDims(nv, want...)
		} else {
			module.KindErrorf(ErrShape, "%s: the new value has shape %v but the region it replaces has shape %v", what, nv.Shape().Dimensions, want)
		}
	}
	return replaceAxes(x, r, 0, nv)
}

func replaceAxes(x *Node, r [][2]int, axis int, nv *Node) *Node {
	if axis == len(r) {
		return nv
	}
	dims := x.Shape().Dimensions
	lo, hi := r[axis][0], r[axis][1]
	if lo == 0 && hi == dims[axis] {
		// Whole axis: recurse only if a later axis is partial.
		partial := false
		for a := axis + 1; a < len(r); a++ {
			if r[a][0] != 0 || r[a][1] != dims[a] {
				partial = true
			}
		}
		if !partial {
			return nv
		}
		return replaceAxes(x, r, axis+1, nv)
	}
	mid := g.SliceAxis(x, axis, g.AxisRange(lo, hi))
	parts := []*Node{}
	if lo > 0 {
		parts = append(parts, g.SliceAxis(x, axis, g.AxisRange(0, lo)))
	}
	parts = append(parts, replaceAxes(mid, r, axis+1, nv))
	if hi < dims[axis] {
		parts = append(parts, g.SliceAxis(x, axis, g.AxisRange(hi, dims[axis])))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return g.Concatenate(parts, axis)
}
