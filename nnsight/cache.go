package nnsight

import (
	"fmt"
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
