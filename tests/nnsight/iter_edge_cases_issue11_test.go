package nnsight_test

// Ports of ndif-team/nnsight tests/test_iter_edge_cases.py that need Iter, invokes in
// Generate and Streamer. Where nnsight's behaviour is an artefact of running the trace
// function in a thread beside the model (missed-provider warnings, trailing code, .next()
// outside an iter loop), the port asserts gonnsight's defined behaviour instead and says so.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/nnsight"
)

// tests/test_iter_edge_cases.py::TestIterPastLength::test_bounded_slice_past_length_warns_and_locals_lost
// nnsight warns and loses the trace's locals; gonnsight rejects a range past the end.
func TestIterEdge_IterPastLength_BoundedSlicePastLengthWarnsAndLocalsLost(t *testing.T) {
	m := lm(t)
	_, err := m.Generate(msgPrompt, 2, func(tr *nnsight.Tracer) {
		tr.Iter(5, 7, func(tr *nnsight.Tracer) { saveNextToken(tr, "captured") })
	})
	if !errors.Is(err, nnsight.ErrOutOfRange) {
		t.Fatalf("Iter(5, 7) with 2 new tokens: want ErrOutOfRange, got %v", err)
	}
	if !strings.Contains(err.Error(), "0 to 1") {
		t.Errorf("the error should name the steps that exist (0 to 1): %v", err)
	}
}

// tests/test_iter_edge_cases.py::TestIterPastLength::test_iter_past_length_no_module_access_runs_body
// nnsight runs a body without module access once with step 5; gonnsight rejects the range
// whatever the body does (a step that never happens is an error, not a silent run).
func TestIterEdge_IterPastLength_IterPastLengthNoModuleAccessRunsBody(t *testing.T) {
	m := lm(t)
	ran := false
	_, err := m.Generate(msgPrompt, 2, func(tr *nnsight.Tracer) {
		tr.Iter(5, 6, func(tr *nnsight.Tracer) { ran = true })
	})
	if !errors.Is(err, nnsight.ErrOutOfRange) || ran {
		t.Errorf("Iter(5, 6) with 2 new tokens: want ErrOutOfRange and no run of the body, got %v (ran %v)", err, ran)
	}
}

// tests/test_iter_edge_cases.py::TestIterUnboundedTrailing::test_trailing_pure_python_after_iter_runs
func TestIterEdge_IterUnboundedTrailing_TrailingPurePythonAfterIterRuns(t *testing.T) {
	m := lm(t)
	ran := false
	gen, err := m.Generate(msgPrompt, 2, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { saveNextToken(tr, "logits") })
		ran = true
	})
	must(t, err)
	if n := len(gen.Saved.List("logits")); n != 2 || !ran {
		t.Errorf("%d values (want 2), trailing code ran: %v", n, ran)
	}
}

// tests/test_iter_edge_cases.py::TestIterUnboundedTrailing::test_trailing_module_access_after_iter_raises
// nnsight raises OutOfOrderError (its model has finished); in gonnsight the trace function
// registers each step before that step runs, so module access after Iter is at every step.
func TestIterEdge_IterUnboundedTrailing_TrailingModuleAccessAfterIterRaises(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(msgPrompt, 2, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { saveNextToken(tr, "logits") })
		tr.Logits().Save("after")
	})
	must(t, err)
	if n := len(gen.Saved.List("after")); n != 2 {
		t.Errorf("the access after Iter saved %d values, want one per step (2)", n)
	}
}

// tests/test_iter_edge_cases.py::TestIterBoundedSlice::test_bounded_slice_runs_twice
func TestIterEdge_IterBoundedSlice_BoundedSliceRunsTwice(t *testing.T) {
	m := lm(t)
	var seen []int
	_, err := m.Generate(msgPrompt, 5, func(tr *nnsight.Tracer) {
		tr.Iter(1, 3, func(tr *nnsight.Tracer) {
			seen = append(seen, tr.Step())
			saveNextToken(tr, "tok")
		})
	})
	must(t, err)
	if fmt.Sprint(seen) != "[1 2]" {
		t.Errorf("the body ran at steps %v, want [1 2]", seen)
	}
}

// tests/test_iter_edge_cases.py::TestIterBoundedSlice::test_bounded_slice_full_range
func TestIterEdge_IterBoundedSlice_BoundedSliceFullRange(t *testing.T) {
	m := lm(t)
	var seen []int
	_, err := m.Generate(msgPrompt, 4, func(tr *nnsight.Tracer) {
		tr.Iter(0, 4, func(tr *nnsight.Tracer) { seen = append(seen, tr.Step()) })
	}, nnsight.IgnoreEOS())
	must(t, err)
	if fmt.Sprint(seen) != "[0 1 2 3]" {
		t.Errorf("the body ran at steps %v, want [0 1 2 3]", seen)
	}
}

// tests/test_iter_edge_cases.py::TestIterCrossInvoke::test_two_invokes_independent_iter
// The peer checks the two prompts' first tokens differ (true for GPT-2); for any weights:
// each invoke's tokens are its prompt's alone.
func TestIterEdge_IterCrossInvoke_TwoInvokesIndependentIter(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(nil, 3, func(tr *nnsight.Tracer) {
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(0, nnsight.AllSteps, func(iv *nnsight.Tracer) { saveNextToken(iv, "logits_a") })
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(0, nnsight.AllSteps, func(iv *nnsight.Tracer) { saveNextToken(iv, "logits_b") })
		})
	})
	must(t, err)
	a, b := stepTokens(t, gen.Saved, "logits_a"), stepTokens(t, gen.Saved, "logits_b")
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("%d and %d steps, want 3 each", len(a), len(b))
	}
	if want := greedy(t, m, etPrompt, 3); fmt.Sprint(a) != fmt.Sprint(want) {
		t.Errorf("invoke 0: %v, the prompt alone %v", a, want)
	}
	if want := greedy(t, m, msgPrompt, 3); fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("invoke 1: %v, the prompt alone %v", b, want)
	}
}

// tests/test_iter_edge_cases.py::TestIterCrossInvoke::test_two_invokes_different_iter_ranges
func TestIterEdge_IterCrossInvoke_TwoInvokesDifferentIterRanges(t *testing.T) {
	m := lm(t)
	var seenA, seenB []int
	_, err := m.Generate(nil, 4, func(tr *nnsight.Tracer) {
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(0, 2, func(iv *nnsight.Tracer) { seenA = append(seenA, iv.Step()) })
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(2, 4, func(iv *nnsight.Tracer) { seenB = append(seenB, iv.Step()) })
		})
	}, nnsight.IgnoreEOS())
	must(t, err)
	if fmt.Sprint(seenA) != "[0 1]" || fmt.Sprint(seenB) != "[2 3]" {
		t.Errorf("steps seen: %v and %v, want [0 1] and [2 3]", seenA, seenB)
	}
}

// nextStep reads the last block's output at step 0 and at step 1: nnsight's .next().
func nextStep(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, 1, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-1]").Output().Save("hs0") })
		tr.Iter(1, 2, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-1]").Output().Save("hs1") })
	})
	must(t, err)
	_, s0 := data(t, gen.Saved.Get("hs0"))
	_, s1 := data(t, gen.Saved.Get("hs1"))
	if s1[1] != 1 || s0[1] <= 1 {
		t.Errorf("step 0 has shape %v (the prompt), step 1 %v (one new token with the KV cache)", s0, s1)
	}
}

// tests/test_iter_edge_cases.py::TestNext::test_module_next_outside_iter_loop_is_broken
// The peer documents that .next() outside an iter loop misses step 1. gonnsight has no
// .next(): the step is named (Iter(1, 2)) and works.
func TestIterEdge_Next_ModuleNextOutsideIterLoopIsBroken(t *testing.T) { nextStep(t) }

// tests/test_iter_edge_cases.py::TestNext::test_tracer_next_outside_iter_loop_is_broken
func TestIterEdge_Next_TracerNextOutsideIterLoopIsBroken(t *testing.T) { nextStep(t) }

// tests/test_iter_edge_cases.py::TestNext::test_tracer_next_inside_iter_works
func TestIterEdge_Next_TracerNextInsideIterWorks(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-1]").Output().Save("hs") })
	})
	must(t, err)
	if n := len(gen.Saved.List("hs")); n != 3 {
		t.Errorf("%d values, want 3", n)
	}
}

// tests/test_iter_edge_cases.py::TestSourceMidIterLimitation::test_source_built_pre_iter_works
func TestIterEdge_SourceMidIterLimitation_SourceBuiltPreIterWorks(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello", 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { tr.Module("transformer.h[0].attn.query").Output().Save("outs") })
	}, nnsight.IgnoreEOS())
	must(t, err)
	if n := len(gen.Saved.List("outs")); n != 3 {
		t.Errorf("%d values, want 3", n)
	}
}

// tests/test_iter_edge_cases.py::TestSourceMidIterLimitation::test_source_built_mid_iter_misses_first
// nnsight may miss the first step (2 or 3 values); gonnsight's labelled values exist at
// every step, so all 3 are there.
func TestIterEdge_SourceMidIterLimitation_SourceBuiltMidIterMissesFirst(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello", 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { tr.Module("transformer.h[11].attn.query").Output().Save("outs") })
	}, nnsight.IgnoreEOS())
	must(t, err)
	if n := len(gen.Saved.List("outs")); n != 3 {
		t.Errorf("%d values, want 3", n)
	}
}

// tests/test_iter_edge_cases.py::TestStreamerIntegration::test_huggingface_text_iterator_streamer
// The streamed tokens are the generated ones, and decode to non-empty text.
func TestIterEdge_StreamerIntegration_HuggingfaceTextIteratorStreamer(t *testing.T) {
	m := lm(t)
	var strm []int
	gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { saveNextToken(tr, "saved") })
	}, nnsight.Streamer(func(step int, toks []int) { strm = append(strm, toks[0]) }), nnsight.IgnoreEOS())
	must(t, err)
	if n := len(gen.Saved.List("saved")); n != 3 {
		t.Errorf("%d values, want 3", n)
	}
	if fmt.Sprint(strm) != fmt.Sprint(gen.NewTokens[0]) {
		t.Errorf("streamed %v, generated %v", strm, gen.NewTokens[0])
	}
	if text, err := m.Tokenizer().Decode(strm); err != nil || text == "" {
		t.Errorf("streamed text %q (%v)", text, err)
	}
}
