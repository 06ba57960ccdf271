package nnsight

import (
	"fmt"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"slices"
	"sort"
	"strings"

	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
)

// Shape is a value's dimensions and dtype, as Scan reports it, and what each axis is when the
// model says ("batch", "head", "query_pos", ...): slicing attn_output on axis 2 selects heads'
// features, on axis 1 positions.
type Shape struct {
	Dims  []int
	DType string
	Axes  []string // one name per dimension, or nil when the model does not name them
}

// String is "float32[1 4 5 5] (batch, head, query_pos, key_pos)", or without the names when
// there are none.
func (s Shape) String() string {
	if len(s.Axes) == 0 {
		return fmt.Sprintf("%s%v", s.DType, s.Dims)
	}
	return fmt.Sprintf("%s%v (%s)", s.DType, s.Dims, strings.Join(s.Axes, ", "))
}

// ScanResult lists the shape of every module output and labelled value, by path.
type ScanResult struct {
	Shapes map[string]Shape
	Order  []string
	names  module.Names
	// modules are the paths in Order that are modules (the others are labelled values).
	modules map[string]bool
	// onDemand are the labels computed only when asked for (module.Ctx.LabelOnDemand).
	onDemand map[string]bool
}

// String prints one line per value: path, shape and, where known, what each axis is.
func (s *ScanResult) String() string {
	var b strings.Builder
	w := 0
	for _, p := range s.Order {
		w = max(w, len(p))
	}
	for _, p := range s.Order {
		fmt.Fprintf(&b, "%-*s  %s\n", w, p, s.Shapes[p])
	}
	return b.String()
}

// Scan builds the graph of a trace without running it: it checks every intervention (paths,
// shapes of Set values) and reports the shape of every module output and labelled value.
func (m *Model) Scan(input any, fn func(t *Tracer)) (*ScanResult, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	return m.scanWith(m.Edits(), input, fn)
}

func (m *Model) scanWith(edits []*edit.Edit, input any, fn func(t *Tracer)) (*ScanResult, error) {
	if input == nil && fn != nil {
		// Validation of edits: a one-token prompt (or a zero input) is enough.
		input = m.sampleInput()
	}
	tr, batch, err := m.prepare(input, fn)
	if err != nil {
		return nil, err
	}
	meta := &buildMeta{}
	gr, _, err := m.eng.BuildOnly("scan", m.builder(tr, batch, edits, nil, meta))
	if err != nil {
		return nil, err
	}
	defer gr.Finalize()
	res := &ScanResult{Shapes: map[string]Shape{}, names: m.names(true), modules: map[string]bool{},
		onDemand: map[string]bool{}}
	for _, rec := range meta.ctx.Calls() {
		if len(rec.Outputs) > 0 && rec.Path != "" {
			o := rec.Outputs[0]
			add(res, rec.Path, shapeWithAxes(o, rec.OutputAxes))
			res.modules[rec.Path] = len(rec.Inputs) > 0
		}
		for _, l := range rec.Labels {
			add(res, module.Join(rec.Path, l.Name), shapeWithAxes(l.Node, l.Axes))
			if l.OnDemand {
				res.onDemand[module.Join(rec.Path, l.Name)] = true
			}
		}
	}
	return res, nil
}

// shapeWithAxes keeps the axis names only when they fit the value as built: an intervention
// may have replaced it with one of another rank, and a wrong name is worse than none.
func shapeWithAxes(n *module.Node, axes []string) Shape {
	s := Shape{Dims: n.Shape().Dimensions, DType: n.DType().String()}
	if len(axes) == n.Rank() {
		s.Axes = append([]string(nil), axes...)
	}
	return s
}

func add(res *ScanResult, p string, s Shape) {
	if _, ok := res.Shapes[p]; !ok {
		res.Order = append(res.Order, p)
	}
	res.Shapes[p] = s
}

// sampleInput is the input used to build a graph when the user gives none: a short
// prompt for language models, the last input traced (or WithExampleInput) otherwise.
func (m *Model) sampleInput() any {
	if m.lm != nil {
		if m.tok != nil {
			return "Hello, world"
		}
		v := max(m.spec.VocabSize, 1)
		return []int{0, 1 % v, 2 % v}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.example
}

// Shape returns the shape of the value at a path spelled any way that names it: the model's
// own path, an alias, a negative index, a TransformerLens name ("blocks.0.attn.hook_z").
func (s *ScanResult) Shape(path string) (Shape, error) {
	if sh, ok := s.Shapes[path]; ok {
		return sh, nil
	}
	mod, rest, err := s.names.Resolve(path)
	if err != nil {
		return Shape{}, err
	}
	if sh, ok := s.Shapes[module.Join(mod, rest)]; ok {
		return sh, nil
	}
	return Shape{}, module.NewError(ErrUnknownPath, "no value %q in the scan (it lists module outputs and labelled values)%s",
		path, suggestPaths(path, append(slices.Clone(s.Order), s.names.AltPathsOf()...)))
}

// Match returns the scan's paths (keys of Shapes), sorted, that match a path or glob: "*"
// matches within one dotted segment ("transformer.h.*" is the blocks), "**" one or more
// whole segments ("transformer.h.0.**" is everything inside block 0); literal segments may be
// aliases (Rename) or negative indices.
func (s *ScanResult) Match(pattern string) []string {
	var out []string
	for _, p := range s.Order {
		if _, ok := s.names.Match(pattern, p); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func shapeOf(dt dtypes.DType, dims []int) shapes.Shape { return shapes.Make(dt, dims...) }
