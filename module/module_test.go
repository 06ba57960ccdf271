package module_test

import (
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/internal/toy"
	"github.com/gonnsight/gonnsight/module"
)

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"transformer.h[3].attn": "transformer.h.3.attn",
		"h.3":                   "h.3",
		" h[10] ":               "h.10",
		"":                      "",
	} {
		if got := module.NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindNamesWhatExists(t *testing.T) {
	m := toy.M()
	if got, err := module.Find(m, "layer2.layer"); err != nil || got != m.Layer2.Layer {
		t.Fatalf("Find(layer2.layer) = %v, %v", got, err)
	}
	_, err := module.Find(m, "layer2.layr")
	if err == nil || !strings.Contains(err.Error(), `"layer2" has no child "layr"`) || !strings.Contains(err.Error(), "layer2.layer") {
		t.Errorf("error %v must say what is missing and suggest layer2.layer", err)
	}
}

func TestTreeFoldsIdenticalListItems(t *testing.T) {
	l := &module.List{Items: []module.Module{module.NewLinear(2, 2), module.NewLinear(2, 2), module.NewLinear(2, 3)}}
	s := module.Tree(l, nil, false)
	if !strings.Contains(s, "(0-1): 2 x Linear(in_features=2, out_features=2, bias=True)") ||
		!strings.Contains(s, "(2): Linear(in_features=2, out_features=3, bias=True)") {
		t.Errorf("tree:\n%s", s)
	}
	// An edit on one item makes it differ from its neighbours.
	s = module.Tree(l, map[string][]module.Child{"1": {{Name: "w", Module: module.Identity{}}}}, false)
	if strings.Contains(s, "2 x") || !strings.Contains(s, "[edit] WrapperModule()") {
		t.Errorf("tree with an edit:\n%s", s)
	}
}
