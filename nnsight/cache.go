package nnsight

import (
	"fmt"
	"github.com/gomlx/gomlx/core/tensors"
	"slices"
	"strings"

	"github.com/gonnsight/gonnsight/module"
)

// Cache is every module output (and labelled value) of one run, by path: TransformerLens's
// run_with_cache.
type Cache struct {
	*Result
	// Paths are the cached values' keys, in the order the forward computed them, spelled as
	// the patterns spell them (aliases, negative indices as written; what a wildcard matched
	// with the model's own names).
	Paths []string
	own   map[string]string // the model's own path -> key
	order []string          // the model's own paths, in the order of Paths
	names module.Names
}

// RunWithCache runs input once and returns the outputs of every module and labelled value
// whose path matches one of the patterns (all when none are given), and the logits.
// Patterns are paths or globs over dotted segments: "*" within one segment
// ("transformer.h.*.attn.attn_weights": every layer's attention weights; "transformer.h.*"
// is the blocks, not what is inside them), "**" one or more whole segments
// ("transformer.h.**", "**.attn_weights"); literal segments may be aliases (Rename) or
// negative indices ("transformer.h.-1.**").
func (m *Model) RunWithCache(input any, patterns ...string) (*Cache, error) {
	scan, err := m.Scan(input, nil)
	if err != nil {
		return nil, err
	}
	c := &Cache{own: map[string]string{}, names: m.names(true)}
	candidates := scan.Order
	if len(patterns) > 0 {
		// Patterns may name modules' inputs too ("transformer.h.0.input",
		// "blocks.*.hook_resid_pre"): each module's input comes before its output.
		candidates = nil
		for _, p := range scan.Order {
			if scan.modules[p] {
				candidates = append(candidates, module.Join(p, "input"))
			}
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if len(patterns) == 0 {
			if !scan.onDemand[p] { // hook_result only when a pattern asks for it
				c.add(p, p)
			}
			continue
		}
		for _, pat := range patterns {
			if key, ok := matchPoint(c.names, pat, p); ok {
				c.add(p, key)
				break
			}
		}
	}
	if len(c.Paths) == 0 {
		return nil, module.NewError(ErrUnknownPath, "no module or labelled value matches %s; e.g. %s", strings.Join(patterns, ", "),
			strings.Join(scan.Order[:min(5, len(scan.Order))], ", "))
	}
	res, err := m.Trace(input, func(t *Tracer) {
		for i, own := range c.order {
			if own == "lm_head" {
				continue // always saved as "logits"
			}
			t.Module(own).Output().Save(c.Paths[i])
		}
	})
	if err != nil {
		return nil, err
	}
	if key, ok := c.own["lm_head"]; ok && res.Logits() != nil {
		if _, saved := res.values[key]; !saved {
			res.values[key] = res.Logits()
		}
	}
	c.Result = res
	return c, nil
}

func (c *Cache) add(own, key string) {
	if _, ok := c.own[own]; ok {
		return
	}
	c.own[own] = key
	c.order = append(c.order, own)
	c.Paths = append(c.Paths, key)
}

// key finds the cache key of a path: a key itself, or any other spelling of the same value
// (the model's own path, an alias, a negative index).
func (c *Cache) key(p string) (string, error) {
	if _, ok := c.values[p]; ok && slices.Contains(c.Paths, p) {
		return p, nil
	}
	if mod, rest, err := c.names.Resolve(p); err == nil && !strings.Contains(rest, ".") {
		own := module.Join(mod, rest)
		if key, ok := c.own[own]; ok {
			return key, nil
		}
		if _, ok := c.values[own]; ok && slices.Contains(c.Paths, own) {
			return own, nil // a trace's cache keeps the model's own paths
		}
	}
	return "", module.NewError(ErrUnknownPath, "path %q is not in the cache; cached: %s", p, list(c.Paths, 8))
}

// resolve is the key of a path spelled any way that names a cached value (the key, the
// model's own path, an alias, a negative index, a TransformerLens name), or p itself.
func (c *Cache) resolve(p string) string {
	if _, ok := c.values[p]; ok || c.names.Root == nil {
		return p
	}
	if key, err := c.key(p); err == nil {
		return key
	}
	return p
}

// Get returns the cached value at a path, however it is spelled
// (c.Get("blocks.0.hook_resid_pre") is c.Get("transformer.h.0.input")); nil when not cached.
func (c *Cache) Get(p string) *tensors.Tensor { return c.Result.Get(c.resolve(p)) }

// Value is Get with an error naming what is cached.
func (c *Cache) Value(p string) (*tensors.Tensor, error) {
	if t := c.Get(p); t != nil {
		return t, nil
	}
	return nil, module.NewError(ErrUnknownPath, "path %q is not in the cache; cached: %s", p, list(c.Paths, 8))
}

// Float32 is the cached value at a path as float32 data and its shape.
func (c *Cache) Float32(p string) ([]float32, []int, error) {
	t, err := c.Value(p)
	if err != nil {
		return nil, nil, err
	}
	return Float32(t)
}

// List is every step's value at a path (Generate), however it is spelled.
func (c *Cache) List(p string) []*tensors.Tensor { return c.Result.List(c.resolve(p)) }

func list(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, ... (%d in all)", strings.Join(names[:n], ", "), len(names))
}

// Stack returns the cached values of the given paths stacked in order (e.g. every layer's
// residual stream) as float32 data with shape [len(paths), ...]. The values must all have
// the same shape (ErrShape otherwise).
func (c *Cache) Stack(paths ...string) ([]float32, []int, error) {
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("Stack needs at least one path; cached: %s", list(c.Paths, 8))
	}
	var out []float32
	var dims []int
	for i, p := range paths {
		key, err := c.key(p)
		if err != nil {
			return nil, nil, err
		}
		d, s, err := Float32(c.Get(key))
		if err != nil {
			return nil, nil, fmt.Errorf("path %q: %w", p, err)
		}
		if i == 0 {
			dims = s
		} else if !slices.Equal(s, dims) {
			return nil, nil, module.NewError(ErrShape, "Stack: %q has shape %v but %q has shape %v; stacked values must have one shape",
				p, s, paths[0], dims)
		}
		out = append(out, d...)
	}
	return out, append([]int{len(paths)}, dims...), nil
}

// cacheSpec is a cache asked for inside a trace (Tracer.Cache).
type cacheSpec struct {
	patterns []string
	rows     *[2]int
	cache    *Cache
	entries  []*cacheEntry
}

type cacheEntry struct {
	key  string
	node *Node
}

// Cache records, as the forward runs, the values of every module (its output and its first
// input, as "path.input") and every labelled value whose path matches one of the glob
// patterns (all when none are given), after this trace's interventions: nnsight's
// tracer.cache(). It is filled when the trace returns. An invoke's tracer caches only its
// rows. In Generate the same *Cache collects every step: Get gives the last step's value,
// List(key) one value per step.
func (t *Tracer) Cache(patterns ...string) *Cache {
	tr := t.tr
	k := len(tr.caches)
	var c *Cache
	if k < len(tr.prevCaches) {
		c = tr.prevCaches[k]
	} else {
		c = &Cache{Result: &Result{values: map[string]*tensors.Tensor{}, lists: map[string][]*tensors.Tensor{}},
			own: map[string]string{}, names: tr.model.names(true)}
	}
	tr.caches = append(tr.caches, &cacheSpec{patterns: patterns, rows: t.rows, cache: c})
	return c
}

// cacheObjects are this trace's caches, in the order they were asked for.
func (tr *trace) cacheObjects() []*Cache {
	var out []*Cache
	for _, cs := range tr.caches {
		out = append(out, cs.cache)
	}
	return out
}

// record offers a value the forward reached to the trace's caches: key is its path
// ("transformer.h.0.mlp", "transformer.h.0.mlp.input", "transformer.h.0.attn.query"),
// match the path its patterns are matched against (a module's input is matched by the
// module's patterns and by those naming the input itself, given as alsoMatch:
// "blocks.*.hook_resid_pre"). A value computed only when asked for (onDemand: hook_result)
// goes only to caches whose patterns match it, not to caches of everything.
func (tr *trace) record(key, match string, x *Node, onDemand bool, alsoMatch ...string) {
	if tr.cacheNames == nil {
		n := tr.model.names(true) // once per trace: record runs for every value of the forward
		tr.cacheNames = &n
	}
	for _, cs := range tr.caches {
		if onDemand && len(cs.patterns) == 0 {
			continue
		}
		ok := cs.matches(*tr.cacheNames, match)
		for _, m := range alsoMatch {
			for _, pat := range cs.patterns {
				if _, hit := matchPoint(*tr.cacheNames, pat, m); hit {
					ok = true
				}
			}
		}
		if !ok {
			continue
		}
		cs.entries = append(cs.entries, &cacheEntry{key: key, node: view(x, cs.rows, nil)})
	}
}

// matchPoint is names.Match, except that a module's input ("path.input") matches only a
// pattern that names it: one ending in "input" or in another name of it (TransformerLens's
// hook_resid_pre), not a wildcard ("transformer.h.**" is outputs, as it always was).
func matchPoint(names module.Names, pattern, p string) (string, bool) {
	key, ok := names.Match(pattern, p)
	if !ok || !strings.HasSuffix(p, ".input") {
		return key, ok
	}
	pat := strings.Split(module.NormalizePath(pattern), ".")
	if strings.HasSuffix(key, ".input") && pat[len(pat)-1] != "input" {
		return "", false
	}
	return key, true
}

func (cs *cacheSpec) matches(names module.Names, p string) bool {
	if len(cs.patterns) == 0 {
		return true
	}
	for _, pat := range cs.patterns {
		if _, ok := names.Match(pat, p); ok {
			return true
		}
	}
	return false
}

// fill stores a run's cached values (outs, in the order of the entries).
func (cs *cacheSpec) fill(outs []*tensors.Tensor) {
	c := cs.cache
	for i, e := range cs.entries {
		c.add(e.key, e.key)
		c.values[e.key] = outs[i]
		c.lists[e.key] = append(c.lists[e.key], outs[i])
	}
}
