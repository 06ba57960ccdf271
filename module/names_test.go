package module_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/module"
)

// small is GPT-2 small's module tree (no weights): 12 blocks.
func small() module.Module { return gpt2.New(gpt2.Small()) }

func TestNegativeIndices(t *testing.T) {
	root := small()
	n := module.Names{Root: root}
	last, err := module.Find(root, "transformer.h.11")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"transformer.h[-1]", "transformer.h.-1", " transformer.h[-1] "} {
		got, err := module.Find(root, p)
		if err != nil || got != last {
			t.Errorf("Find(%q) = %v, %v; want block 11", p, got, err)
		}
	}
	for p, want := range map[string]string{
		"transformer.h[-12].mlp": "transformer.h.0.mlp",
		"transformer.h.-2.attn":  "transformer.h.10.attn",
		"transformer.h.3":        "transformer.h.3",
	} {
		if got, _, err := n.Find(p); err != nil || got != want {
			t.Errorf("Names.Find(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	// The rest of a path past the modules (a labelled value) comes back as is.
	if mod, rest, err := n.Resolve("transformer.h[-1].attn.query"); err != nil || mod != "transformer.h.11.attn" || rest != "query" {
		t.Errorf("Resolve = %q, %q, %v", mod, rest, err)
	}
	for _, p := range []string{"transformer.h[-13]", "transformer.h.12", "transformer.h.12.mlp"} {
		_, err := module.Find(root, p)
		if !errors.Is(err, module.ErrOutOfRange) || !errors.Is(err, module.ErrUnknownPath) {
			t.Errorf("Find(%q): %v must be ErrOutOfRange and ErrUnknownPath", p, err)
			continue
		}
		for _, want := range []string{"0..11", "-12..-1", "transformer.h"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Find(%q): %q does not name the valid range (%s)", p, err, want)
			}
		}
	}
	// Negative indices only count in lists.
	if _, err := module.Find(root, "transformer.-1"); !errors.Is(err, module.ErrUnknownPath) {
		t.Errorf("an index into a module that is not a list: %v", err)
	}
}

func TestAliases(t *testing.T) {
	n := module.Names{Root: small(), Aliases: map[string]string{"transformer.h": "layers", "mlp": "ffn"}}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"layers.0.ffn":              "transformer.h.0.mlp",
		"layers[-1].ffn.c_fc":       "transformer.h.11.mlp.c_fc",
		"transformer.h.2.ffn":       "transformer.h.2.mlp",
		"layers.3.mlp":              "transformer.h.3.mlp",
		"transformer.h.5.attn":      "transformer.h.5.attn",
		"layers":                    "transformer.h",
		"transformer.layers":        "", // "layers" stands for transformer.h at the root only
		"transformer.h.0.attn.ffn":  "", // attn has no mlp
		"layers.0.ffn.c_proj.input": "transformer.h.0.mlp.c_proj",
	} {
		mod, rest, err := n.Resolve(p)
		if err != nil {
			t.Errorf("Resolve(%q): %v", p, err)
			continue
		}
		if want == "" {
			if rest == "" {
				t.Errorf("Resolve(%q) = %q: the alias must not apply there", p, mod)
			}
			continue
		}
		if mod != want {
			t.Errorf("Resolve(%q) = %q (rest %q), want %q", p, mod, rest, want)
		}
	}
	bad := map[string]map[string]string{
		"no such module":   {"transformer.hh": "layers"},
		"dotted alias":     {"mlp": "f.fn"},
		"numeric alias":    {"mlp": "3"},
		"alias used twice": {"mlp": "x", "attn": "x"},
		"hidden by child":  {"mlp": "attn"},
	}
	for name, rename := range bad {
		if err := (module.Names{Root: small(), Aliases: rename}).Check(); err == nil {
			t.Errorf("%s: %v accepted", name, rename)
		}
	}
}

func TestGlobSegments(t *testing.T) {
	root := small()
	n := module.Names{Root: root, Aliases: map[string]string{"transformer.h": "layers", "mlp": "ffn"}}
	count := func(pattern string) (hits []string) {
		for _, p := range module.Paths(root) {
			if s, ok := n.Match(pattern, p); ok {
				hits = append(hits, s)
			}
		}
		return hits
	}
	// One segment per "*": the 12 blocks, not everything below them.
	if got := count("transformer.h.*"); len(got) != 12 || got[0] != "transformer.h.0" {
		t.Errorf("transformer.h.* matched %d paths: %v", len(got), got)
	}
	if got := count("transformer.h[*]"); len(got) != 12 {
		t.Errorf("transformer.h[*] matched %d paths", len(got))
	}
	// "1*" stays within the segment: 1, 10, 11.
	if got := count("transformer.h.1*"); fmt.Sprint(got) != "[transformer.h.1 transformer.h.10 transformer.h.11]" {
		t.Errorf("transformer.h.1* matched %v", got)
	}
	// "**" is one or more segments: everything inside the blocks, not the list itself.
	inside := 0
	for _, p := range module.Paths(root) {
		if strings.HasPrefix(p, "transformer.h.") {
			inside++
		}
	}
	if got := count("transformer.h.**"); len(got) != inside {
		t.Errorf("transformer.h.** matched %d paths, want the %d inside the list", len(got), inside)
	}
	if got := count("**.c_fc"); len(got) != 12 {
		t.Errorf("**.c_fc matched %d", len(got))
	}
	if got := count("**.transformer"); len(got) != 0 {
		t.Errorf("** must match at least one segment: %v", got)
	}
	// Aliases and negative indices in a glob; the matches are spelled as the pattern spells them.
	if got := count("layers.*.ffn"); len(got) != 12 || got[3] != "layers.3.ffn" {
		t.Errorf("layers.*.ffn matched %v", got)
	}
	// A wildcard matches the tree's own names.
	if got := count("layers.-1.*"); fmt.Sprint(got) != "[layers.-1.ln_1 layers.-1.attn layers.-1.ln_2 layers.-1.mlp]" {
		t.Errorf("layers.-1.* matched %v", got)
	}
	if s, ok := n.Match("transformer.h.-1.attn.query", "transformer.h.11.attn.query"); !ok || s != "transformer.h.-1.attn.query" {
		t.Errorf("a labelled value under a negative index: %q %v", s, ok)
	}
	if _, ok := n.Match("transformer.h.-1", "transformer.h.10"); ok {
		t.Error("-1 matched block 10")
	}
}
