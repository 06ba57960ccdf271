package edit

import (
	"fmt"
	"strconv"
	"strings"
)

// Recreate rebuilds the edit a Spec describes, for a later notebook cell (a new process) to
// restore what an earlier cell loaded. Only wrappers that are data can be rebuilt: Identity()
// and Scale(f). A wrapper that is Go code (module.Fn1, a module type of the user's) cannot
// be rebuilt from its description, so Recreate reports false and the cell must load that
// edit again. The rebuilt edit's Spec is compared with s, so a description this code does not
// reproduce exactly is never restored as something else.
func (s Spec) Recreate() (*Edit, bool) {
	var e *Edit
	switch s.Kind {
	case "WrapperModule":
		e = New(s.Parent, s.Target, s.Wrapper, Identity())
	case "EditModule":
		f, ok := scaleFactor(s.Module)
		if !ok {
			return nil, false
		}
		e = New(s.Parent, s.Target, s.Wrapper, Scale(f))
	default:
		return nil, false
	}
	e.Instance = s.Instance
	if e.Spec() != s {
		return nil, false
	}
	return e, true
}

// scaleFactor reads f from Scale's printed tree, "EditModule(scale=f)".
func scaleFactor(tree string) (float64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(tree), "EditModule(scale=")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, ")")
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	return f, err == nil
}

// Differences says how a loaded edit's spec differs from another spec of the same place, for
// messages ("with EditModule(scale=3)", "on call 1").
func (s Spec) Differences(other Spec) string {
	var d []string
	if s.Module != other.Module {
		d = append(d, "with "+oneLine(other.Module))
	}
	if s.Instance != other.Instance {
		if other.Instance < 0 {
			d = append(d, "on every call")
		} else {
			d = append(d, fmt.Sprintf("on call %d", other.Instance))
		}
	}
	return strings.Join(d, " ")
}
