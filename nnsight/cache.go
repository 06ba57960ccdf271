package nnsight

import (
	"fmt"
	"github.com/gomlx/gomlx/core/tensors"
	"strings"
)

// Cache is every module output (and labelled value) of one run, by path: TransformerLens's
// run_with_cache.
type Cache struct {
	*Result
	Paths []string
}

// RunWithCache runs input once and returns the outputs of every module and labelled value
// whose path matches one of the glob patterns ("transformer.h.*.attn.attn_weights"; all
// when none are given), and the logits.
func (m *Model) RunWithCache(input any, patterns ...string) (*Cache, error) {
	scan, err := m.Scan(input, nil)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range scan.Order {
		if len(patterns) == 0 {
			paths = append(paths, p)
			continue
		}
		for _, pat := range patterns {
			if Match(pat, p) {
				paths = append(paths, p)
				break
			}
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no module or labelled value matches %s; e.g. %s", strings.Join(patterns, ", "),
			strings.Join(scan.Order[:min(5, len(scan.Order))], ", "))
	}
	res, err := m.Trace(input, func(t *Tracer) {
		for _, p := range paths {
			if p == "lm_head" {
				continue // always saved as "logits"
			}
			t.Module(p).Output().Save(p)
		}
	})
	if err != nil {
		return nil, err
	}
	if _, ok := res.values["lm_head"]; !ok && res.Logits() != nil {
		res.values["lm_head"] = res.Logits()
	}
	return &Cache{Result: res, Paths: paths}, nil
}

// Stack returns the cached values of the given paths stacked in order (e.g. every layer's
// residual stream) as float32 data with shape [len(paths), ...].
func (c *Cache) Stack(paths ...string) ([]float32, []int, error) {
	var out []float32
	var dims []int
	for _, p := range paths {
		t := c.Get(p)
		if t == nil {
			return nil, nil, fmt.Errorf("path %q is not in the cache", p)
		}
		d, s, err := Float32(t)
		if err != nil {
			return nil, nil, err
		}
		if dims == nil {
			dims = s
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
		c = &Cache{Result: &Result{values: map[string]*tensors.Tensor{}, lists: map[string][]*tensors.Tensor{}}}
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
// match the path its patterns are matched against.
func (tr *trace) record(key, match string, x *Node) {
	for _, cs := range tr.caches {
		if !cs.matches(match) {
			continue
		}
		cs.entries = append(cs.entries, &cacheEntry{key: key, node: view(x, cs.rows, nil)})
	}
}

func (cs *cacheSpec) matches(p string) bool {
	if len(cs.patterns) == 0 {
		return true
	}
	for _, pat := range cs.patterns {
		if Match(pat, p) {
			return true
		}
	}
	return false
}

// fill stores a run's cached values (outs, in the order of the entries).
func (cs *cacheSpec) fill(outs []*tensors.Tensor) {
	c := cs.cache
	for i, e := range cs.entries {
		if _, seen := c.values[e.key]; !seen {
			c.order = append(c.order, e.key)
			c.Paths = append(c.Paths, e.key)
		}
		c.values[e.key] = outs[i]
		c.lists[e.key] = append(c.lists[e.key], outs[i])
	}
}
