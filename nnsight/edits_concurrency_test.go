package nnsight_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/internal/toy"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

func must(r *nnsight.Result, err error) *nnsight.Result {
	if err != nil {
		panic(err)
	}
	return r
}

// Concurrent LoadEdits calls each add their edit: none is lost.
func TestConcurrentLoadEditsKeepsEveryEdit(t *testing.T) {
	m := tinyRandom(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.LoadEdits(edit.New("transformer.h.0.attn", "query", fmt.Sprintf("w%d", i), edit.Identity()))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(m.Edits()); got != n {
		t.Fatalf("%d concurrent LoadEdits left %d edits loaded: %v", n, got, m.Edits())
	}
}

// Trace, LoadEdits, ClearEdits and Edits from several goroutines (run with -race): every
// trace sees either no edit or the whole one, never a torn state.
func TestConcurrentTraceAndEdits(t *testing.T) {
	m := tinyRandom(t)
	ids := []int{1, 2, 3}
	base, err := m.Trace(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := logitsOf(t, base)
	var wg sync.WaitGroup
	fail := make(chan error, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				switch (w + i) % 4 {
				case 0:
					// An identity edit: the logits stay as they are.
					if err := m.LoadEdits(edit.New("transformer.h.1.attn", "value", fmt.Sprintf("id%d_%d", w, i), edit.Identity())); err != nil {
						fail <- err
					}
				case 1:
					if err := m.ClearEdits(); err != nil {
						fail <- err
					}
				case 2:
					_ = m.Edits()
					_ = m.Paths()
				default:
					res, err := m.Trace(ids, nil)
					if err != nil {
						fail <- err
						continue
					}
					if got, _ := logitsOf(t, res); nnsight.MaxAbsDiff(got, want) > 1e-6 {
						fail <- fmt.Errorf("logits changed under identity edits by %g", nnsight.MaxAbsDiff(got, want))
					}
				}
			}
		}()
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Error(err)
	}
}

// A later cell re-creates the edits an earlier cell loaded whose wrappers are data
// (Scale(f), Identity()) from the session store alone: no declaration in the later cell is
// consulted, so another declaration of the same place changes nothing.
func TestSessionRecreatesDataEdits(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(nnsight.EnvSessionDir, dir)
	ids := []int{4, 2, 7}
	plain, _ := logitsOf(t, must(tinyRandom(t).Trace(ids, nil)))
	cell1 := tinyRandom(t)
	if err := cell1.LoadEdits(edit.New("transformer.h.1.attn", "value", "w", edit.Scale(2))); err != nil {
		t.Fatal(err)
	}
	want, _ := logitsOf(t, must(cell1.Trace(ids, nil)))
	if d := nnsight.MaxAbsDiff(want, plain); !(d > 1e-4) {
		t.Fatalf("the edit changes nothing (%g), so this test could not fail", d)
	}
	// The same wrapper declared with another module in this process: not swapped in.
	_ = edit.New("transformer.h.1.attn", "value", "w", edit.Scale(1000))

	cell2 := tinyRandom(t)
	got, _ := logitsOf(t, must(cell2.Trace(ids, nil)))
	if d := nnsight.MaxAbsDiff(got, want); !(d <= 1e-6) {
		t.Fatalf("the next cell did not re-create the loaded edit: logits differ by %g (edits %v)", d, cell2.Edits())
	}
	if es := cell2.Edits(); len(es) != 1 || !strings.Contains(es[0].Spec().Module, "scale=2") {
		t.Fatalf("restored edits %v", es)
	}

	// A store whose wrapper this version cannot re-create waits to be loaded again.
	files, _ := filepath.Glob(filepath.Join(dir, "edits", "*.json"))
	if len(files) != 1 {
		t.Fatalf("edits store %v", files)
	}
	data, _ := os.ReadFile(files[0])
	changed := strings.ReplaceAll(string(data), "scale=2", "scale=two")
	if changed == string(data) {
		t.Fatalf("the store does not record the wrapper's parameters:\n%s", data)
	}
	os.WriteFile(files[0], []byte(changed), 0o600)
	cell3 := tinyRandomLazy()
	_, err := cell3.Trace(ids, nil)
	if err == nil {
		t.Fatal("an edit the cell cannot re-create was silently dropped")
	}
	for _, w := range []string{"scale=two", "LoadEdits", "ClearEdits"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if err := cell3.ClearEdits(); err != nil {
		t.Fatal(err)
	}
	got, _ = logitsOf(t, must(cell3.Trace(ids, nil)))
	if d := nnsight.MaxAbsDiff(got, plain); !(d <= 1e-6) {
		t.Fatalf("after ClearEdits the logits differ from the plain model's by %g", d)
	}
}

// An edit whose wrapper is Go code cannot be re-created from the store: a later cell's traces
// fail naming it until the cell loads it again (then they match the earlier cell), and loading
// another wrapper at its place says what differs.
func TestSessionCodeEditsMustBeLoadedAgain(t *testing.T) {
	t.Setenv(nnsight.EnvSessionDir, t.TempDir())
	ids := []int{4, 2, 7}
	double := func() *edit.Edit {
		return edit.New("transformer.h.0.mlp", "act", "steer", module.Fn1("double", func(x *module.Node) *module.Node { return ops.MulScalar(x, 2) }))
	}
	cell1 := tinyRandom(t)
	if err := cell1.LoadEdits(double()); err != nil {
		t.Fatal(err)
	}
	want, _ := logitsOf(t, must(cell1.Trace(ids, nil)))

	cell2 := tinyRandom(t)
	_, err := cell2.Trace(ids, nil)
	if err == nil {
		t.Fatal("a trace ran without the code edit an earlier cell loaded")
	}
	for _, w := range []string{"steer", "double", "LoadEdits", "ClearEdits"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if err := cell2.LoadEdits(double()); err != nil {
		t.Fatal(err)
	}
	got, _ := logitsOf(t, must(cell2.Trace(ids, nil)))
	if d := nnsight.MaxAbsDiff(got, want); !(d <= 1e-6) {
		t.Fatalf("after loading it again the logits differ by %g", d)
	}
	if n := len(cell2.Edits()); n != 1 {
		t.Fatalf("loading it again made %d edits", n)
	}

	cell3 := tinyRandom(t)
	err = cell3.LoadEdits(edit.New("transformer.h.0.mlp", "act", "steer", module.Fn1("triple", func(x *module.Node) *module.Node { return ops.MulScalar(x, 3) })))
	if err == nil || !strings.Contains(err.Error(), "triple") || !strings.Contains(err.Error(), "double") {
		t.Fatalf("loading another wrapper at a waiting edit's place: %v", err)
	}
}

// A user-defined model remembers its last input (to build graphs with): traces and edit
// loads from several goroutines are safe (run with -race).
func TestConcurrentTraceOnUserModel(t *testing.T) {
	x := [][]float32{{1, 2, 3}, {4, 5, 6}}
	m := nnsight.New(toy.ValueModel{}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	var wg sync.WaitGroup
	fail := make(chan error, 100)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				var err error
				switch (w + i) % 3 {
				case 0:
					_, err = m.Trace(x, nil)
				case 1:
					err = m.LoadEdits(edit.New("", "value", fmt.Sprintf("v%d_%d", w, i), edit.Identity()))
				default:
					err = m.ClearEdits()
				}
				if err != nil {
					fail <- err
				}
			}
		}()
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Error(err)
	}
}
