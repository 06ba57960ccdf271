package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/module"
)

// An error's kind survives the trip as a panic through Catch and the wrapping on the way up.
func TestCatchKeepsErrorKinds(t *testing.T) {
	err := Catch(func() error {
		module.KindErrorf(module.ErrShape, "Set on x: the new value has shape %v", []int{1, 3})
		return nil
	})
	wrapped := fmt.Errorf("in the trace function: %w", err)
	if !errors.Is(wrapped, module.ErrShape) || errors.Is(wrapped, module.ErrBadEdit) {
		t.Errorf("kind lost or wrong: %v", wrapped)
	}
	if wrapped.Error() != "in the trace function: Set on x: the new value has shape [1 3]" {
		t.Errorf("message changed: %q", wrapped)
	}
	var me *module.Error
	if !errors.As(wrapped, &me) {
		t.Error("errors.As does not find the *module.Error")
	}

	// Raised inside a module's forward while a graph is built: the Ctx adds the module's path
	// to the message and keeps what it wraps.
	e, err := Open("go")
	if err != nil {
		t.Fatal(err)
	}
	bad := &module.Func{Name: "Bad", Fn: func(c *module.Ctx, in ...*module.Node) []*module.Node {
		panic(fmt.Errorf("inner: %w", module.ErrOutOfRange))
	}}
	_, _, err = e.BuildOnly("kinds", func(g *graph.Graph) ([]*graph.Node, error) {
		c := module.NewCtx(g, nil)
		return c.Run(bad, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 2))), nil
	})
	if !errors.Is(err, module.ErrOutOfRange) || !strings.Contains(err.Error(), "Bad") || !strings.Contains(err.Error(), "inner") {
		t.Errorf("error from a forward: %v", err)
	}
}
