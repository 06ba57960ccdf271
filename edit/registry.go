package edit

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// The edits declared in this process. A notebook cell is a new process that re-runs the
// global `var x = edit.New(...)` declarations; the session store records the Specs of the
// edits an earlier cell loaded, and Lookup finds, among this cell's declarations, the one
// each record describes. Nothing else needs a registry.
var registry struct {
	mu    sync.Mutex
	edits []*Edit
}

func declare(e *Edit) *Edit {
	registry.mu.Lock()
	registry.edits = append(registry.edits, e)
	registry.mu.Unlock()
	return e
}

// Lookup returns the edit declared in this process whose Spec is s. It returns nil and no
// error when no declaration edits that place, and an error when declarations edit it but
// none with s's module (saying what differs), or when several that cannot be told apart
// (equal specs, unequal modules) match.
func Lookup(s Spec) (*Edit, error) {
	registry.mu.Lock()
	all := append([]*Edit(nil), registry.edits...)
	registry.mu.Unlock()
	var match, samePlace []*Edit
	for _, e := range all {
		es := e.Spec()
		switch {
		case es == s:
			match = append(match, e)
		case es.SamePlace(s):
			samePlace = append(samePlace, e)
		}
	}
	if len(match) > 0 {
		for _, e := range match[1:] {
			if !sameEdit(e, match[0]) {
				return nil, fmt.Errorf("%d declarations match the edit %s and cannot be told apart (their modules print the same but are different values): "+
					"give their wrappers different names, or their modules a Describe() that tells them apart", len(match), s)
			}
		}
		return match[0], nil
	}
	if len(samePlace) == 0 {
		return nil, nil
	}
	var seen []string
	for _, e := range samePlace {
		d := describeDiff(s, e.Spec())
		if !contains(seen, d) {
			seen = append(seen, d)
		}
	}
	return nil, fmt.Errorf("the edit %s.%s -> %s was loaded with %s, but this program declares it %s",
		s.Parent, s.Target, s.Wrapper, what(s), strings.Join(seen, "; and "))
}

// what names the parts of a spec that can differ between declarations of the same place.
func what(s Spec) string {
	w := oneLine(s.Module)
	if s.Instance >= 0 {
		w += fmt.Sprintf(" on call %d", s.Instance)
	}
	return w
}

func describeDiff(loaded, declared Spec) string {
	var d []string
	if loaded.Module != declared.Module {
		d = append(d, "with "+oneLine(declared.Module))
	}
	if loaded.Instance != declared.Instance {
		if declared.Instance < 0 {
			d = append(d, "on every call")
		} else {
			d = append(d, fmt.Sprintf("on call %d", declared.Instance))
		}
	}
	return strings.Join(d, " ")
}

// sameEdit reports whether two declarations are the same edit (the same value, or equal
// modules: two Scale(2) are; two closures never are).
func sameEdit(a, b *Edit) bool {
	return a == b || reflect.DeepEqual(a.Module, b.Module)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
