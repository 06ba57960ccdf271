// Package experiments runs the staple experiments of interpretability research in one call
// each, on a GPT-2 loaded by nnsight: activation patching sweeps (residual stream, attention
// and MLP outputs by layer × position, heads by layer × head), attribution patching (the
// gradient approximation of the same sweeps), head ablation (zero or mean), the logit lens
// and direct logit attribution.
//
// Each sweep is one batched trace: the corrupted prompt is repeated once per patch, every
// row patches its own (layer, position) or (layer, head) through a graph input mask, and the
// metric is computed in the graph, so a 12-layer × 9-position sweep compiles one program and
// runs one forward of 108 rows instead of 108 traces (docs/performance.md has the ratio).
// Rows are split into chunks of equal size (Options.Rows), so long prompts do not need one
// huge batch and every chunk reuses the compiled program.
//
//	m := nnsight.LanguageModel("openai-community/gpt2")
//	r, err := experiments.PatchResidual(m, clean, corrupt, experiments.LogitDiff(paris, rome))
//	r.Show()                      // heatmap: layer × position, with titles
//	r.Normalized()                // (patched − corrupt) / (clean − corrupt)
//
// Results are Maps: a [rows, cols] value with tick labels, titles and, for patching, the
// metric on the clean and corrupted runs.
package experiments

import (
	"fmt"

	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// Metric maps the logits to one number per row [batch], in the graph. The logits are those
// of the last position, [batch, vocab], unless the call has the AllPositions option
// ([batch, pos, vocab]): the unembedding of every position is most of a sweep's cost. The
// ranks differ on purpose, so a metric written for one form fails on the other instead of
// reading the wrong position.
type Metric func(logits *ops.Node) *ops.Node

// LogitDiff is logits[:, -1, correct] − logits[:, -1, wrong]: the usual patching metric.
func LogitDiff(correct, wrong int) Metric {
	return func(logits *ops.Node) *ops.Node {
		last := lastPosition(logits)
		return ops.Sub(column(last, correct), column(last, wrong))
	}
}

// LogProb is the log-probability of token at the last position.
func LogProb(token int) Metric {
	return func(logits *ops.Node) *ops.Node {
		return column(ops.LogSoftmax(lastPosition(logits), -1), token)
	}
}

// lastPosition is x[:, -1, :] as [batch, vocab]; x is [batch, pos, vocab] or already the
// last position's [batch, vocab].
func lastPosition(x *ops.Node) *ops.Node {
	d := x.Shape().Dimensions
	if len(d) == 2 {
		return x
	}
	return ops.Reshape(ops.Slice(x, ops.AxisRange(), ops.AxisElem(-1), ops.AxisRange()), d[0], d[2])
}

// column is x[:, i] of a [batch, n] value, as [batch].
func column(x *ops.Node, i int) *ops.Node {
	return ops.Reshape(ops.Slice(x, ops.AxisRange(), ops.AxisElem(i)), x.Shape().Dimensions[0])
}

// Component is a place in each block that patching and attribution act on.
type Component int

const (
	ResidPre  Component = iota // the block's input (TransformerLens hook_resid_pre)
	ResidPost                  // the block's output (hook_resid_post)
	AttnOut                    // the attention output added to the residual (hook_attn_out)
	MLPOut                     // the MLP output added to the residual (hook_mlp_out)
)

func (c Component) String() string {
	switch c {
	case ResidPre:
		return "resid_pre"
	case ResidPost:
		return "resid_post"
	case AttnOut:
		return "attn_out"
	case MLPOut:
		return "mlp_out"
	}
	return fmt.Sprintf("Component(%d)", int(c))
}

// point is the component's value at layer l in a trace.
func (c Component) point(t *nnsight.Tracer, l int) *nnsight.Proxy {
	block := fmt.Sprintf("transformer.h.%d", l)
	switch c {
	case ResidPre:
		return t.Module(block).Input()
	case ResidPost:
		return t.Module(block).Output()
	case AttnOut:
		return t.Module(block + ".attn").Output()
	case MLPOut:
		return t.Module(block + ".mlp").Output()
	}
	panic(fmt.Sprintf("experiments: unknown component %d", int(c)))
}

// headsPoint is layer l's attention output before c_proj, heads side by side on the last
// axis (TransformerLens's hook_z with the head axes merged).
func headsPoint(t *nnsight.Tracer, l int) *nnsight.Proxy {
	return t.Module(fmt.Sprintf("transformer.h.%d.attn.attn_output", l)).Output()
}

// Options tune a call; the zero value is the default.
type Options struct {
	// Rows is the number of patched runs per batched forward (default: as many as fit in
	// about 2048 tokens, at least 1).
	Rows int
	// AllPositions gives the metric the logits of every position, not only the last.
	AllPositions bool
}

// Option sets an Options field.
type Option func(*Options)

// RowsPerBatch sets how many patched runs share one forward.
func RowsPerBatch(n int) Option { return func(o *Options) { o.Rows = n } }

// AllPositions gives the metric the logits of every position ([batch, pos, vocab]).
func AllPositions() Option { return func(o *Options) { o.AllPositions = true } }

// metric registers what the metric reads in a trace and returns the function that computes
// it once the forward has run. Unless o.AllPositions, lm_head sees only the last position, so
// the unembedding runs once per row, and the metric gets [batch, vocab].
func (o Options) metric(t *nnsight.Tracer, metric Metric) func() *ops.Node {
	if !o.AllPositions {
		t.Module("lm_head").Input().Set(func(h *ops.Node) *ops.Node {
			return ops.Slice(h, ops.AxisRange(), ops.AxisElem(-1), ops.AxisRange())
		})
	}
	lg := t.Logits()
	return func() (out *ops.Node) {
		x := lg.Node()
		form := "[batch, pos, vocab]: every position"
		if !o.AllPositions {
			d := x.Shape().Dimensions
			x = ops.Reshape(x, d[0], d[2])
			form = "[batch, vocab]: the last position; AllPositions() gives [batch, pos, vocab]"
		}
		defer func() {
			if r := recover(); r != nil {
				panic(fmt.Errorf("experiments: the metric failed on logits %v (%s): %v", x.Shape().Dimensions, form, r))
			}
		}()
		return metric(x)
	}
}

func options(opts []Option) Options {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	return o
}
