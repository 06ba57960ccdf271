package nnsight_test

import (
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// namedLabel is a user's module that names its label's axes (with names, given how many).
type namedLabel struct{ axes []string }

func (n namedLabel) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	v := c.LabelAxes("scaled", g.MulScalar(in[0], 2), n.axes...)
	return []*module.Node{v}
}

func TestLabelAxesOfAUserModule(t *testing.T) {
	x := [][]float32{{1, 2, 3}, {4, 5, 6}}
	m := nnsight.New(namedLabel{axes: []string{"row", "feature"}}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	s, err := m.Scan(x, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Shapes["scaled"]; got.String() != "Float32[2 3] (row, feature)" || len(got.Axes) != 2 {
		t.Errorf("scaled: %v (axes %v), want Float32[2 3] (row, feature)\n%s", got, got.Axes, s)
	}

	// One name for a rank-2 value is the model's mistake: an error naming the label, never a
	// listing that calls axis 0 "feature".
	bad := nnsight.New(namedLabel{axes: []string{"feature"}}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	_, err = bad.Scan(x, nil)
	if err == nil || !strings.Contains(err.Error(), `label "scaled" has 1 axis names`) || !strings.Contains(err.Error(), "rank 2") {
		t.Errorf("wrong number of axis names: %v", err)
	}
}
