package remote

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

// encoder appends a program's ops to a byte slice: unsigned and signed varints, floats as
// their bits, strings and slices with their length first, values by id (0 is nil).
type encoder struct {
	buf []byte
	err error
}

func (e *encoder) uint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }
func (e *encoder) int(x int64)   { e.buf = binary.AppendVarint(e.buf, x) }
func (e *encoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}
func (e *encoder) float(x float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(x))
}
func (e *encoder) string(s string) { e.uint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bytes(b []byte)  { e.uint(uint64(len(b))); e.buf = append(e.buf, b...) }

func (e *encoder) shape(s shapes.Shape) {
	if s.IsTuple() && e.err == nil {
		e.err = fmt.Errorf("remote programs take no tuple shapes (%s)", s)
	}
	e.uint(uint64(s.DType))
	e.uint(uint64(len(s.Dimensions)))
	for _, d := range s.Dimensions {
		e.int(int64(d))
	}
}

func (e *encoder) value(v compute.Value) {
	if v == nil {
		e.uint(0)
		return
	}
	rv, ok := v.(*recValue)
	if !ok {
		if e.err == nil {
			e.err = fmt.Errorf("a value of type %T that this recorder did not make was given to an op", v)
		}
		e.uint(0)
		return
	}
	e.uint(uint64(rv.id) + 1)
}

func (e *encoder) function(f compute.Function) {
	rf, ok := f.(*recFunction)
	if !ok || f == nil {
		if e.err == nil {
			e.err = fmt.Errorf("a function of type %T that this recorder did not make was given to an op", f)
		}
		e.uint(0)
		return
	}
	e.uint(uint64(rf.id))
}

// decoder reads what encoder wrote. It never panics and never allocates more than the
// input could describe: the first error sticks, and every later read returns zero.
type decoder struct {
	buf []byte
	pos int
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("program byte %d: %s", d.pos, fmt.Sprintf(format, a...))
	}
}

func (d *decoder) done() bool { return d.err != nil || d.pos >= len(d.buf) }

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		d.fail("truncated or overlong unsigned number")
		return 0
	}
	d.pos += n
	return x
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.buf[d.pos:])
	if n <= 0 {
		d.fail("truncated or overlong number")
		return 0
	}
	d.pos += n
	if x > math.MaxInt32*64 || x < -math.MaxInt32*64 {
		d.fail("number %d out of range", x)
		return 0
	}
	return x
}

// length reads a count of items that each take at least one byte.
func (d *decoder) length() int {
	n := d.uint()
	if n > uint64(len(d.buf)-d.pos) {
		d.fail("length %d is longer than the rest of the program", n)
		return 0
	}
	return int(n)
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if d.pos >= len(d.buf) {
		d.fail("truncated")
		return false
	}
	b := d.buf[d.pos]
	d.pos++
	if b > 1 {
		d.fail("bad boolean %d", b)
	}
	return b == 1
}

func (d *decoder) float() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf)-d.pos < 8 {
		d.fail("truncated float")
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.pos:]))
	d.pos += 8
	return x
}

func (d *decoder) bytes() []byte {
	n := d.length()
	if d.err != nil {
		return nil
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }

// maxRank bounds the rank of any shape a program names.
const maxRank = 16

func (d *decoder) shape() shapes.Shape {
	dt := dtypes.DType(d.uint())
	n := d.length()
	if n > maxRank {
		d.fail("rank %d is more than %d", n, maxRank)
		return shapes.Shape{}
	}
	dims := make([]int, n)
	for i := range dims {
		dims[i] = int(d.int())
		if dims[i] < 0 {
			d.fail("negative dimension %d", dims[i])
		}
	}
	if d.err == nil && (dt == dtypes.InvalidDType || dt.Size() == 0 && dt != dtypes.Bool) {
		d.fail("bad dtype %d", dt)
	}
	return shapes.Make(dt, dims...)
}
