package nnsight_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/nnsight"
)

// tests/test_0516_features.py::TestKeywordOnlyTraceArgs::test_attention_mask_keyword
// An all-ones mask is no mask: the same values as the ids alone.
func TestF0516_KeywordOnlyTraceArgs_AttentionMaskKeyword(t *testing.T) {
	m := lm(t)
	ids := [][]int{{1, 2, 3, 4, 5}}
	res, err := m.Trace(nnsight.Tokens{IDs: ids, AttentionMask: [][]bool{{true, true, true, true, true}}}, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0").Output().Save("hidden")
	})
	must(t, err)
	h, s := f32(t, res, "hidden")
	if s[1] != 5 {
		t.Errorf("hidden has shape %v, want sequence length 5", s)
	}
	plain, err := m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("transformer.h.0").Output().Save("hidden") })
	must(t, err)
	p, _ := f32(t, plain, "hidden")
	if !close(h, p, 1e-6) {
		t.Error("an all-true attention mask changed the values")
	}
}

// tests/test_0516_features.py::TestMultiInvoker::test_generate_with_invokers
func TestF0516_MultiInvoker_GenerateWithInvokers(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(nil, 3, func(tr *nnsight.Tracer) {
		tr.Invoke("Hello", func(iv *nnsight.Tracer) {
			if iv.Step() == 0 {
				iv.Module("transformer.h.0").Output().Save("hidden_1")
			}
		})
		tr.Invoke("Goodbye", func(iv *nnsight.Tracer) {
			if iv.Step() == 0 {
				iv.Module("transformer.h.0").Output().Save("hidden_2")
			}
		})
	})
	must(t, err)
	for i, n := range []string{"hidden_1", "hidden_2"} {
		_, s := data(t, gen.Saved.Get(n))
		if s[0] != 1 || s[2] != tinyConfig().NEmbd {
			t.Errorf("%s (invoke %d) has shape %v", n, i, s)
		}
	}
}

// tests/test_0516_features.py::TestExceptionHandling::test_index_error_traceback
func TestF0516_ExceptionHandling_IndexErrorTraceback(t *testing.T) {
	m := lm(t)
	_, err := m.Trace("Hello world", func(tr *nnsight.Tracer) { tr.Module("transformer.h[999]").Output().Save("output") })
	if !errors.Is(err, nnsight.ErrOutOfRange) && !errors.Is(err, nnsight.ErrUnknownPath) {
		t.Fatalf("layer 999 of 12: want ErrOutOfRange or ErrUnknownPath, got %v", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("the error should name the index: %v", err)
	}
}

// tests/test_0516_features.py::TestExceptionHandling::test_attribute_error_traceback
func TestF0516_ExceptionHandling_AttributeErrorTraceback(t *testing.T) {
	m := lm(t)
	_, err := m.Trace("Hello world", func(tr *nnsight.Tracer) { tr.Module("transformer.nonexistent").Output().Save("output") })
	if !errors.Is(err, nnsight.ErrUnknownPath) {
		t.Fatalf("want ErrUnknownPath, got %v", err)
	}
	if !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("the error should name the path: %v", err)
	}
}
