package module_test

import (
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/module"
)

// FuzzPaths: any path or glob a user types is resolved, found or matched against a GPT-2
// tree with aliases without a panic; a path Find accepts is one of the tree's own paths.
func FuzzPaths(f *testing.F) {
	cfg := gpt2.Small()
	cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.VocabSize, cfg.NPositions = 3, 16, 2, 64, 16
	n := module.Names{Root: gpt2.New(cfg), Aliases: map[string]string{"transformer.h": "layers", "mlp": "ffn"}}
	if err := n.Check(); err != nil {
		f.Fatal(err)
	}
	own := map[string]bool{"": true}
	for _, p := range module.Paths(n.Root) {
		own[p] = true
	}
	for _, s := range []string{"transformer.h.0.attn", "transformer.h[-1].mlp", "layers.1.ffn.c_fc", "transformer.h.99",
		"transformer.h.-4", "**.attn_weights", "transformer.h.*.mlp", "h[", "]]..[-", "transformer.h.0.attn.query.input", "layers[-0]"} {
		f.Add(s, s)
	}
	f.Add("transformer.h.*", "transformer.h.2")
	f.Fuzz(func(t *testing.T, p, pattern string) {
		_ = module.NormalizePath(p)
		_, _, _ = n.Resolve(p)
		if path, m, err := n.Find(p); err == nil {
			if m == nil || !own[path] {
				t.Fatalf("Find(%q) = %q, not a module of the tree", p, path)
			}
		} else if err.Error() == "" || strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("Find(%q): empty error", p)
		}
		_, _ = n.Match(pattern, p)
	})
}
