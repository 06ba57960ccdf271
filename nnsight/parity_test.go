package nnsight_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/nnsight"
)

const tol = 1e-4

func loadTiny(t *testing.T, name string) (*nnsight.Model, *golden.Fixture) {
	t.Helper()
	fx := golden.Open(t, name)
	m := nnsight.LanguageModel(fx.Dir, nnsight.WithBackend("go"))
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	return m, fx
}

// modulePaths are the golden keys of every module output and labelled value.
func modulePaths(nLayer int) []string {
	p := []string{"transformer.wte", "transformer.wpe", "transformer.drop", "transformer.ln_f", "lm_head"}
	for i := 0; i < nLayer; i++ {
		h := "transformer.h." + itoa(i)
		p = append(p, h, h+".ln_1", h+".attn", h+".attn.c_attn", h+".attn.c_proj", h+".ln_2", h+".mlp",
			h+".mlp.c_fc", h+".mlp.act", h+".mlp.c_proj", h+".attn.query", h+".attn.key", h+".attn.value",
			h+".attn.attn_weights", h+".attn.attn_output")
	}
	return p
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+i))) }

func TestParityEveryModule(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			nLayer := m.Config().NLayer
			for _, prompt := range []string{"p0", "p1"} {
				ids := fx.Ints(t, prompt)
				paths := modulePaths(nLayer)
				res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
					for _, p := range paths {
						tr.Module(p).Output().Save(p)
					}
					tr.Module("transformer.h.1").Input().Save("input/transformer.h.1")
					tr.Module("transformer.h.0.mlp").Input().Save("input/transformer.h.0.mlp")
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range append(paths, "input/transformer.h.1", "input/transformer.h.0.mlp") {
					data, shape, err := res.Float32(p)
					if err != nil {
						t.Fatal(err)
					}
					fx.Compare(t, prompt+"/"+p, data, shape, tol)
				}
				logits, shape, _ := nnsight.Float32(res.Logits())
				fx.Compare(t, prompt+"/lm_head", logits, shape, tol)
			}
		})
	}
}

func TestLoadIgnoresBuffers(t *testing.T) {
	m, _ := loadTiny(t, "tiny-a")
	_ = filepath.Join
	if len(m.Weights()) == 0 {
		t.Fatal("no weights")
	}
}
