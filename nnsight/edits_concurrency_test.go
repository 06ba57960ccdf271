package nnsight_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/internal/toy"
)

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

// A later cell restores the edit an earlier cell loaded, matched on its module too: another
// declaration with the same parent, node and wrapper name but another module is not swapped
// in, and a loaded edit whose declaration changed is an error that says what differs.
func TestSessionRestoresTheMatchingDeclaration(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(nnsight.EnvSessionDir, dir)
	ids := []int{4, 2, 7}
	cell1 := tinyRandom(t)
	if err := cell1.LoadEdits(edit.New("transformer.h.1.attn", "value", "w", edit.Scale(2))); err != nil {
		t.Fatal(err)
	}
	res, err := cell1.Trace(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := logitsOf(t, res)
	// The same wrapper declared with another module (a later declaration in this process).
	edit.New("transformer.h.1.attn", "value", "w", edit.Scale(1000))

	cell2 := tinyRandom(t)
	res, err = cell2.Trace(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := logitsOf(t, res)
	if d := nnsight.MaxAbsDiff(got, want); !(d <= 1e-6) {
		t.Fatalf("the next cell restored another edit than the one loaded: logits differ by %g (edits %v)", d, cell2.Edits())
	}

	// The store says scale=3, which no declaration has.
	files, _ := filepath.Glob(filepath.Join(dir, "edits", "*.json"))
	if len(files) != 1 {
		t.Fatalf("edits store %v", files)
	}
	data, _ := os.ReadFile(files[0])
	changed := strings.ReplaceAll(string(data), "scale=2", "scale=3")
	if changed == string(data) {
		t.Fatalf("the store does not record the wrapper's parameters:\n%s", data)
	}
	os.WriteFile(files[0], []byte(changed), 0o644)
	cell3 := tinyRandomLazy()
	_, err = cell3.Trace(ids, nil)
	if err == nil {
		t.Fatal("a loaded edit whose module no declaration has was restored")
	}
	for _, w := range []string{"scale=3", "scale=2", "scale=1000", "ClearEdits"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if err := cell3.ClearEdits(); err != nil {
		t.Fatal(err)
	}
	if _, err := cell3.Trace(ids, nil); err != nil {
		t.Fatalf("after ClearEdits: %v", err)
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
