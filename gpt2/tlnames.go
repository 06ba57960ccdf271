package gpt2

import (
	"fmt"

	"github.com/gonnsight/gonnsight/module"
)

// TransformerLens's hook names, with TransformerLens's layouts and the values of its
// unprocessed HookedTransformer (no LayerNorm folding, no weight centring). Most are other
// names of points the model has anyway; the rest are labels in the forward: hook_q, hook_k,
// hook_v, hook_z ([batch, pos, head, d_head], the step between the head split's reshape and
// transpose), hook_attn_scores (masked entries -inf, as TransformerLens's IGNORE),
// hook_result ([batch, pos, head, d_model], computed only when read) and hook_resid_mid. Setting one changes the computation downstream, as in TransformerLens.
var tlNames = []module.AltName{
	{At: "", Name: "hook_embed", Target: "transformer.wte"},
	{At: "", Name: "hook_pos_embed", Target: "transformer.wpe"},
	{At: "", Name: "blocks", Target: "transformer.h"},
	{At: "", Name: "ln_final", Target: "transformer.ln_f"},
	{At: "transformer.h.*", Name: "hook_resid_pre", Target: "input"},
	{At: "transformer.h.*", Name: "hook_resid_post", Target: ""},
	{At: "transformer.h.*", Name: "hook_attn_out", Target: "attn"},
	{At: "transformer.h.*", Name: "hook_mlp_out", Target: "mlp"},
	{At: "transformer.h.*", Name: "ln1", Target: "ln_1"},
	{At: "transformer.h.*", Name: "ln2", Target: "ln_2"},
	// TransformerLens's LayerNorm hooks its output, after the affine weight and bias
	// (x - mean) / scale * w + b; only the folded LayerNormPre hooks the value before them.
	{At: "transformer.h.*.ln_1", Name: "hook_normalized", Target: ""},
	{At: "transformer.h.*.ln_2", Name: "hook_normalized", Target: ""},
	{At: "transformer.ln_f", Name: "hook_normalized", Target: ""},
	{At: "transformer.h.*.attn", Name: "hook_pattern", Target: "attn_weights"},
	{At: "transformer.h.*.mlp", Name: "hook_pre", Target: "c_fc"},
	{At: "transformer.h.*.mlp", Name: "hook_post", Target: "act"},
}

// AltNames are TransformerLens's hook names (module.AltNamer).
func (m *LMHeadModel) AltNames() []module.AltName { return tlNames }

// AltPaths lists every TransformerLens hook name of the model, in forward order.
func (m *LMHeadModel) AltPaths() []string {
	out := []string{"hook_embed", "hook_pos_embed"}
	for l := 0; l < m.Config.NLayer; l++ {
		b := fmt.Sprintf("blocks.%d.", l)
		for _, h := range []string{"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
			"attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "attn.hook_result", "hook_attn_out", "hook_resid_mid",
			"ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post"} {
			out = append(out, b+h)
		}
	}
	return append(out, "ln_final.hook_normalized")
}
