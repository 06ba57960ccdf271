// Package toy holds the small models of the seed walkthrough: M (a Linear, a WrappedLayer
// that scales by 100, a Dropout and a split) and ValueModel (x * x[:, 0:1]), written the way
// a user writes their own modules.
package toy

import (
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/module"
)

// WrappedLayer is a Linear(1, 1) whose output is multiplied by 100.
type WrappedLayer struct{ Layer *module.Linear }

func (w *WrappedLayer) Children() []module.Child {
	return []module.Child{{Name: "layer", Module: w.Layer}}
}
func (w *WrappedLayer) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{g.MulScalar(c.Call1("layer", in[0]), 100)}
}

// MModel is the seed's M: layer1 -> layer2 (WrappedLayer) -> dropout -> split in rows.
type MModel struct {
	Layer1  *module.Linear
	Layer2  *WrappedLayer
	Dropout *module.Dropout
}

// M builds the seed's first toy model.
func M() *MModel {
	return &MModel{Layer1: module.NewLinear(1, 1), Layer2: &WrappedLayer{Layer: module.NewLinear(1, 1)},
		Dropout: &module.Dropout{P: 0.5}}
}

func (m *MModel) TypeName() string { return "M" }
func (m *MModel) Children() []module.Child {
	return []module.Child{{Name: "layer1", Module: m.Layer1}, {Name: "layer2", Module: m.Layer2}, {Name: "dropout", Module: m.Dropout}}
}
func (m *MModel) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := c.Call1("layer1", in[0])
	x = c.Call1("layer2", x)
	x = c.Call1("dropout", x)
	return module.Split(c, x, 0, x.Shape().Dimensions[0])
}

// ValueModel is the seed's second toy: value = x[:, 0:1]; return x * value.
type ValueModel struct{}

func (ValueModel) TypeName() string { return "M2" }
func (ValueModel) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := in[0]
	value := c.Label("value", g.Slice(x, g.AxisRange(), g.AxisRange(0, 1)))
	return []*module.Node{g.Mul(x, g.BroadcastToDims(value, x.Shape().Dimensions...))}
}
