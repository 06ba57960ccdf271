package nnsight_test

// Ports of ndif-team/nnsight tests/test_envoys.py. The peer tests nnsight's `envoys=`
// parameter: which Python Envoy subclass wraps each module. gonnsight has one Envoy type;
// what a custom Envoy adds in Python (a property, a method) is a Go function over
// Tracer.Module(path). What carries over is that every module of a user's tree, nested at any
// depth, has an envoy reachable by its path, and that a name is matched as a whole path
// component. The rest is skipped, each with its reason.

import (
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// nestedNet is the peer's _nested_net: layer1 (Linear 5->10), inner = (act ReLU, layer2
// Linear 10->2).
type nestedNet struct{}

func (nestedNet) TypeName() string { return "Sequential" }
func (nestedNet) Children() []module.Child {
	return []module.Child{{Name: "layer1", Module: module.NewLinear(5, 10)}, {Name: "inner", Module: innerNet{}}}
}
func (nestedNet) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{c.Call1("inner", c.Call1("layer1", in[0]))}
}

type innerNet struct{}

func (innerNet) TypeName() string { return "Sequential" }
func (innerNet) Children() []module.Child {
	return []module.Child{{Name: "act", Module: &module.Activation{Kind: "relu"}}, {Name: "layer2", Module: module.NewLinear(10, 2)}}
}
func (innerNet) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{c.Call1("layer2", c.Call1("act", in[0]))}
}

func nestedInput() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions([]float32{0.1, -0.2, 0.3, -0.4, 0.5}, 1, 5)
}

// tests/test_envoys.py::TestEnvoysParam::test_default_is_none
// Every descendant has an envoy: each path is traceable and gives its module's output.
func TestEnvoys_EnvoysParam_DefaultIsNone(t *testing.T) {
	m := nnsight.New(nestedNet{}, nnsight.WithBackend("go"), nnsight.WithSeed(3))
	paths := []string{"layer1", "inner", "inner.act", "inner.layer2"}
	res, err := m.Trace(nestedInput(), func(tr *nnsight.Tracer) {
		for _, p := range paths {
			tr.Module(p).Output().Save(p)
		}
	})
	must(t, err)
	act, _ := f32(t, res, "inner.act")
	l1, _ := f32(t, res, "layer1")
	for i := range l1 {
		if want := max(l1[i], 0); act[i] != want {
			t.Fatalf("inner.act[%d] = %g, relu(layer1) = %g", i, act[i], want)
		}
	}
	inner, _ := f32(t, res, "inner")
	l2, _ := f32(t, res, "inner.layer2")
	if !equal(inner, l2) {
		t.Error("inner's output is not layer2's")
	}
}

// tests/test_envoys.py::TestEnvoysParam::test_propagates_to_grandchildren
func TestEnvoys_EnvoysParam_PropagatesToGrandchildren(t *testing.T) {
	m := nnsight.New(nestedNet{}, nnsight.WithBackend("go"))
	res, err := m.Trace(nestedInput(), func(tr *nnsight.Tracer) {
		tr.Module("inner.act").Output().Save("act")
		tr.Module("inner.layer2").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
	})
	must(t, err)
	f32(t, res, "act")
	out, _ := data(t, res.Get("output.0"))
	if !allZero(out) {
		t.Error("a set on a grandchild did not reach the model's output")
	}
}

// tests/test_envoys.py::TestStringKeys::test_string_key_without_alias_does_not_match
// A name matches a whole component: "attn" does not find "self_attn".
func TestEnvoys_StringKeys_StringKeyWithoutAliasDoesNotMatch(t *testing.T) {
	m := nnsight.New(&selfAttnNet{}, nnsight.WithBackend("go"))
	_, err := m.Trace(tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5}, 1, 5), func(tr *nnsight.Tracer) {
		tr.Module("attn").Output().Save("x")
	})
	if err == nil || !strings.Contains(err.Error(), "self_attn") {
		t.Errorf("want an error for attn that names self_attn, got %v", err)
	}
}

// selfAttnNet is the peer's net with an AttentionLike "self_attn" and a Linear "layer1".
type selfAttnNet struct{}

func (*selfAttnNet) TypeName() string { return "Sequential" }
func (*selfAttnNet) Children() []module.Child {
	return []module.Child{{Name: "self_attn", Module: module.Identity{}}, {Name: "layer1", Module: module.NewLinear(5, 5)}}
}
func (*selfAttnNet) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{c.Call1("layer1", c.Call1("self_attn", in[0]))}
}

const envoySubclass = "python-specific: custom Envoy subclasses (envoys=); gonnsight has one Envoy type, extra behaviour is a Go function over Tracer.Module"

// tests/test_envoys.py::TestEnvoysParam::test_single_class_applies_to_all
func TestEnvoys_EnvoysParam_SingleClassAppliesToAll(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestEnvoysParam::test_dict_matches_and_falls_back
func TestEnvoys_EnvoysParam_DictMatchesAndFallsBack(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestEnvoysParam::test_dict_matches_subclass_via_mro
func TestEnvoys_EnvoysParam_DictMatchesSubclassViaMro(t *testing.T) {
	t.Skip(envoySubclass + " (matching walks Python's MRO)")
}

// tests/test_envoys.py::TestNNsightClassAttribute::test_base_nnsight_default_is_none
func TestEnvoys_NNsightClassAttribute_BaseNnsightDefaultIsNone(t *testing.T) {
	t.Skip(envoySubclass + " (a class attribute of NNsight)")
}

// tests/test_envoys.py::TestNNsightClassAttribute::test_subclass_class_attribute_applied
func TestEnvoys_NNsightClassAttribute_SubclassClassAttributeApplied(t *testing.T) {
	t.Skip(envoySubclass + " (NNsight subclasses)")
}

// tests/test_envoys.py::TestNNsightClassAttribute::test_subclass_dict_class_attribute_applied
func TestEnvoys_NNsightClassAttribute_SubclassDictClassAttributeApplied(t *testing.T) {
	t.Skip(envoySubclass + " (NNsight subclasses)")
}

// tests/test_envoys.py::TestNNsightClassAttribute::test_user_kwarg_overrides_class_default
func TestEnvoys_NNsightClassAttribute_UserKwargOverridesClassDefault(t *testing.T) {
	t.Skip(envoySubclass + " (NNsight subclasses)")
}

// tests/test_envoys.py::TestNNsightClassAttribute::test_user_kwarg_none_overrides_class_default
func TestEnvoys_NNsightClassAttribute_UserKwargNoneOverridesClassDefault(t *testing.T) {
	t.Skip(envoySubclass + " (NNsight subclasses)")
}

// tests/test_envoys.py::TestNNsightClassAttribute::test_subclass_method_available_on_wrapped_children
func TestEnvoys_NNsightClassAttribute_SubclassMethodAvailableOnWrappedChildren(t *testing.T) {
	t.Skip(envoySubclass)
}

// tests/test_envoys.py::TestStringKeys::test_string_key_matches_last_path_component
func TestEnvoys_StringKeys_StringKeyMatchesLastPathComponent(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestStringKeys::test_string_key_no_substring_match
func TestEnvoys_StringKeys_StringKeyNoSubstringMatch(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestStringKeys::test_multi_component_string_key
func TestEnvoys_StringKeys_MultiComponentStringKey(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestStringKeys::test_leading_dot_is_stripped
func TestEnvoys_StringKeys_LeadingDotIsStripped(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestStringKeys::test_type_keys_win_over_string_keys
func TestEnvoys_StringKeys_TypeKeysWinOverStringKeys(t *testing.T) { t.Skip(envoySubclass) }

// tests/test_envoys.py::TestStringKeys::test_no_match_falls_back_to_envoy
func TestEnvoys_StringKeys_NoMatchFallsBackToEnvoy(t *testing.T) { t.Skip(envoySubclass) }
