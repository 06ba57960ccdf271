package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

// Tensor is a tensor to be written: Data holds the little-endian encoding of
// its elements (len(Data) == product(Shape) * DType.Size()). A nil or empty
// Shape is a scalar.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32 builds an F32 tensor, encoding data little-endian (the data is copied).
func F32(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: DTypeF32, Shape: slices.Clone(shape), Data: b}
}

// I64 builds an I64 tensor, encoding data little-endian (the data is copied).
func I64(name string, shape []int, data []int64) Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Tensor{Name: name, DType: DTypeI64, Shape: slices.Clone(shape), Data: b}
}

// layout validates tensors and returns the padded header (including the
// 8-byte length prefix) and the order in which tensor data follows it.
//
// The header lists tensors by sorted name; the data is laid out by
// decreasing element size, then name (as the Hugging Face writer does), so
// every tensor is naturally aligned given the 8-byte-aligned data start.
func layout(tensors []Tensor, metadata map[string]string) ([]byte, []int, error) {
	seen := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		switch {
		case t.Name == "":
			return nil, nil, fmt.Errorf("safetensors: tensor %d has an empty name", i)
		case t.Name == metadataKey:
			return nil, nil, fmt.Errorf("safetensors: tensor name %q is reserved", t.Name)
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = true
		es := t.DType.Size()
		if es == 0 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		shape := make([]int64, len(t.Shape))
		for j, d := range t.Shape {
			shape[j] = int64(d)
		}
		n, ok := numElements(shape, int64(es))
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: invalid shape %v", t.Name, t.Shape)
		}
		if n*int64(es) != int64(len(t.Data)) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v %s needs %d bytes but Data has %d", t.Name, t.Shape, t.DType, n*int64(es), len(t.Data))
		}
	}

	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := tensors[a], tensors[b]
		if sa, sb := ta.DType.Size(), tb.DType.Size(); sa != sb {
			return sb - sa
		}
		if ta.Name < tb.Name {
			return -1
		}
		return 1
	})
	begins := make([]int64, len(tensors))
	var off int64
	for _, i := range order {
		begins[i] = off
		off += int64(len(tensors[i].Data))
	}

	byName := slices.Clone(order)
	slices.SortFunc(byName, func(a, b int) int {
		if tensors[a].Name < tensors[b].Name {
			return -1
		}
		return 1
	})

	var h bytes.Buffer
	h.Write(make([]byte, 8)) // length prefix, filled in below
	h.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		sep()
		writeJSONString(&h, metadataKey)
		h.WriteByte(':')
		mb, err := json.Marshal(metadata) // keys sorted by encoding/json
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: encoding metadata: %w", err)
		}
		h.Write(mb)
	}
	for _, i := range byName {
		t := tensors[i]
		sep()
		writeJSONString(&h, t.Name)
		h.WriteString(`:{"dtype":`)
		writeJSONString(&h, string(t.DType))
		h.WriteString(`,"shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		b, e := begins[i], begins[i]+int64(len(t.Data))
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, b, e)
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	hdr := h.Bytes()
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(hdr)-8))
	return hdr, order, nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // cannot fail for a string
	buf.Write(b)
}

// Encode returns the complete safetensors encoding of tensors and metadata
// (see Write for the layout).
func Encode(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	hdr, order, err := layout(tensors, metadata)
	if err != nil {
		return nil, err
	}
	size := len(hdr)
	for _, t := range tensors {
		size += len(t.Data)
	}
	out := make([]byte, 0, size)
	out = append(out, hdr...)
	for _, i := range order {
		out = append(out, tensors[i].Data...)
	}
	return out, nil
}

// Write stores tensors and metadata at path atomically: it writes a temporary
// file in the same directory, fsyncs it and renames it over path. The header
// lists tensors sorted by name and is padded with spaces so the data starts
// at an 8-byte boundary; tensor data is laid out by decreasing element size,
// then name, so every tensor is naturally aligned.
func Write(path string, tensors []Tensor, metadata map[string]string) (err error) {
	hdr, order, err := layout(tensors, metadata)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	fsx.SweepTemps(dir) // what killed writers left behind
	tmp, err := fsx.CreateTemp(path, 0o600)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(hdr); err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", tmpName, err)
	}
	for _, i := range order {
		if _, err = tmp.Write(tensors[i].Data); err != nil {
			return fmt.Errorf("safetensors: writing %s: %w", tmpName, err)
		}
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: fsync %s: %w", tmpName, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: closing %s: %w", tmpName, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	// Make the rename durable; not every platform can fsync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort
		d.Close()
	}
	return nil
}
