package gpt2_test

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/module"
)

// The TransformerLens labels that need computation of their own (hook_attn_scores' -inf
// masking, hook_result's per-head products) are not on the path to the logits when nothing
// reads them, so compiled programs leave them out; the per-head views hook_q/k/v/z are steps
// of the forward itself.
func TestTransformerLensLabelsCostNothingUnread(t *testing.T) {
	e, err := engine.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg := gpt2.TinyOptions{Layers: 2, Heads: 2, Embd: 16, Positions: 16}.Config()
	var ctx *module.Ctx
	var outs []*graph.Node
	g, _, err := e.BuildOnly("tl", func(g *graph.Graph) ([]*graph.Node, error) {
		params := map[string]*graph.Node{}
		ctx = module.NewCtx(g, func(name string, spec module.ParamSpec) *graph.Node {
			if params[name] == nil {
				params[name] = graph.Parameter(g, name, shapes.Make(dtypes.Float32, spec.Shape...))
			}
			return params[name]
		})
		outs = ctx.Run(gpt2.New(cfg), graph.Parameter(g, "ids", shapes.Make(dtypes.Int32, 1, 5)))
		return outs, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Finalize()
	used := map[*graph.Node]bool{}
	var walk func(n *graph.Node)
	walk = func(n *graph.Node) {
		if used[n] {
			return
		}
		used[n] = true
		for _, in := range n.Inputs() {
			walk(in)
		}
	}
	for _, o := range outs {
		walk(o)
	}
	seen := 0
	for _, rec := range ctx.Calls() {
		for _, l := range rec.Labels {
			switch l.Name {
			case "hook_attn_scores", "hook_result":
				seen++
				if used[l.Node] {
					t.Errorf("%s.%s is computed for the logits although nothing reads it", rec.Path, l.Name)
				}
			case "hook_q", "hook_k", "hook_v", "hook_z", "hook_resid_mid":
				seen++
				if !used[l.Node] {
					t.Errorf("%s.%s is not a step of the forward: setting it would change nothing", rec.Path, l.Name)
				}
			}
		}
	}
	if seen != 7*cfg.NLayer {
		t.Errorf("found %d TransformerLens labels, want %d", seen, 7*cfg.NLayer)
	}
}
