package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"unsafe"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

// File is an opened safetensors file. Its tensor data is memory-mapped
// read-only: slices returned by Bytes and (for aligned F32 tensors) Float32
// point into the mapping, must not be written to, and become invalid after
// Close. Read methods may be called concurrently; Close must not run
// concurrently with them.
type File struct {
	path      string
	data      []byte // the whole file (mapped, or read into memory where mmap is unavailable)
	dataStart int64  // absolute offset of the data section (8 + header length)
	unmap     func([]byte) error
	infos     map[string]TensorInfo
	names     []string
	metadata  map[string]string

	closeOnce sync.Once
	closeErr  error
	closed    bool
}

// headerEntry is one tensor entry of the JSON header. Pointers distinguish
// missing fields from zero values.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// Open memory-maps the safetensors file at path and validates its header:
// every tensor must have a known dtype, a non-negative shape, offsets that
// lie inside the data section and match the shape, and no two tensors may
// overlap. Any problem is reported as an error naming the file.
func Open(path string) (*File, error) {
	fd, st, err := fsx.OpenRegular(path) // a FIFO would block a plain open
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close()
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, shorter than the 8-byte header length prefix", path, size)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("safetensors: %s: file of %d bytes is too large to map on this platform", path, size)
	}
	// Check the header length before mapping anything.
	var prefix [8]byte
	if _, err := io.ReadFull(fd, prefix[:]); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading header length: %w", path, err)
	}
	if _, err := checkHeaderLen(path, binary.LittleEndian.Uint64(prefix[:]), size); err != nil {
		return nil, err
	}

	data, unmap, err := mapFile(fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: mmap: %w", path, err)
	}
	f, err := parse(path, data)
	if err != nil {
		unmap(data)
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

func checkHeaderLen(path string, n uint64, fileSize int64) (int64, error) {
	if n > maxHeaderSize {
		return 0, fmt.Errorf("safetensors: %s: header length %d is absurd (limit %d bytes); not a safetensors file?", path, n, maxHeaderSize)
	}
	if int64(n) > fileSize-8 {
		return 0, fmt.Errorf("safetensors: %s: header length %d is larger than the %d bytes that follow the length prefix (truncated or not a safetensors file?)", path, n, fileSize-8)
	}
	return int64(n), nil
}

// parse validates the header of the complete file contents data and builds
// the File (without an unmap function).
func parse(path string, data []byte) (*File, error) {
	size := int64(len(data))
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, shorter than the 8-byte header length prefix", path, size)
	}
	n, err := checkHeaderLen(path, binary.LittleEndian.Uint64(data[:8]), size)
	if err != nil {
		return nil, err
	}
	f := &File{
		path:      path,
		data:      data,
		dataStart: 8 + n,
		infos:     map[string]TensorInfo{},
		metadata:  map[string]string{},
	}
	dataSize := size - f.dataStart
	errf := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: "+format, append([]any{path}, args...)...)
	}

	raw, err := splitHeader(data[8:f.dataStart])
	if err != nil {
		return nil, errf("invalid JSON header: %v", err)
	}
	for _, kv := range raw {
		name, val := kv.key, kv.val
		if name == metadataKey {
			var md map[string]string
			if err := json.Unmarshal(val, &md); err != nil {
				return nil, errf("%s must be an object of string values: %v", metadataKey, err)
			}
			for k, v := range md {
				f.metadata[k] = v
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(val, &e); err != nil {
			return nil, errf("tensor %q: invalid header entry: %v", name, err)
		}
		if e.DType == nil {
			return nil, errf("tensor %q: missing \"dtype\"", name)
		}
		if e.Shape == nil {
			return nil, errf("tensor %q: missing \"shape\"", name)
		}
		if e.DataOffsets == nil {
			return nil, errf("tensor %q: missing \"data_offsets\"", name)
		}
		dt := DType(*e.DType)
		esize := int64(dt.Size())
		if esize == 0 {
			return nil, errf("tensor %q: unknown dtype %q", name, *e.DType)
		}
		shape := *e.Shape
		for i, d := range shape {
			if d < 0 {
				return nil, errf("tensor %q: negative dimension %d at index %d of shape %s", name, d, i, shapeString(shape))
			}
			if d > math.MaxInt {
				return nil, errf("tensor %q: dimension %d of shape %s too large for this platform", name, d, shapeString(shape))
			}
		}
		offs := *e.DataOffsets
		if len(offs) != 2 {
			return nil, errf("tensor %q: data_offsets must be [begin, end], got %d values", name, len(offs))
		}
		begin, end := offs[0], offs[1]
		if begin < 0 || begin > end {
			return nil, errf("tensor %q: data_offsets [%d, %d] must satisfy 0 <= begin <= end", name, begin, end)
		}
		if end > dataSize {
			return nil, errf("header says tensor %q ends at byte %d but the file has only %d data bytes (truncated?)", name, end, dataSize)
		}
		numel, ok := numElements(shape, esize)
		if !ok {
			return nil, errf("tensor %q: shape %s %s is too large (byte size overflows)", name, shapeString(shape), dt)
		}
		if need := numel * esize; need != end-begin {
			return nil, errf("tensor %q: shape %s %s needs %d bytes but offsets span %d", name, shapeString(shape), dt, need, end-begin)
		}
		ishape := make([]int, len(shape))
		for i, d := range shape {
			ishape[i] = int(d)
		}
		f.infos[name] = TensorInfo{Name: name, DType: dt, Shape: ishape, Begin: begin, End: end}
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)

	// Overlap check over non-empty tensors, ordered by position.
	byPos := make([]TensorInfo, 0, len(f.infos))
	for _, t := range f.infos {
		if t.End > t.Begin {
			byPos = append(byPos, t)
		}
	}
	slices.SortFunc(byPos, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			if a.Begin < b.Begin {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		} else if a.Name > b.Name {
			return 1
		}
		return 0
	})
	for i := 1; i < len(byPos); i++ {
		p, c := byPos[i-1], byPos[i]
		if c.Begin < p.End {
			return nil, errf("tensors %q [%d, %d) and %q [%d, %d) overlap", p.Name, p.Begin, p.End, c.Name, c.Begin, c.End)
		}
	}
	return f, nil
}

type rawEntry struct {
	key string
	val json.RawMessage
}

// splitHeader parses the header as one JSON object, returning its members in
// order. Duplicate keys and trailing non-whitespace are errors.
func splitHeader(hdr []byte) ([]rawEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("header is empty")
		}
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("header is not a JSON object (starts with %v)", tok)
	}
	var out []rawEntry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("expected an object key, got %v", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		out = append(out, rawEntry{key, val})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("after the header object: %w", err)
		}
		return nil, fmt.Errorf("unexpected %v after the header object", tok)
	}
	return out, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	t, ok := f.infos[name]
	if ok {
		t.Shape = slices.Clone(t.Shape)
		if t.Shape == nil {
			t.Shape = []int{}
		}
	}
	return t, ok
}

// Metadata returns a copy of the header's __metadata__ map (empty if absent).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		m[k] = v
	}
	return m
}

func (f *File) lookup(name string) (TensorInfo, []byte, error) {
	if f.closed {
		return TensorInfo{}, nil, fmt.Errorf("safetensors: %s: file is closed", f.path)
	}
	t, ok := f.infos[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("safetensors: %s: no tensor named %q", f.path, name)
	}
	lo, hi := f.dataStart+t.Begin, f.dataStart+t.End
	return t, f.data[lo:hi:hi], nil
}

// Bytes returns the raw little-endian data of the named tensor as a view into
// the mapping (no copy). The slice is read-only and valid until Close.
func (f *File) Bytes(name string) ([]byte, error) {
	_, b, err := f.lookup(name)
	return b, err
}

// Float32 returns the named tensor's elements as float32. An F32 tensor whose
// data is 4-byte aligned (always the case for files written by Write or by
// the Hugging Face library) is returned as a zero-copy, read-only view valid
// until Close. F16, BF16, F64 and unaligned F32 tensors are converted into a
// new slice. Integer and bool dtypes are an error.
func (f *File) Float32(name string) ([]float32, error) {
	t, b, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	n := int(t.End-t.Begin) / t.DType.Size()
	if n == 0 {
		return []float32{}, nil
	}
	switch t.DType {
	case DTypeF32:
		if hostLittleEndian && uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(float32(0)) == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case DTypeF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = f16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case DTypeBF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return out, nil
	case DTypeF64:
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s, which Float32 does not convert (use Bytes)", f.path, name, t.DType)
}

// Close unmaps the file. Slices obtained from Bytes or zero-copy Float32
// must not be used afterwards. Close is idempotent.
func (f *File) Close() error {
	f.closeOnce.Do(func() {
		f.closed = true
		if f.unmap != nil && f.data != nil {
			f.closeErr = f.unmap(f.data)
		}
		f.data = nil
	})
	return f.closeErr
}

// f16ToF32 converts IEEE 754 half-precision bits to float32 exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0x1f: // Inf or NaN (payload kept, quiet bit stays the top mantissa bit)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zero or subnormal: mant * 2^-24, exact in float32
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
