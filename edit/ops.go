package edit

import g "github.com/gomlx/gomlx/core/graph"

func gMulScalar(x *g.Node, f float64) *g.Node { return g.MulScalar(x, f) }
