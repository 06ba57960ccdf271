package safetensors

import (
	"encoding/binary"
	"os"
	"testing"
)

// FuzzOpen writes arbitrary bytes to a file and opens it: Open must return
// an error or a File whose every tensor can be read, and never panic.
func FuzzOpen(f *testing.F) {
	valid, err := Encode([]Tensor{
		F32("w", []int{2, 2}, []float32{1, 2, 3, 4}),
		I64("n", nil, []int64{5}),
		{Name: "h", DType: DTypeF16, Shape: []int{1}, Data: []byte{0, 0x3c}},
		{Name: "b", DType: DTypeBF16, Shape: []int{1}, Data: []byte{0x80, 0x3f}},
		{Name: "d", DType: DTypeF64, Shape: []int{0}, Data: nil},
	}, map[string]string{"k": "v"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, '{', '}'})
	f.Add(raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}`, make([]byte, 5)))
	f.Add(raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}`, make([]byte, 8)))
	// Prefer a tmpfs: on a disk file system the create/unlink churn of
	// thousands of files a second makes the workers stall on I/O.
	dir := f.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "safetensors-fuzz-"); err == nil {
			dir = d
			f.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		// A fresh file each time: rewriting one file in place (O_TRUNC) makes
		// ext4 flush it to disk synchronously (auto_da_alloc).
		tmp, err := os.CreateTemp(dir, "fuzz-*.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		p := tmp.Name()
		defer os.Remove(p)
		_, werr := tmp.Write(content)
		if cerr := tmp.Close(); werr != nil || cerr != nil {
			t.Fatal(werr, cerr)
		}
		file, err := Open(p)
		if err != nil {
			return
		}
		defer file.Close()
		n := binary.LittleEndian.Uint64(content)
		dataSize := int64(len(content)) - 8 - int64(n)
		for _, name := range file.Names() {
			info, ok := file.Info(name)
			if !ok {
				t.Fatalf("Names lists %q but Info does not know it", name)
			}
			if info.Begin < 0 || info.End < info.Begin || info.End > dataSize {
				t.Fatalf("%q: bad offsets %d..%d (data %d)", name, info.Begin, info.End, dataSize)
			}
			b, err := file.Bytes(name)
			if err != nil || int64(len(b)) != info.End-info.Begin || len(b) != info.NumElements()*info.DType.Size() {
				t.Fatalf("%q: Bytes len %d err %v for %+v", name, len(b), err, info)
			}
			if v, err := file.Float32(name); err == nil {
				if len(v) != info.NumElements() {
					t.Fatalf("%q: Float32 len %d, want %d", name, len(v), info.NumElements())
				}
				for range v { // touch every element
				}
				if len(v) > 0 {
					_ = v[len(v)-1]
				}
			}
		}
		_ = file.Metadata()
	})
}
