package nnsight_test

import (
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/nnsight"
)

// tests/test_envoys.py::TestStringKeys::test_string_key_with_rename_alias
// The envoy at the real path and the one through the alias are the same module.
func TestEnvoys_StringKeys_StringKeyWithRenameAlias(t *testing.T) {
	m := nnsight.New(&selfAttnNet{}, nnsight.WithBackend("go"), nnsight.Rename(map[string]string{"self_attn": "attn"}))
	res, err := m.Trace(tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5}, 1, 5), func(tr *nnsight.Tracer) {
		tr.Module("self_attn").Output().Save("real")
		tr.Module("attn").Output().Save("alias")
		tr.Module("layer1").Output().Save("layer1")
	})
	must(t, err)
	a, _ := f32(t, res, "real")
	b, _ := f32(t, res, "alias")
	if !equal(a, b) {
		t.Error("self_attn and its alias attn differ")
	}
}
