package tensor

import (
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// Reductions take axes (negative count from the end) and drop them; with no axes they reduce
// every axis to a scalar. Sums accumulate in float64.

// Sum adds over the given axes (none: all).
func (t *Tensor) Sum(axes ...int) *Tensor { return t.reduce("Sum", axes, sumAxis) }

// Mean averages over the given axes (none: all).
func (t *Tensor) Mean(axes ...int) *Tensor {
	s := t.reduce("Mean", axes, sumAxis)
	n := 1
	if len(s.data) > 0 {
		n = len(t.data) / len(s.data)
	}
	return s.Div(n)
}

// Max is the largest value over the given axes (none: all). NaN counts as -Inf.
func (t *Tensor) Max(axes ...int) *Tensor {
	return t.reduce("Max", axes, func(t *Tensor, a int) *Tensor { return extremeAxis(t, a, 1, false) })
}

// Min is the smallest value over the given axes (none: all). NaN counts as +Inf.
func (t *Tensor) Min(axes ...int) *Tensor {
	return t.reduce("Min", axes, func(t *Tensor, a int) *Tensor { return extremeAxis(t, a, -1, false) })
}

// Norm is the Euclidean (L2) norm over the given axes (none: all).
func (t *Tensor) Norm(axes ...int) *Tensor {
	if t.Rank() == 0 {
		return t.Abs()
	}
	// squares summed in float64 over the first axis reduced, plain sums over the rest
	first := true
	return t.reduce("Norm", axes, func(t *Tensor, a int) *Tensor {
		sq := first
		first = false
		return sumAxisOf(t, a, sq)
	}).Sqrt()
}

// ArgMax is the index of the largest value along axis (the first one on ties; NaN never
// wins), an integer tensor: logits.ArgMax(-1).Ints() is the greedy next token per position.
func (t *Tensor) ArgMax(axis int) *Tensor {
	return extremeAxis(t, t.axis("ArgMax", axis), 1, true)
}

// ArgMin is the index of the smallest value along axis (the first one on ties).
func (t *Tensor) ArgMin(axis int) *Tensor {
	return extremeAxis(t, t.axis("ArgMin", axis), -1, true)
}

func (t *Tensor) reduce(op string, axes []int, f func(*Tensor, int) *Tensor) *Tensor {
	var norm []int
	if len(axes) == 0 {
		for a := range t.shape {
			norm = append(norm, a)
		}
	}
	for _, a := range axes {
		a = t.axis(op, a)
		if slices.Contains(norm, a) {
			fail(op, "axis %d is given twice in %v", a, axes)
		}
		norm = append(norm, a)
	}
	slices.Sort(norm)
	u := t
	if len(norm) == 0 { // a scalar
		u = &Tensor{shape: []int{}, data: t.data}
	}
	for i := len(norm) - 1; i >= 0; i-- {
		u = f(u, norm[i])
	}
	u.isInt = false
	if op == "Sum" || op == "Max" || op == "Min" {
		u.isInt = t.isInt
	}
	return u
}

func sumAxis(t *Tensor, a int) *Tensor { return sumAxisOf(t, a, false) }

// sumAxisOf sums along a (the squares when square).
func sumAxisOf(t *Tensor, a int, square bool) *Tensor {
	outer, n, inner := t.split(a)
	shape, names := t.dropAxis(a)
	out := make([]float32, outer*inner)
	if inner == 1 { // rows are contiguous
		rows(outer, n, func(o int) {
			var acc float64
			for _, v := range t.data[o*n : (o+1)*n] {
				if square {
					acc += float64(v) * float64(v)
				} else {
					acc += float64(v)
				}
			}
			out[o] = float32(acc)
		})
		return &Tensor{shape: shape, axes: names, data: out}
	}
	acc := make([]float64, inner)
	for o := 0; o < outer; o++ {
		clear(acc)
		blk := t.data[o*n*inner : (o+1)*n*inner]
		for k := 0; k < n; k++ {
			for j, v := range blk[k*inner : (k+1)*inner] {
				if square {
					acc[j] += float64(v) * float64(v)
				} else {
					acc[j] += float64(v)
				}
			}
		}
		for j, v := range acc {
			out[o*inner+j] = float32(v)
		}
	}
	return &Tensor{shape: shape, axes: names, data: out}
}

// extremeAxis is the max (sign 1) or min (sign -1) along a, or its index when arg.
func extremeAxis(t *Tensor, a int, sign float32, arg bool) *Tensor {
	outer, n, inner := t.split(a)
	if n == 0 {
		fail(map[bool]string{false: "Max/Min", true: "ArgMax/ArgMin"}[arg], "axis %d%s of shape %s is empty", a, t.axisName(a), t.describe())
	}
	shape, names := t.dropAxis(a)
	out := make([]float32, outer*inner)
	if inner == 1 { // rows are contiguous
		rows(outer, n, func(o int) {
			b, at := float32(math.NaN()), 0
			for k, v := range t.data[o*n : (o+1)*n] {
				if sign*v > sign*b || b != b && v == v {
					b, at = v, k
				}
			}
			if arg {
				out[o] = float32(at)
			} else {
				out[o] = b
			}
		})
		return &Tensor{shape: shape, axes: names, data: out, isInt: arg || t.isInt}
	}
	best := make([]float32, inner)
	where := make([]int, inner)
	for o := 0; o < outer; o++ {
		blk := t.data[o*n*inner : (o+1)*n*inner]
		for j := range best {
			best[j], where[j] = float32(math.Inf(-1)), 0
		}
		found := make([]bool, inner)
		for k := 0; k < n; k++ {
			for j, v := range blk[k*inner : (k+1)*inner] {
				s := sign * v
				if s > best[j] || !found[j] && !math.IsNaN(float64(v)) {
					best[j], where[j], found[j] = s, k, true
				}
			}
		}
		for j := range best {
			if arg {
				out[o*inner+j] = float32(where[j])
			} else if found[j] {
				out[o*inner+j] = sign * best[j]
			} else {
				out[o*inner+j] = float32(math.NaN()) // every value was NaN
			}
		}
	}
	return &Tensor{shape: shape, axes: names, data: out, isInt: arg || t.isInt}
}

// Softmax is exp(t) / sum(exp(t)) along axis (computed stably, in float64 sums): over the
// last axis of logits, the next-token probabilities.
func (t *Tensor) Softmax(axis int) *Tensor { return t.softmax("Softmax", axis, false) }

// LogSoftmax is t - log(sum(exp(t))) along axis: log-probabilities.
func (t *Tensor) LogSoftmax(axis int) *Tensor { return t.softmax("LogSoftmax", axis, true) }

func (t *Tensor) softmax(op string, axis int, logs bool) *Tensor {
	a := t.axis(op, axis)
	outer, n, inner := t.split(a)
	out := make([]float32, len(t.data))
	if inner == 1 { // rows are contiguous: the common case (the last axis)
		rows(outer, n, func(r int) { softmaxRow(t.data[r*n:(r+1)*n], out[r*n:(r+1)*n], logs) })
		return &Tensor{shape: slices.Clone(t.shape), axes: slices.Clone(t.axes), data: out}
	}
	rows(outer*inner, n, func(r int) {
		base := (r/inner)*n*inner + r%inner
		src := t.data[base:]
		dst := out[base:]
		m := float32(math.Inf(-1))
		for k := 0; k < n; k++ {
			m = max(m, src[k*inner])
		}
		var sum float64
		for k := 0; k < n; k++ {
			e := exp(float64(src[k*inner] - m))
			sum += e
			if !logs {
				dst[k*inner] = float32(e)
			}
		}
		if logs {
			shift := m + float32(math.Log(sum))
			for k := 0; k < n; k++ {
				dst[k*inner] = src[k*inner] - shift
			}
			return
		}
		inv := float32(1 / sum)
		for k := 0; k < n; k++ {
			dst[k*inner] *= inv
		}
	})
	return &Tensor{shape: slices.Clone(t.shape), axes: slices.Clone(t.axes), data: out}
}

// softmaxRow writes the softmax (or log-softmax) of src to dst.
func softmaxRow(src, dst []float32, logs bool) {
	dst = dst[:len(src)]
	m := float32(math.Inf(-1))
	for _, v := range src {
		if v > m {
			m = v
		}
	}
	var sum float64
	if logs {
		for _, v := range src {
			sum += exp(float64(v - m))
		}
		shift := m + float32(math.Log(sum))
		for i, v := range src {
			dst[i] = v - shift
		}
		return
	}
	for i, v := range src {
		e := exp(float64(v - m))
		sum += e
		dst[i] = float32(e)
	}
	inv := float32(1 / sum)
	for i := range dst {
		dst[i] *= inv
	}
}

// parallelMin is the work (values) below which rows runs on one goroutine.
const parallelMin = 1 << 16

// rows calls fn for rows 0..count-1 (each of n values), on several goroutines when the work
// is large.
func rows(count, n int, fn func(r int)) {
	workers := min(runtime.GOMAXPROCS(0), count)
	if count*n < parallelMin || workers < 2 {
		for r := 0; r < count; r++ {
			fn(r)
		}
		return
	}
	var wg sync.WaitGroup
	per := (count + workers - 1) / workers
	for lo := 0; lo < count; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for r := lo; r < hi; r++ {
				fn(r)
			}
		}(lo, min(lo+per, count))
	}
	wg.Wait()
}

// TopK is the k largest values along the last axis, largest first (ties: lower index first;
// NaN counts as -Inf), and their indices (an integer tensor): both shaped [..., k].
//
//	probs, ids := logits.At(0, -1).Softmax(-1).TopK(5)
func (t *Tensor) TopK(k int) (values, indices *Tensor) {
	if t.Rank() == 0 {
		fail("TopK", "a scalar has no axis to take the top %d of", k)
	}
	n := t.shape[t.Rank()-1]
	if k < 0 || k > n {
		fail("TopK", "k = %d but the last axis%s of shape %s has %d values", k, t.axisName(t.Rank()-1), t.describe(), n)
	}
	count := len(t.data) / max(n, 1)
	if n == 0 {
		count = size(t.shape[:t.Rank()-1])
	}
	vals := make([]float32, count*k)
	ids := make([]float32, count*k)
	rows(count, n, func(r int) {
		topRow(t.data[r*n:(r+1)*n], vals[r*k:(r+1)*k], ids[r*k:(r+1)*k])
	})
	shape := slices.Clone(t.shape)
	shape[len(shape)-1] = k
	values = &Tensor{shape: shape, axes: slices.Clone(t.axes), data: vals, isInt: t.isInt}
	indices = &Tensor{shape: slices.Clone(shape), axes: slices.Clone(t.axes), data: ids, isInt: true}
	return values, indices
}

func key(v float32) float32 {
	if v != v {
		return float32(math.Inf(-1))
	}
	return v
}

// topRow fills vals and ids with row's len(vals) largest values, largest first.
func topRow(row, vals, ids []float32) {
	k := len(vals)
	if k == 0 {
		return
	}
	if k > 64 { // many: sort the indices
		idx := make([]int, len(row))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return key(row[idx[a]]) > key(row[idx[b]]) })
		for i := range vals {
			vals[i], ids[i] = row[idx[i]], float32(idx[i])
		}
		return
	}
	// few: keep the best k seen so far, sorted, in keys/at (an insertion into a short list)
	keys := make([]float32, 0, k)
	at := make([]int, 0, k)
	for i, v := range row {
		kv := key(v)
		if len(keys) == k && !(kv > keys[k-1]) {
			continue
		}
		pos := len(keys)
		for pos > 0 && kv > keys[pos-1] {
			pos--
		}
		if len(keys) < k {
			keys, at = append(keys, 0), append(at, 0)
		}
		copy(keys[pos+1:], keys[pos:len(keys)-1])
		copy(at[pos+1:], at[pos:len(at)-1])
		keys[pos], at[pos] = kv, i
	}
	for i := range vals {
		vals[i], ids[i] = row[at[i]], float32(at[i])
	}
}
