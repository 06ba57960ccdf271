package nnsight

import (
	"fmt"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
)

// Graph captures the graph of the module at path (the FX GraphModule analog): its nodes
// with opcode, name, target, args, kwargs and shape. Nothing runs: the graph is built only.
func (m *Model) Graph(path string, opts ...edit.GraphOption) (*edit.Graph, error) {
	var o edit.GraphOptions
	for _, f := range opts {
		f(&o)
	}
	if err := m.ready(); err != nil {
		return nil, err
	}
	// Aliases, negative indices and the wrappers of loaded edits resolve to the tree's path.
	path, _, err := m.names(true).Find(path)
	if err != nil {
		return nil, err
	}
	var out *edit.Graph
	err = m.withBuild(o.Input, func(c *module.Ctx) error {
		var rec *module.CallRecord
		calls := 0
		for _, r := range c.Calls() {
			if r.Path == path {
				calls++
				if r.Index == o.Call {
					rec = r
				}
			}
		}
		if rec == nil {
			if calls == 0 {
				return fmt.Errorf("module %q was not called in the forward", path)
			}
			return fmt.Errorf("module %q was called %d time(s); there is no call %d", path, calls, o.Call)
		}
		out = edit.Capture(c.G, rec, o.Folded, c.HookSpans())
		return nil
	})
	return out, err
}

// Explain reports how the forward was captured: graphs, breaks, ops (torch._dynamo.explain).
// A GoMLX forward is always one graph: Go code between ops runs while the graph is built.
func (m *Model) Explain(input any) (*edit.Explanation, error) {
	var e *edit.Explanation
	err := m.withBuild(input, func(c *module.Ctx) error {
		root := c.Calls()[0]
		gr := edit.Capture(c.G, root, false, c.HookSpans())
		e = &edit.Explanation{GraphCount: 1, OpTypes: map[string]int{}, ModuleCalls: len(c.Calls())}
		var ops []string
		for _, n := range gr.Nodes {
			if n.Op == edit.CallFunction {
				ops = append(ops, n.Target)
				e.OpTypes[n.Target]++
			}
		}
		e.OpCount = len(ops)
		e.OpsPerGraph = [][]string{ops}
		return nil
	})
	return e, err
}

// withBuild builds the model's graph for input (without running it) and calls fn.
func (m *Model) withBuild(input any, fn func(c *module.Ctx) error) error {
	if err := m.ready(); err != nil {
		return err
	}
	if input == nil {
		input = m.sampleInput()
	}
	if input == nil {
		return fmt.Errorf("%s needs an example input to build its graph: pass one (edit.WithInput)", m.describe())
	}
	tr, batch, err := m.prepare(input, nil)
	if err != nil {
		return err
	}
	meta := &buildMeta{}
	gr, _, err := m.eng.BuildOnly("capture", m.builder(tr, batch, m.Edits(), nil, meta))
	if err != nil {
		return err
	}
	defer gr.Finalize()
	return fn(meta.ctx)
}
