package gpt2

import "strings"

// What each axis of GPT-2's values is, for Scan and for users slicing them (module.AxesNamer).
var (
	// axesEmbd: hidden states, block/attn/mlp/ln outputs, query/key/value and attn_output.
	// In query, key, value and attn_output, embd holds the heads side by side.
	axesEmbd = []string{"batch", "pos", "embd"}
	// axesAttention: attn_weights.
	axesAttention = []string{"batch", "head", "query_pos", "key_pos"}
	// axesHeads: TransformerLens's per-head views hook_q, hook_k, hook_v, hook_z.
	axesHeads = []string{"batch", "pos", "head", "d_head"}
	// axesResult: TransformerLens's hook_result, each head's output in the residual stream.
	axesResult = []string{"batch", "pos", "head", "embd"}
	// axesVocab: lm_head's logits.
	axesVocab = []string{"batch", "pos", "vocab"}
	// axesQKV: c_attn's output, query|key|value side by side on the last axis.
	axesQKV = []string{"batch", "pos", "qkv"}
	// axesInner: the MLP's c_fc and activation outputs (n_inner wide).
	axesInner = []string{"batch", "pos", "inner"}
)

// OutputAxes names the axes of the output of the module at path (nil for paths it does not
// know, such as an edit's wrapper).
func (m *LMHeadModel) OutputAxes(path string) []string {
	switch path {
	case "", "lm_head":
		return axesVocab
	case "transformer", "transformer.wte", "transformer.wpe", "transformer.drop", "transformer.h", "transformer.ln_f":
		return axesEmbd
	}
	rest, ok := strings.CutPrefix(path, "transformer.h.")
	if !ok {
		return nil
	}
	layer, sub, _ := strings.Cut(rest, ".")
	if !isIndex(layer) {
		return nil
	}
	switch sub {
	case "", "ln_1", "attn", "attn.c_proj", "attn.resid_dropout", "ln_2", "mlp", "mlp.c_proj", "mlp.dropout":
		return axesEmbd
	case "attn.c_attn":
		return axesQKV
	case "attn.attn_dropout":
		return axesAttention
	case "mlp.c_fc", "mlp.act":
		return axesInner
	}
	return nil
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
