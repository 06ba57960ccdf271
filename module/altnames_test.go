package module_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/module"
)

// Other names (GPT-2's TransformerLens names) resolve to the tree's own points, with the
// rest of the path (a label, "input") kept.
func TestAltNamesResolve(t *testing.T) {
	n := module.Names{Root: small(), Aliases: map[string]string{"transformer.h": "layers"}}
	for p, want := range map[string][2]string{
		"hook_embed":                     {"transformer.wte", ""},
		"blocks.3.hook_resid_pre":        {"transformer.h.3", "input"},
		"blocks.-1.hook_resid_post":      {"transformer.h.11", ""},
		"blocks[2].attn.hook_z":          {"transformer.h.2.attn", "hook_z"},
		"blocks.2.attn.hook_pattern":     {"transformer.h.2.attn", "attn_weights"},
		"blocks.0.ln1.hook_normalized":   {"transformer.h.0.ln_1", ""},
		"blocks.0.mlp.hook_post":         {"transformer.h.0.mlp.act", ""},
		"blocks.0.hook_mlp_out":          {"transformer.h.0.mlp", ""},
		"layers.0.hook_attn_out":         {"transformer.h.0.attn", ""}, // a user alias and a TL name
		"ln_final.hook_normalized":       {"transformer.ln_f", ""},
		"transformer.h.4.hook_resid_mid": {"transformer.h.4", "hook_resid_mid"},
	} {
		mod, rest, err := n.Resolve(p)
		if err != nil || mod != want[0] || rest != want[1] {
			t.Errorf("Resolve(%q) = %q, %q, %v; want %q, %q", p, mod, rest, err, want[0], want[1])
		}
	}
	// A name of one place is not a name elsewhere: hook_pattern is attention's.
	if mod, rest, _ := n.Resolve("blocks.0.mlp.hook_pattern"); mod != "transformer.h.0.mlp" || rest != "hook_pattern" {
		t.Errorf("hook_pattern under mlp resolved to %q, %q", mod, rest)
	}
	// Misspelt: the suggestion is the TransformerLens name.
	_, _, err := n.Find("blocks.0.hook_mpl_out")
	if !errors.Is(err, module.ErrUnknownPath) || !strings.Contains(err.Error(), "blocks.0.hook_mlp_out") {
		t.Errorf("misspelt hook: %v", err)
	}
}

// Globs match other names: literal ones anywhere, wildcards that name them ("hook_*"); a bare
// "*" stays with the tree's own names.
func TestAltNamesMatch(t *testing.T) {
	n := module.Names{Root: small()}
	for _, c := range []struct {
		pattern, path, spelled string
		ok                     bool
	}{
		{"blocks.*.hook_resid_post", "transformer.h.5", "blocks.5.hook_resid_post", true},
		{"blocks.*.hook_resid_pre", "transformer.h.5.input", "blocks.5.hook_resid_pre", true},
		{"blocks.*.attn.hook_*", "transformer.h.1.attn.attn_weights", "blocks.1.attn.hook_pattern", true},
		{"blocks.*.attn.hook_*", "transformer.h.1.attn.hook_z", "blocks.1.attn.hook_z", true},
		{"**.hook_pattern", "transformer.h.7.attn.attn_weights", "transformer.h.7.attn.hook_pattern", true},
		{"blocks.-1.mlp.hook_pre", "transformer.h.11.mlp.c_fc", "blocks.-1.mlp.hook_pre", true},
		{"hook_embed", "transformer.wte", "hook_embed", true},
		{"blocks.0.*", "transformer.h.0", "", false}, // not hook_resid_post
		{"*", "transformer.wte", "", false},          // not hook_embed
		{"blocks.*.hook_attn_out", "transformer.h.0.mlp", "", false},
	} {
		got, ok := n.Match(c.pattern, c.path)
		if ok != c.ok || ok && got != c.spelled {
			t.Errorf("Match(%q, %q) = %q, %v; want %q, %v", c.pattern, c.path, got, ok, c.spelled, c.ok)
		}
	}
}
