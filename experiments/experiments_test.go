package experiments_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/experiments"
	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// Golden values: tests/reference/experiments_ref.py, one PyTorch forward per patch on the
// independent GPT-2 of gpt2_ref.py.
const tol = 1e-4

func setup(t *testing.T, name string) (*nnsight.Model, *golden.Fixture, []int, []int, experiments.Metric) {
	t.Helper()
	fx := golden.OpenFile(t, name, "experiments")
	m := nnsight.LanguageModel(fx.Dir, nnsight.WithBackend("go"))
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	return m, fx, fx.Ints(t, "c"), fx.Ints(t, "k"), experiments.LogitDiff(fx.Int(t, "A"), fx.Int(t, "B"))
}

func check(t *testing.T, fx *golden.Fixture, key string, r *experiments.Map, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	fx.Compare(t, key, r.Data, r.Shape(), tol)
}

func TestPatchingSweepsMatchReference(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx, c, k, metric := setup(t, name)
			r, err := experiments.PatchResidual(m, c, k, metric)
			check(t, fx, "patch/resid_pre", r, err)
			// Several chunks of rows (the last one partly filled) give the same values.
			r, err = experiments.PatchResidual(m, c, k, metric, experiments.RowsPerBatch(5))
			check(t, fx, "patch/resid_pre", r, err)
			r, err = experiments.PatchResidual(m, c, k, metric, experiments.AllPositions())
			check(t, fx, "patch/resid_pre", r, err)
			r, err = experiments.Patch(m, experiments.AttnOut, c, k, metric)
			check(t, fx, "patch/attn_out", r, err)
			r, err = experiments.Patch(m, experiments.MLPOut, c, k, metric)
			check(t, fx, "patch/mlp_out", r, err)
			r, err = experiments.PatchHeads(m, c, k, metric)
			check(t, fx, "patch/heads", r, err)
			// The baselines: the last layer's last position restores the clean metric.
			n, err := r.Normalized()
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Data) != len(r.Data) {
				t.Fatal("normalized map has another size")
			}
			post, err := experiments.Patch(m, experiments.ResidPost, c, k, metric)
			if err != nil {
				t.Fatal(err)
			}
			if got := float64(post.At(-1, -1)); math.Abs(got-post.Clean) > 1e-4*math.Max(1, math.Abs(post.Clean)) {
				t.Errorf("patching the last block's output at the last position gives %g, the clean run %g", got, post.Clean)
			}
		})
	}
}

func TestAttributionPatchingMatchesReference(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx, c, k, metric := setup(t, name)
			r, err := experiments.AttributionPatch(m, experiments.ResidPre, c, k, metric)
			check(t, fx, "attribution/resid_pre", r, err)
			r, err = experiments.AttributionPatchHeads(m, c, k, metric)
			check(t, fx, "attribution/heads", r, err)
		})
	}
}

func TestAblateHeadsMatchesReference(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx, c, _, metric := setup(t, name)
			r, err := experiments.AblateHeads(m, c, metric, experiments.Zero)
			check(t, fx, "ablate/zero", r, err)
			r, err = experiments.AblateHeads(m, c, metric, experiments.Mean)
			check(t, fx, "ablate/mean", r, err)
		})
	}
}

func TestDirectLogitAttribution(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx, c, _, _ := setup(t, name)
			a, err := experiments.DirectLogitAttribution(m, c, fx.Int(t, "A"), fx.Int(t, "B"))
			if err != nil {
				t.Fatal(err)
			}
			check(t, fx, "dla/heads", a.Heads, nil)
			want, _ := fx.Tensor(t, "dla/components")
			fx.CompareSlice(t, "dla/components", a.Components.Data, want, tol)
			// The parts add up to the model's own logit difference.
			sum := a.Bias
			for _, v := range a.Components.Data {
				sum += float64(v)
			}
			if math.Abs(sum-a.Total) > 1e-4*math.Max(1, math.Abs(a.Total)) {
				t.Errorf("components + bias = %g, the logit difference is %g", sum, a.Total)
			}
			H := m.Config().NHead
			for l := range m.Config().NLayer {
				heads := a.AttnBias[l]
				for h := range H {
					heads += float64(a.Heads.At(l, h))
				}
				if attn := float64(a.Components.At(0, 2+2*l)); math.Abs(heads-attn) > 1e-4 {
					t.Errorf("layer %d: heads + bias = %g, attn component %g", l, heads, attn)
				}
			}
		})
	}
}

func TestLogitLens(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx, c, _, _ := setup(t, name)
			lens, err := experiments.LogitLens(m, c)
			if err != nil {
				t.Fatal(err)
			}
			fx.Compare(t, "lens", lens.LogProbs, []int{len(lens.Layers), len(c), lens.Vocab}, tol)
			p, err := lens.Prob(fx.Int(t, "A"))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Data) != len(lens.Layers)*len(c) || p.At(0, 0) <= 0 || p.At(0, 0) >= 1 {
				t.Errorf("Prob map: shape %v, first value %g", p.Shape(), p.At(0, 0))
			}
			if _, err := lens.Prob(lens.Vocab); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
				t.Errorf("a token past the vocabulary: %v", err)
			}
			// The lens as a tensor: the last row is the model's own log-probabilities.
			lt := lens.Tensor()
			if got := lt.Shape(); len(got) != 3 || got[0] != len(lens.Layers) || lt.Axis("vocab") != 2 {
				t.Errorf("lens tensor shape %v axes %v", got, lt.Axes())
			}
			if pt := p.Tensor(); pt.Axis("pos") != 1 || pt.At(0, 0).Item() != p.At(0, 0) {
				t.Errorf("map tensor axes %v", pt.Axes())
			}
			if !strings.Contains(lens.String(), "embed") {
				t.Errorf("the lens table has no embed row:\n%s", lens.String())
			}
		})
	}
}

func TestBadInputsAreClearErrors(t *testing.T) {
	m, _, c, k, metric := setup(t, "tiny-a")
	if _, err := experiments.PatchResidual(m, c, k[:4], metric); err == nil || !strings.Contains(err.Error(), "one length") {
		t.Errorf("prompts of different lengths: %v", err)
	}
	if _, err := experiments.PatchResidual(m, c, k, nil); err == nil || !strings.Contains(err.Error(), "no metric") {
		t.Errorf("no metric: %v", err)
	}
	if _, err := experiments.PatchResidual(m, c, 3.5, metric); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("a prompt of a wrong type: %v", err)
	}
	if _, err := experiments.PatchResidual(m, "text", k, metric); err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Errorf("text for a model without a tokenizer: %v", err)
	}
	if _, err := experiments.DirectLogitAttribution(m, c, 100000, -1); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("a token past the vocabulary: %v", err)
	}
	whole := func(logits *ops.Node) *ops.Node { return logits } // not one number per row
	if _, err := experiments.PatchResidual(m, c, k, whole); err == nil || !strings.Contains(err.Error(), "one number per row") {
		t.Errorf("a metric of the wrong shape: %v", err)
	}
	// A metric that reads another position than the last needs AllPositions; without it, it
	// meets [batch, vocab] and fails instead of reading the last position.
	first := func(logits *ops.Node) *ops.Node {
		return ops.Reshape(ops.Slice(logits, ops.AxisRange(), ops.AxisElem(0), ops.AxisElem(5)), -1)
	}
	if _, err := experiments.PatchResidual(m, c, k, first); err == nil || !strings.Contains(err.Error(), "AllPositions()") {
		t.Errorf("a metric of position 0 on the last position's logits: %v", err)
	}
	if _, err := experiments.PatchResidual(m, c, k, first, experiments.AllPositions()); err != nil {
		t.Errorf("a metric of position 0 with AllPositions: %v", err)
	}
	r, err := experiments.PatchResidual(m, c, c, metric)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Normalized(); err == nil || !strings.Contains(err.Error(), "same metric") {
		t.Errorf("normalizing equal runs: %v", err)
	}
}
