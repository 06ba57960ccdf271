package edit_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
)

// Declaring edits from several goroutines is safe (run with -race).
func TestConcurrentNew(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				e := edit.New("transformer.h.0.attn", "query", fmt.Sprintf("w%d_%d", i, j), edit.Scale(float64(j)))
				e.OnCall(j % 3)
			}
		}()
	}
	wg.Wait()
}

func TestSpecNamesTheModule(t *testing.T) {
	a := edit.New("transformer.h[0].attn", "query", "w", edit.Scale(2)).Spec()
	b := edit.New("transformer.h.0.attn", "query", "w", edit.Scale(1000)).Spec()
	if a.Parent != "transformer.h.0.attn" || a.Kind != "EditModule" || a.Module != "EditModule(scale=2)" {
		t.Errorf("spec %+v", a)
	}
	if a == b {
		t.Errorf("edits with different modules have the same spec %+v", a)
	}
}
