package nnsight

import "github.com/gonnsight/gonnsight/module"

// AllSteps, as Iter's hi, means every step to the end of the generation.
const AllSteps = -1

// Iter registers body's interventions only at the generation steps lo <= step < hi
// (nnsight's tracer.iter[lo:hi]; hi = AllSteps for every step from lo on). A plain trace is
// step 0 of 1. Steps the generation cannot reach are an error, not a silent no-op; a
// generation that ends early at the end-of-text token simply runs fewer steps (Generation.Steps).
func (t *Tracer) Iter(lo, hi int, body func(t *Tracer)) {
	n := t.tr.maxSteps
	if n <= 0 {
		n = 1
	}
	end := hi
	if hi == AllSteps {
		end = n
	}
	switch {
	case lo < 0:
		t.errorf("Iter(%d, %d): steps start at 0", lo, hi)
		return
	case lo >= n || end > n:
		t.tr.errs = append(t.tr.errs, module.NewError(ErrOutOfRange,
			"Iter(%d, %d): this run has steps 0 to %d only (%d new tokens; a trace is step 0)", lo, hi, n-1, n))
		return
	case end <= lo:
		t.errorf("Iter(%d, %d): empty range (hi must be greater than lo, or AllSteps)", lo, hi)
		return
	}
	if t.tr.step >= lo && t.tr.step < end && body != nil {
		body(t)
	}
}

// All registers body's interventions at every step (nnsight's tracer.all()).
func (t *Tracer) All(body func(t *Tracer)) { t.Iter(0, AllSteps, body) }
