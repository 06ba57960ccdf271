package module

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"weak"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// Transposes makes and keeps the weights that TransposedParam parameters stand for: the
// transpose of a 2-D weight, computed on first use and kept for as long as the weight lives
// (a weak reference), so each process pays for it once. Safe for concurrent use.
type Transposes struct {
	mu   sync.Mutex
	kept map[weak.Pointer[tensors.Tensor]]*tensors.Tensor
}

// Len is how many transposes are kept.
func (t *Transposes) Len() int { t.mu.Lock(); defer t.mu.Unlock(); return len(t.kept) }

// Feed returns the tensor of parameter name when it is a TransposedSuffix parameter of
// shape [cols, rows] and weight(base) gives the [rows, cols] float32 original; ok is false
// for any other parameter. b, when it shares host memory, holds the new tensor.
func (t *Transposes) Feed(b compute.Backend, name string, shape shapes.Shape, weight func(string) (*tensors.Tensor, bool)) (out *tensors.Tensor, ok bool, err error) {
	base, isT := strings.CutSuffix(name, TransposedSuffix)
	if !isT || shape.Rank() != 2 || shape.DType != dtypes.Float32 {
		return nil, false, nil
	}
	rows, cols := shape.Dimensions[1], shape.Dimensions[0]
	src, found := weight(base)
	if !found || !src.Shape().Equal(shapes.Make(shape.DType, rows, cols)) {
		return nil, false, nil
	}
	if d, ok := b.(weightDeriver); ok {
		// A backend that holds the weight elsewhere (a model host) derives the copy there.
		if t, ok := d.DerivedWeight(src, name, shape); ok {
			return t, true, nil
		}
	}
	key := weak.Make(src)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kept == nil {
		t.kept = map[weak.Pointer[tensors.Tensor]]*tensors.Tensor{}
	}
	if kt, ok := t.kept[key]; ok {
		return kt, true, nil
	}
	// Read the original in place and write the transpose straight into the new tensor's
	// storage (a backend buffer when the backend shares host memory): one pass, split over
	// the cores — this runs in the first trace of every process (notebook cell).
	tt := tensors.FromShape(shape)
	if b != nil && b.HasSharedBuffers() {
		if bt, err := tensors.FromShapeForBackend(b, 0, shape); err == nil {
			tt = bt
		}
	}
	var werr error
	rerr := src.ConstFlatData(func(flat any) {
		data := flat.([]float32)
		werr = tt.MutableFlatData(func(o any) { transpose(data, o.([]float32), rows, cols) })
	})
	if rerr != nil || werr != nil {
		return nil, true, fmt.Errorf("transposing %s for %s: %v", base, name, errors.Join(rerr, werr))
	}
	t.kept[key] = tt
	runtime.AddCleanup(src, func(k weak.Pointer[tensors.Tensor]) {
		t.mu.Lock()
		delete(t.kept, k)
		t.mu.Unlock()
	}, key)
	return tt, true, nil
}

// transpose writes the [cols, rows] transpose of the [rows, cols] matrix in to out, in
// cache-sized tiles, in parallel over column blocks.
func transpose(in, out []float32, rows, cols int) {
	const tile = 32
	workers := min(runtime.GOMAXPROCS(0), (cols+tile-1)/tile)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for c0 := w * tile; c0 < cols; c0 += workers * tile {
				c1 := min(c0+tile, cols)
				for r0 := 0; r0 < rows; r0 += tile {
					r1 := min(r0+tile, rows)
					for c := c0; c < c1; c++ {
						dst := out[c*rows+r0 : c*rows+r1]
						for i := range dst {
							dst[i] = in[(r0+i)*cols+c]
						}
					}
				}
			}
		})
	}
	wg.Wait()
}

// weightDeriver is a backend that can derive a weight from one it holds (the remote backend:
// the model host transposes its resident copy, so nothing travels).
type weightDeriver interface {
	DerivedWeight(base *tensors.Tensor, name string, shape shapes.Shape) (*tensors.Tensor, bool)
}
