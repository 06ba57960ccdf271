package module

import (
	"path"
	"strings"
)

// Other names for a model's points: GPT-2 answers to TransformerLens's hook names
// ("blocks.3.attn.hook_z", "blocks.3.hook_resid_pre") as well as to its own paths. A model
// lists them (AltNamer) and Names resolves and matches them wherever a path is accepted.

// AltName gives a point a second name: at every module whose path (the tree's own) matches
// At, Name stands for Target, a path relative to that module: a child ("attn"), a deeper
// module ("transformer.wte"), a labelled value ("attn_weights"), the module's first input
// ("input"), or the module itself ("").
type AltName struct {
	At, Name, Target string
}

// AltNamer is implemented by a root module whose points have other names as well.
type AltNamer interface {
	// AltNames is the table of other names.
	AltNames() []AltName
	// AltPaths lists every point under its other names ("blocks.0.hook_resid_pre", ...), for
	// suggestions in errors and for listings.
	AltPaths() []string
}

// AltPaths returns root's other names of its points (nil when it has none).
func AltPaths(root Module) []string {
	if a, ok := root.(AltNamer); ok {
		return a.AltPaths()
	}
	return nil
}

// altTarget returns the target segments that name stands for at the module at own path at.
func (n Names) altTarget(at, name string) ([]string, bool) {
	a, ok := n.Root.(AltNamer)
	if !ok {
		return nil, false
	}
	for _, e := range a.AltNames() {
		if e.Name == name && segmentsMatch(e.At, at) {
			return split(e.Target), true
		}
	}
	return nil, false
}

// altMatching returns the other names at the module at own path at that match a glob segment,
// with their targets.
func (n Names) altMatching(at, glob string) (names []string, targets [][]string) {
	a, ok := n.Root.(AltNamer)
	if !ok {
		return nil, nil
	}
	for _, e := range a.AltNames() {
		if ok, _ := path.Match(glob, e.Name); ok && segmentsMatch(e.At, at) {
			names = append(names, e.Name)
			targets = append(targets, split(e.Target))
		}
	}
	return names, targets
}

// altGlob is altMatching for a pattern segment, except that a bare wildcard ("*", "?*")
// matches only the tree's own names: "transformer.h.0.*" is the block's children, not its
// other names, while "hook_*" names other names and matches them.
func (n Names) altGlob(at, seg string) ([]string, [][]string) {
	if strings.Trim(seg, "*?") == "" {
		return nil, nil
	}
	return n.altMatching(at, seg)
}

// segmentsMatch matches a path against a glob segment by segment ("*" within one segment).
func segmentsMatch(glob, p string) bool {
	gs, ps := split(glob), split(p)
	if len(gs) != len(ps) {
		return false
	}
	for i := range gs {
		if ok, _ := path.Match(gs[i], ps[i]); !ok {
			return false
		}
	}
	return true
}

// hasPrefix reports whether xs starts with the segments of pre.
func hasPrefix(xs, pre []string) bool {
	if len(pre) > len(xs) {
		return false
	}
	for i, s := range pre {
		if xs[i] != s {
			return false
		}
	}
	return true
}

// AltPathsOf is AltPaths of the names' root.
func (n Names) AltPathsOf() []string { return AltPaths(n.Root) }

// AltNamesAt lists the other names at the module at own path at ("hook_pattern" at an
// attention), for messages.
func (n Names) AltNamesAt(at string) []string {
	a, ok := n.Root.(AltNamer)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range a.AltNames() {
		if segmentsMatch(e.At, at) {
			out = append(out, e.Name)
		}
	}
	return out
}
