package module

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Names turns the paths users write into the tree's own dotted paths, and matches globs.
//
// A path is dotted or indexed ("transformer.h[3].attn" is "transformer.h.3.attn"). Beyond
// the tree's own names it accepts:
//   - negative list indices, counted from the end: "transformer.h.-1" and "transformer.h[-1]"
//     are the last block. An index outside the list is an error naming the valid range.
//   - aliases (nnsight's rename): Aliases maps a module path or a single module name to
//     another name, e.g. {"transformer.h": "layers", "mlp": "ffn"}. An alias is one more
//     child name of every module from which its key is a path: "layers" stands for
//     "transformer.h" at the root, "ffn" for "mlp" in every block, so "layers.0.ffn",
//     "transformer.h.0.ffn" and "layers[-1].mlp" all work. A module's own child names win
//     over aliases (an alias that a child name would hide is rejected by Check).
//   - the model's other names (AltNamer: GPT-2's TransformerLens hook names), e.g.
//     "blocks.0.hook_resid_pre" resolves to "transformer.h.0" with the rest "input", and
//     "blocks.0.attn.hook_pattern" to "transformer.h.0.attn" with the rest "attn_weights".
//
// Globs (Match) work on dotted segments: "*" (and "?") match within one segment, so
// "transformer.h.*" is the blocks and nothing below them; "**" is one or more whole
// segments (never zero), so "transformer.h.**" is everything inside the blocks, and
// "**.attn_weights" every attention's weights. Literal segments may be aliases, negative
// indices or other names; a wildcard segment with a literal part ("hook_*") matches other
// names too, a bare "*" only the tree's own.
type Names struct {
	Root    Module
	Extra   map[string][]Child // children added at build time (edit wrappers), by parent path
	Aliases map[string]string  // module path or name -> alias
}

// Check validates the aliases against the tree: every key names a module somewhere, every
// alias is one plain name, given once, and not hidden by a real child of the same name.
func (n Names) Check() error {
	all := Paths(n.Root)
	owner := map[string]string{}
	for _, key := range sortedAliasKeys(n.Aliases) {
		alias := strings.TrimPrefix(n.Aliases[key], ".")
		k := strings.Trim(NormalizePath(key), ".")
		switch {
		case k == "":
			return fmt.Errorf("rename: an empty module path cannot have an alias")
		case alias == "" || strings.ContainsAny(alias, ".[]*? "):
			return fmt.Errorf("rename %q: the alias %q must be one plain name (no dots, brackets or wildcards)", key, n.Aliases[key])
		case isIndex(alias):
			return fmt.Errorf("rename %q: the alias %q must not be a number (numbers are list indices)", key, alias)
		}
		if prev, ok := owner[alias]; ok {
			return fmt.Errorf("rename: the alias %q is given to both %q and %q", alias, prev, key)
		}
		owner[alias] = key
		found := false
		for _, p := range all {
			if p != k && !strings.HasSuffix(p, "."+k) {
				continue
			}
			found = true
			// The module from which the key starts: the alias is a child name there.
			base := strings.TrimSuffix(strings.TrimSuffix(p, k), ".")
			m, err := Find(n.Root, base)
			if err != nil {
				return err
			}
			for _, ch := range ChildrenOf(m) {
				if ch.Name == alias {
					return fmt.Errorf("rename %q: the alias %q would be hidden by %s's own child %q", key, alias, displayPath(base), alias)
				}
			}
		}
		if !found {
			return NewError(ErrUnknownPath, "rename %q: no module path is or ends with %q%s", key, k, suggest(n.Root, k))
		}
	}
	return nil
}

func sortedAliasKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Resolve follows path through the tree as far as it names modules and returns the tree's
// own path of the last module reached and the rest of the path (a labelled value, "input",
// or an unknown name; "" when the whole path is a module). A list index outside its list is
// an error (ErrOutOfRange).
func (n Names) Resolve(p string) (mod, rest string, err error) {
	norm := NormalizePath(p)
	if norm == "" {
		return "", "", nil
	}
	segs := strings.Split(norm, ".")
	m, cur := n.Root, ""
	for i := 0; i < len(segs); i++ {
		seg := segs[i]
		if ch := n.child(m, cur, seg); ch != nil {
			m, cur = ch, Join(cur, seg)
			continue
		}
		if size, ok := listSize(m); ok && isIndex(seg) {
			idx, _ := strconv.Atoi(seg)
			if idx < -size || idx >= size {
				// Both kinds: a range error, and a path that names no module.
				return cur, "", &Error{Kinds: []error{ErrOutOfRange, ErrUnknownPath},
					Msg: fmt.Sprintf("no module %q: index %s is out of range for %s, a list of %d (valid: 0..%d or -%d..-1)%s",
						norm, seg, displayPath(cur), size, size-1, size, suggest(n.Root, norm))}
			}
			if idx < 0 {
				idx += size
			}
			name := strconv.Itoa(idx)
			m, cur = n.child(m, cur, name), Join(cur, name)
			continue
		}
		if key := n.alias(m, cur, seg); key != nil {
			for _, k := range key {
				m, cur = n.child(m, cur, k), Join(cur, k)
			}
			continue
		}
		if target, ok := n.altTarget(cur, seg); ok {
			// Another name (TransformerLens's): follow its target as far as it names modules;
			// the rest (a label, "input") goes before the path's remaining segments.
			j := 0
			for ; j < len(target); j++ {
				ch := n.child(m, cur, target[j])
				if ch == nil {
					break
				}
				m, cur = ch, Join(cur, target[j])
			}
			if j < len(target) {
				return cur, strings.Join(append(append([]string(nil), target[j:]...), segs[i+1:]...), "."), nil
			}
			continue
		}
		return cur, strings.Join(segs[i:], "."), nil
	}
	return cur, "", nil
}

// Find returns the tree's own path of the module at p, and the module; an error names what
// is missing and the nearest valid paths.
func (n Names) Find(p string) (string, Module, error) {
	mod, rest, err := n.Resolve(p)
	if err != nil {
		return "", nil, err
	}
	m := n.at(mod)
	if rest == "" {
		return mod, m, nil
	}
	norm := NormalizePath(p)
	part, _, _ := strings.Cut(rest, ".")
	names := childNames(m)
	for _, ch := range n.Extra[mod] {
		names = append(names, ch.Name)
	}
	return "", nil, NewError(ErrUnknownPath, "no module %q: %q has no child %q (children: %s)%s", norm, displayPath(mod), part,
		strings.Join(names, ", "), suggest(n.Root, norm))
}

// Match reports whether p, one of the tree's own paths (of a module or a labelled value),
// matches pattern, and returns p spelled the way the pattern spells it: the pattern's literal
// segments (aliases, negative indices) as written, the segments its wildcards matched from p.
func (n Names) Match(pattern, p string) (spelled string, ok bool) {
	ps := split(NormalizePath(pattern))
	xs := split(p)
	if len(ps) == 0 {
		return "", len(xs) == 0
	}
	out, ok := n.match(ps, xs, "", nil)
	return strings.Join(out, "."), ok
}

func split(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

func (n Names) match(ps, xs []string, prefix string, spelled []string) ([]string, bool) {
	if len(ps) == 0 {
		return spelled, len(xs) == 0
	}
	seg := ps[0]
	with := func(words ...string) []string {
		return append(append([]string(nil), spelled...), words...)
	}
	if seg == "**" {
		for k := 1; k <= len(xs); k++ {
			if out, ok := n.match(ps[1:], xs[k:], Join(append([]string{prefix}, xs[:k]...)...), with(xs[:k]...)); ok {
				return out, true
			}
		}
		return nil, false
	}
	if len(xs) == 0 {
		// Only another name for the module itself (hook_resid_post: the block) fits here.
		names, targets := n.altGlob(prefix, seg)
		for i, t := range targets {
			if len(t) == 0 {
				return n.match(ps[1:], xs, prefix, with(names[i]))
			}
		}
		return nil, false
	}
	next := Join(prefix, xs[0])
	if strings.ContainsAny(seg, "*?") {
		if ok, _ := path.Match(seg, xs[0]); ok {
			if out, ok := n.match(ps[1:], xs[1:], next, with(xs[0])); ok {
				return out, true
			}
		}
		// Other names (TransformerLens's) match wildcards too: "blocks.*.attn.hook_*"
		// includes hook_pattern, which is attn_weights.
		names, targets := n.altGlob(prefix, seg)
		for i, t := range targets {
			if out, ok := n.matchAlt(ps, xs, prefix, t, with(names[i])); ok {
				return out, true
			}
		}
		return nil, false
	}
	if seg == xs[0] {
		return n.match(ps[1:], xs[1:], next, with(seg))
	}
	m := n.at(prefix)
	if m == nil {
		return nil, false
	}
	if size, ok := listSize(m); ok && isIndex(seg) {
		idx, _ := strconv.Atoi(seg)
		if idx < 0 && idx >= -size && strconv.Itoa(size+idx) == xs[0] {
			return n.match(ps[1:], xs[1:], next, with(seg))
		}
		return nil, false
	}
	if key := n.alias(m, prefix, seg); key != nil && hasPrefix(xs, key) {
		return n.match(ps[1:], xs[len(key):], Join(append([]string{prefix}, key...)...), with(seg))
	}
	if target, ok := n.altTarget(prefix, seg); ok {
		return n.matchAlt(ps, xs, prefix, target, with(seg))
	}
	return nil, false
}

// matchAlt goes on matching after ps[0], another name whose target segments must start xs.
func (n Names) matchAlt(ps, xs []string, prefix string, target, spelled []string) ([]string, bool) {
	if !hasPrefix(xs, target) {
		return nil, false
	}
	return n.match(ps[1:], xs[len(target):], Join(append([]string{prefix}, target...)...), spelled)
}

// at is the module at one of the tree's own paths (nil for labels and unknown paths).
func (n Names) at(p string) Module {
	m, cur := n.Root, ""
	for _, seg := range split(p) {
		if m = n.child(m, cur, seg); m == nil {
			return nil
		}
		cur = Join(cur, seg)
	}
	return m
}

func (n Names) child(m Module, path, name string) Module {
	for _, ch := range ChildrenOf(m) {
		if ch.Name == name {
			return ch.Module
		}
	}
	for _, ch := range n.Extra[path] {
		if ch.Name == name {
			return ch.Module
		}
	}
	return nil
}

// alias returns the key path an alias stands for at module m (at path), if its key is a path
// from m; nil otherwise.
func (n Names) alias(m Module, path, name string) []string {
	for key, a := range n.Aliases {
		if strings.TrimPrefix(a, ".") != name {
			continue
		}
		segs := split(strings.Trim(NormalizePath(key), "."))
		cur, at := m, path
		for _, s := range segs {
			if cur = n.child(cur, at, s); cur == nil {
				break
			}
			at = Join(at, s)
		}
		if cur != nil && len(segs) > 0 {
			return segs
		}
	}
	return nil
}

// listSize is the length of a list module: one whose children are named 0, 1, ... in order.
func listSize(m Module) (int, bool) {
	ch := ChildrenOf(m)
	if len(ch) == 0 {
		return 0, false
	}
	for i, c := range ch {
		if c.Name != strconv.Itoa(i) {
			return 0, false
		}
	}
	return len(ch), true
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
