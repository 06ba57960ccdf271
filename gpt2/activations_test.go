package gpt2_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
)

// Hugging Face's activation_function values: the MLP's act output is the function of its
// c_fc output, computed here from the formulas of Hugging Face's activations.py; an unknown
// name is refused at load, naming it and the known ones.
func TestActivationFunctions(t *testing.T) {
	src := t.TempDir()
	if err := gpt2.MakeTiny(src, smallTinyOptions); err != nil {
		t.Fatal(err)
	}
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	tanhGELU := func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(0.7978845608*(x+0.044715*x*x*x))) }
	for name, f := range map[string]func(float64) float64{
		"gelu_new":   tanhGELU,
		"gelu_fast":  tanhGELU,
		"gelu":       func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) },
		"quick_gelu": func(x float64) float64 { return x * sigmoid(1.702*x) },
		"silu":       func(x float64) float64 { return x * sigmoid(x) },
		"swish":      func(x float64) float64 { return x * sigmoid(x) },
		"relu":       func(x float64) float64 { return math.Max(x, 0) },
		"linear":     func(x float64) float64 { return x },
	} {
		dir := withActivation(t, src, name)
		res, err := nnsight.LanguageModel(dir).Trace(nnsight.Tokens{IDs: [][]int{{464, 3290, 318, 287}}}, func(tr *nnsight.Tracer) {
			tr.Module("transformer.h.1.mlp.c_fc").Output().Save("in")
			tr.Module("transformer.h.1.mlp.act").Output().Save("out")
		})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		in, _, _ := res.Float32("in")
		out, _, _ := res.Float32("out")
		worst := 0.0
		for i := range in {
			worst = max(worst, abs(float64(out[i])-f(float64(in[i]))))
		}
		if worst > 1e-5 {
			t.Errorf("%s: act(c_fc) off by %g from the formula", name, worst)
		}
	}
	_, err := gpt2.LoadDir(withActivation(t, src, "gelu_10"), nil)
	if err == nil || !strings.Contains(err.Error(), `"gelu_10"`) || !strings.Contains(err.Error(), "quick_gelu") {
		t.Errorf("unknown activation: err %v, want one naming gelu_10 and the known ones", err)
	}
}

// withActivation is a copy of the model in src with activation_function name.
func withActivation(t *testing.T, src, name string) string {
	return copyModel(t, src, func(c string) string {
		return strings.Replace(c, `"activation_function": "gelu_new"`, `"activation_function": "`+name+`"`, 1)
	}, nil)
}
