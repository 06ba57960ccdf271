package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// raw builds a file from a literal header (unpadded) and data bytes.
func raw(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func writeTemp(t testing.TB, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openT(t *testing.T, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestDTypeSize(t *testing.T) {
	want := map[DType]int{"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 0, "": 0}
	for d, n := range want {
		if got := d.Size(); got != n {
			t.Errorf("%q.Size() = %d, want %d", d, got, n)
		}
	}
	if n := (TensorInfo{}).NumElements(); n != 1 {
		t.Errorf("scalar NumElements = %d", n)
	}
	if n := (TensorInfo{Shape: []int{2, 0, 3}}).NumElements(); n != 0 {
		t.Errorf("empty NumElements = %d", n)
	}
}

func f16bits(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

func TestRoundTrip(t *testing.T) {
	var f64 []byte
	for _, v := range []float64{1.5, -2.25, 1e300} {
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(v))
	}
	var bf16 []byte
	for _, v := range []float32{1, -3.5, 0.15625} {
		bf16 = binary.LittleEndian.AppendUint16(bf16, uint16(math.Float32bits(v)>>16))
	}
	var i32 []byte
	for _, v := range []int32{-7, 1 << 30} {
		i32 = binary.LittleEndian.AppendUint32(i32, uint32(v))
	}
	tensors := []Tensor{
		F32("w", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		F32("scalar", nil, []float32{42}),
		F32("scalar_empty_shape", []int{}, []float32{-1}),
		F32("empty", []int{0, 5}, nil),
		I64("ids", []int{3}, []int64{-1, 0, math.MaxInt64}),
		{Name: "h", DType: DTypeF16, Shape: []int{3}, Data: bytes.Join([][]byte{f16bits(0x3c00), f16bits(0xc000), f16bits(0x0001)}, nil)},
		{Name: "bf", DType: DTypeBF16, Shape: []int{3, 1}, Data: bf16},
		{Name: "d", DType: DTypeF64, Shape: []int{1, 3}, Data: f64},
		{Name: "i32", DType: DTypeI32, Shape: []int{2}, Data: i32},
		{Name: "i16", DType: DTypeI16, Shape: []int{1}, Data: []byte{0xff, 0x7f}},
		{Name: "i8", DType: DTypeI8, Shape: []int{3}, Data: []byte{1, 0x80, 3}},
		{Name: "u8", DType: DTypeU8, Shape: []int{1, 1, 1}, Data: []byte{200}},
		{Name: "mask", DType: DTypeBool, Shape: []int{2}, Data: []byte{1, 0}},
		{Name: "ünïcode \"quoted\"", DType: DTypeU8, Shape: []int{1}, Data: []byte{9}},
	}
	md := map[string]string{"format": "pt", "empty": "", "json": `{"nested": [1,2]}`, "ü": "✓"}
	p := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := Write(p, tensors, md); err != nil {
		t.Fatal(err)
	}
	enc, err := Encode(tensors, md)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(p)
	if !bytes.Equal(enc, onDisk) {
		t.Fatal("Encode and Write disagree")
	}
	hlen := binary.LittleEndian.Uint64(onDisk)
	if (8+hlen)%8 != 0 {
		t.Errorf("data start %d not 8-aligned", 8+hlen)
	}
	if !bytes.HasSuffix(bytes.TrimRight(onDisk[8:8+hlen], " "), []byte("}")) {
		t.Errorf("header not space padded: %q", onDisk[8:8+hlen])
	}

	f := openT(t, p)
	if f.Path() != p {
		t.Errorf("Path = %q", f.Path())
	}
	if got := f.Metadata(); !reflect.DeepEqual(got, md) {
		t.Errorf("Metadata = %v, want %v", got, md)
	}
	var wantNames []string
	for _, tt := range tensors {
		wantNames = append(wantNames, tt.Name)
	}
	slices.Sort(wantNames)
	if got := f.Names(); !reflect.DeepEqual(got, wantNames) {
		t.Errorf("Names = %v, want %v", got, wantNames)
	}
	for _, tt := range tensors {
		info, ok := f.Info(tt.Name)
		if !ok {
			t.Fatalf("Info(%q) missing", tt.Name)
		}
		wantShape := tt.Shape
		if wantShape == nil {
			wantShape = []int{}
		}
		if info.Name != tt.Name || info.DType != tt.DType || !reflect.DeepEqual(info.Shape, wantShape) {
			t.Errorf("Info(%q) = %+v", tt.Name, info)
		}
		if int(info.End-info.Begin) != len(tt.Data) || info.NumElements()*tt.DType.Size() != len(tt.Data) {
			t.Errorf("Info(%q) offsets %d..%d for %d bytes", tt.Name, info.Begin, info.End, len(tt.Data))
		}
		if info.Begin%int64(tt.DType.Size()) != 0 {
			t.Errorf("tensor %q at %d is not naturally aligned", tt.Name, info.Begin)
		}
		b, err := f.Bytes(tt.Name)
		if err != nil || !bytes.Equal(b, tt.Data) {
			t.Errorf("Bytes(%q) = %v, %v; want %v", tt.Name, b, err, tt.Data)
		}
	}
	checkF32 := func(name string, want []float32) {
		t.Helper()
		got, err := f.Float32(name)
		if err != nil {
			t.Fatalf("Float32(%q): %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Float32(%q) = %v, want %v", name, got, want)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("Float32(%q) = %v, want %v", name, got, want)
			}
		}
	}
	checkF32("w", []float32{1, 2, 3, 4, 5, 6})
	checkF32("scalar", []float32{42})
	checkF32("scalar_empty_shape", []float32{-1})
	checkF32("empty", []float32{})
	checkF32("h", []float32{1, -2, 1.0 / (1 << 24)})
	checkF32("bf", []float32{1, -3.5, 0.15625})
	checkF32("d", []float32{1.5, -2.25, float32(math.Inf(1))})
	if _, err := f.Float32("ids"); err == nil || !strings.Contains(err.Error(), "dtype I64") {
		t.Errorf("Float32 of I64: err = %v", err)
	}
	if _, err := f.Bytes("nope"); err == nil || !strings.Contains(err.Error(), `no tensor named "nope"`) {
		t.Errorf("Bytes of missing: err = %v", err)
	}
	if _, ok := f.Info("nope"); ok {
		t.Error("Info of missing tensor reported ok")
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.Bytes("w"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Bytes after Close: err = %v", err)
	}
}

func TestNoMetadataAndNoTensors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.safetensors")
	if err := Write(p, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b[8:]) != "{}      " {
		t.Errorf("empty file header = %q", b[8:])
	}
	f := openT(t, p)
	if len(f.Names()) != 0 || len(f.Metadata()) != 0 || f.Metadata() == nil {
		t.Errorf("Names=%v Metadata=%v", f.Names(), f.Metadata())
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	if err := Write(p, []Tensor{F32("a", []int{1}, []float32{1})}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []Tensor{F32("b", []int{2}, []float32{2, 3})}, nil); err != nil {
		t.Fatal(err)
	}
	// A failing write must leave the old file and no temp files behind.
	if err := Write(p, []Tensor{{Name: "bad", DType: DTypeF32, Shape: []int{3}, Data: []byte{1}}}, nil); err == nil {
		t.Fatal("Write with inconsistent data succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory has %d entries, want 1", len(ents))
	}
	f := openT(t, p)
	if got := f.Names(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("Names = %v", got)
	}
}

func TestWriteValidation(t *testing.T) {
	cases := []struct {
		ts   []Tensor
		want string
	}{
		{[]Tensor{F32("", nil, []float32{1})}, "empty name"},
		{[]Tensor{F32("__metadata__", nil, []float32{1})}, "reserved"},
		{[]Tensor{F32("a", nil, []float32{1}), F32("a", nil, []float32{1})}, `duplicate tensor name "a"`},
		{[]Tensor{{Name: "a", DType: "F8", Data: []byte{1}}}, `unknown dtype "F8"`},
		{[]Tensor{{Name: "a", DType: DTypeU8, Shape: []int{-1}}}, "invalid shape"},
		{[]Tensor{F32("a", []int{2, 2}, []float32{1, 2, 3})}, "shape [2 2] F32 needs 16 bytes but Data has 12"},
	}
	for _, c := range cases {
		_, err := Encode(c.ts, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Encode(%v): err = %v, want %q", c.ts[0].Name, err, c.want)
		}
	}
}

// TestZeroCopy checks that Float32 of an aligned F32 tensor (and Bytes)
// points into the mapping rather than into a copy.
func TestZeroCopy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "z.safetensors")
	if err := Write(p, []Tensor{
		{Name: "odd", DType: DTypeU8, Shape: []int{3}, Data: []byte{1, 2, 3}},
		F32("x", []int{1000}, make([]float32, 1000)),
		{Name: "h", DType: DTypeF16, Shape: []int{1}, Data: []byte{0, 0x3c}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	f := openT(t, p)
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	hi := lo + uintptr(len(f.data))
	inMap := func(ptr unsafe.Pointer) bool { return uintptr(ptr) >= lo && uintptr(ptr) < hi }

	x, err := f.Float32("x")
	if err != nil {
		t.Fatal(err)
	}
	if !inMap(unsafe.Pointer(&x[0])) || !inMap(unsafe.Pointer(&x[len(x)-1])) {
		t.Errorf("Float32 of aligned F32 is a copy (%p not in [%#x, %#x))", &x[0], lo, hi)
	}
	b, _ := f.Bytes("odd")
	if !inMap(unsafe.Pointer(&b[0])) {
		t.Error("Bytes is a copy")
	}
	h, _ := f.Float32("h")
	if inMap(unsafe.Pointer(&h[0])) || h[0] != 1 {
		t.Errorf("Float32 of F16 should be a converted copy, got %v", h)
	}
}

// TestUnalignedF32 reads an F32 tensor placed at an odd offset (legal in the
// format, never produced by Write), which must be copied, not misread.
func TestUnalignedF32(t *testing.T) {
	data := []byte{0xAA}
	for _, v := range []float32{1.5, -2, 3.25} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	hdr := `{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}}`
	f := openT(t, writeTemp(t, raw(hdr, data)))
	x, err := f.Float32("x")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, []float32{1.5, -2, 3.25}) {
		t.Errorf("unaligned Float32 = %v", x)
	}
}

func TestF16Conversion(t *testing.T) {
	cases := map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0400: 1.0 / (1 << 14),
		0x0001: 1.0 / (1 << 24), 0x03ff: 1023.0 / (1 << 24), 0x3555: 0.333251953125,
		0x7c00: float32(math.Inf(1)), 0xfc00: float32(math.Inf(-1)),
	}
	for h, want := range cases {
		if got := f16ToF32(h); got != want {
			t.Errorf("f16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
	if got := f16ToF32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("f16ToF32(-0) = %v", got)
	}
	if got := f16ToF32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("f16ToF32(NaN) = %v", got)
	}
}

func TestCorruptFiles(t *testing.T) {
	f32x2 := make([]byte, 8)
	ok := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, 200<<20)
	overLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(overLen, 100)
	maxLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(maxLen, math.MaxUint64)

	cases := []struct {
		name    string
		content []byte
		want    string
	}{
		{"empty file", nil, "file is 0 bytes, shorter than the 8-byte header length prefix"},
		{"7 bytes", []byte{1, 2, 3, 4, 5, 6, 7}, "file is 7 bytes"},
		{"absurd header length", hugeLen, "header length 209715200 is absurd"},
		{"max header length", maxLen, "is absurd"},
		{"header longer than file", overLen, "header length 100 is larger than the 8 bytes that follow"},
		{"truncated header", raw(ok, f32x2)[:30], "header length 54 is larger than the 22 bytes that follow"},
		{"zero-length header", raw("", nil), "invalid JSON header: header is empty"},
		{"not JSON", raw("hello there", nil), "invalid JSON header"},
		{"JSON array", raw(`[1,2]`, nil), "header is not a JSON object"},
		{"JSON string", raw(`"x"`, nil), "header is not a JSON object"},
		{"unterminated object", raw(`{"a":{}`, nil), "invalid JSON header"},
		{"trailing garbage", raw(`{} x`, nil), "invalid JSON header"},
		{"two objects", raw(`{}{}`, nil), "after the header object"},
		{"duplicate tensor", raw(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[],"data_offsets":[1,2]}}`, []byte{1, 2}), `duplicate key "a"`},
		{"entry not object", raw(`{"a":5}`, nil), `tensor "a": invalid header entry`},
		{"missing dtype", raw(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, f32x2), `tensor "a": missing "dtype"`},
		{"missing shape", raw(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, f32x2), `tensor "a": missing "shape"`},
		{"missing offsets", raw(`{"a":{"dtype":"F32","shape":[2]}}`, f32x2), `tensor "a": missing "data_offsets"`},
		{"unknown dtype", raw(`{"a":{"dtype":"F8_E5M2","shape":[2],"data_offsets":[0,2]}}`, f32x2), `tensor "a": unknown dtype "F8_E5M2"`},
		{"negative dim", raw(`{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}}`, f32x2), `tensor "a": negative dimension -1 at index 1 of shape [2 -1]`},
		{"fractional dim", raw(`{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, f32x2), `tensor "a": invalid header entry`},
		{"shape overflow", raw(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, f32x2), `tensor "a": shape [4294967296 4294967296] F32 is too large`},
		{"one offset", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, f32x2), `tensor "a": data_offsets must be [begin, end], got 1 values`},
		{"three offsets", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}`, f32x2), "got 3 values"},
		{"begin > end", raw(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32x2), `tensor "a": data_offsets [8, 0] must satisfy 0 <= begin <= end`},
		{"negative begin", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, f32x2), "must satisfy 0 <= begin <= end"},
		{"truncated data", raw(ok, f32x2[:5]), `header says tensor "a" ends at byte 8 but the file has only 5 data bytes (truncated?)`},
		{"size mismatch", raw(`{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}}`, f32x2), `tensor "a": shape [2 3] F32 needs 24 bytes but offsets span 8`},
		{"overlap", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), `tensors "a" [0, 8) and "b" [4, 8) overlap`},
		{"same range", raw(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, f32x2), `tensors "a" [0, 8) and "b" [0, 8) overlap`},
		{"metadata not strings", raw(`{"__metadata__":{"k":1}}`, nil), "__metadata__ must be an object of string values"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, c.content)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatalf("Open succeeded, want error containing %q", c.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if !strings.Contains(msg, p) {
				t.Errorf("error %q does not name the file", msg)
			}
		})
	}

	// Accepted edge cases: empty tensors sharing an offset with a real one,
	// gaps and trailing bytes, unknown extra entry fields.
	lenient := raw(`{"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":true},"b":{"dtype":"U8","shape":[],"data_offsets":[6,7]}}`, f32x2)
	f := openT(t, writeTemp(t, lenient))
	if got := f.Names(); !reflect.DeepEqual(got, []string{"a", "b", "e"}) {
		t.Errorf("Names = %v", got)
	}

	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Open of missing file: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open of a directory: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

type expectedFixture struct {
	Metadata map[string]string `json:"metadata"`
	Tensors  map[string]struct {
		DType       DType    `json:"dtype"`
		Shape       []int    `json:"shape"`
		Ints        []int64  `json:"ints"`
		Float32Bits []uint32 `json:"float32_bits"`
	} `json:"tensors"`
}

// TestPythonFixture reads a file written by testdata/make_fixture.py
// (standard-library Python following the format spec).
func TestPythonFixture(t *testing.T) {
	var exp expectedFixture
	js, err := os.ReadFile("testdata/python_expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &exp); err != nil {
		t.Fatal(err)
	}
	f := openT(t, "testdata/python.safetensors")
	if got := f.Metadata(); !reflect.DeepEqual(got, exp.Metadata) {
		t.Errorf("Metadata = %v, want %v", got, exp.Metadata)
	}
	if len(f.Names()) != len(exp.Tensors) {
		t.Errorf("Names = %v, want %d tensors", f.Names(), len(exp.Tensors))
	}
	for name, e := range exp.Tensors {
		info, ok := f.Info(name)
		if !ok {
			t.Errorf("missing tensor %q", name)
			continue
		}
		if info.DType != e.DType || !reflect.DeepEqual(info.Shape, e.Shape) {
			t.Errorf("%s: got %s %v, want %s %v", name, info.DType, info.Shape, e.DType, e.Shape)
		}
		if e.DType == DTypeI64 {
			b, err := f.Bytes(name)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]int64, len(b)/8)
			for i := range got {
				got[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
			}
			if !reflect.DeepEqual(got, e.Ints) {
				t.Errorf("%s = %v, want %v", name, got, e.Ints)
			}
			continue
		}
		got, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		gotBits := make([]uint32, len(got))
		for i, v := range got {
			gotBits[i] = math.Float32bits(v)
		}
		if len(e.Float32Bits) == 0 {
			e.Float32Bits = []uint32{}
		}
		if !reflect.DeepEqual(gotBits, e.Float32Bits) {
			t.Errorf("%s = %v (bits %x), want bits %x", name, got, gotBits, e.Float32Bits)
		}
	}

	// Re-encoding the same tensors in Go yields the same layout as the
	// Python writer (size-descending, then name), byte for byte in the data.
	var ts []Tensor
	for _, n := range f.Names() {
		info, _ := f.Info(n)
		b, _ := f.Bytes(n)
		ts = append(ts, Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: b})
	}
	enc, err := Encode(ts, f.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile("testdata/python.safetensors")
	oh := 8 + binary.LittleEndian.Uint64(orig)
	eh := 8 + binary.LittleEndian.Uint64(enc)
	if !bytes.Equal(orig[oh:], enc[eh:]) {
		t.Error("Go data layout differs from the Python fixture")
	}
}
