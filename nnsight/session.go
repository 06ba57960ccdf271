package nnsight

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/safetensors"
)

// A notebook cell is a new process (GoNB compiles and runs each cell), so what must outlive
// a cell lives in the session directory the gonnsight kernel names in GONNSIGHT_SESSION_DIR:
// the edits each model has loaded, and the values kept with Keep. Writes are atomic (temp
// file + rename), so a cell that dies mid-write loses nothing already kept. Outside a
// notebook (no session directory) the store lives in memory for the process.

// EnvSessionDir names the per-kernel session directory.
const EnvSessionDir = "GONNSIGHT_SESSION_DIR"

var (
	memMu   sync.Mutex
	memKept = map[string]*tensors.Tensor{}
)

// SessionDir is the session directory, or "" outside a gonnsight kernel.
func SessionDir() string { return os.Getenv(EnvSessionDir) }

var keepName = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

// Keep stores a tensor under name so that later cells can read it with Kept.
func Keep(name string, t *tensors.Tensor) error {
	if !keepName.MatchString(name) {
		return fmt.Errorf("Keep(%q): names may use letters, digits, '_', '.' and '-'", name)
	}
	if t == nil {
		return fmt.Errorf("Keep(%q): nil tensor", name)
	}
	dir := SessionDir()
	if dir == "" {
		memMu.Lock()
		memKept[name] = t
		memMu.Unlock()
		return nil
	}
	st, err := toSafetensor(name, t)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "kept"), 0o755); err != nil {
		return err
	}
	return safetensors.Write(filepath.Join(dir, "kept", name+".safetensors"), []safetensors.Tensor{st}, nil)
}

// Kept reads a tensor stored by Keep in this or an earlier cell.
func Kept(name string) (*tensors.Tensor, error) {
	dir := SessionDir()
	if dir == "" {
		memMu.Lock()
		defer memMu.Unlock()
		if t, ok := memKept[name]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("nothing kept under %q; kept: %s", name, strings.Join(KeptNames(), ", "))
	}
	path := filepath.Join(dir, "kept", name+".safetensors")
	f, err := safetensors.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("nothing kept under %q; kept: %s", name, strings.Join(KeptNames(), ", "))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return fromSafetensor(f, name)
}

// KeptNames lists the names stored with Keep.
func KeptNames() []string {
	dir := SessionDir()
	var names []string
	if dir == "" {
		memMu.Lock()
		for n := range memKept {
			names = append(names, n)
		}
		memMu.Unlock()
	} else {
		files, _ := filepath.Glob(filepath.Join(dir, "kept", "*.safetensors"))
		for _, f := range files {
			names = append(names, strings.TrimSuffix(filepath.Base(f), ".safetensors"))
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"(none)"}
	}
	return names
}

func toSafetensor(name string, t *tensors.Tensor) (safetensors.Tensor, error) {
	dims := t.Shape().Dimensions
	var dt safetensors.DType
	switch t.DType() {
	case dtypes.Float32:
		dt = "F32"
	case dtypes.Float64:
		dt = "F64"
	case dtypes.Int32:
		dt = "I32"
	case dtypes.Int64:
		dt = "I64"
	case dtypes.Bool:
		dt = "BOOL"
	default:
		return safetensors.Tensor{}, fmt.Errorf("Keep(%q): dtype %s is not supported", name, t.DType())
	}
	var data []byte
	t.ConstBytes(func(b []byte) { data = append([]byte(nil), b...) })
	return safetensors.Tensor{Name: "value", DType: dt, Shape: append([]int{}, dims...), Data: data}, nil
}

func fromSafetensor(f *safetensors.File, name string) (*tensors.Tensor, error) {
	info, ok := f.Info("value")
	if !ok {
		return nil, fmt.Errorf("kept value %q: %s has no tensor \"value\"", name, f.Path())
	}
	raw, err := f.Bytes("value")
	if err != nil {
		return nil, err
	}
	var dt dtypes.DType
	switch info.DType {
	case "F32":
		dt = dtypes.Float32
	case "F64":
		dt = dtypes.Float64
	case "I32":
		dt = dtypes.Int32
	case "I64":
		dt = dtypes.Int64
	case "BOOL":
		dt = dtypes.Bool
	default:
		return nil, fmt.Errorf("kept value %q has dtype %s", name, info.DType)
	}
	t := tensors.FromShape(shapeOf(dt, info.Shape))
	t.MutableBytes(func(b []byte) { copy(b, raw) })
	return t, nil
}

// edits persistence

type editRecord struct {
	Parent   string `json:"parent"`
	Target   string `json:"target"`
	Wrapper  string `json:"wrapper"`
	Instance int    `json:"instance"`
	Module   string `json:"module"`
}

func (m *Model) sessionKey() string {
	src := m.source
	if src == "" {
		src = module.TypeName(m.root)
	}
	return regexp.MustCompile(`[^A-Za-z0-9_.\-]+`).ReplaceAllString(src, "_")
}

func editsFile(m *Model) string {
	return filepath.Join(SessionDir(), "edits", m.sessionKey()+".json")
}

// sessionSaveEdits records the loaded edits in the session store, if there is one.
func sessionSaveEdits(m *Model) error {
	if SessionDir() == "" {
		return nil
	}
	var recs []editRecord
	for _, e := range m.Edits() {
		// The parent as declared (an alias, a negative index): later cells look it up so.
		recs = append(recs, editRecord{Parent: m.declared(e).Parent, Target: e.Target, Wrapper: e.Wrapper, Instance: e.Instance,
			Module: module.TypeName(e.Module)})
	}
	data, _ := json.MarshalIndent(recs, "", "  ")
	path := editsFile(m)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// sessionRestoreEdits re-loads, in a new cell, the edits an earlier cell loaded: each must
// be declared again in this cell's program (a global `var x = edit.New(...)` does that).
func sessionRestoreEdits(m *Model) error {
	if SessionDir() == "" {
		return nil
	}
	data, err := os.ReadFile(editsFile(m))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var recs []editRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		return fmt.Errorf("session store %s: %w", editsFile(m), err)
	}
	var edits []*edit.Edit
	for _, r := range recs {
		e := edit.Declared(r.Parent, r.Target, r.Wrapper, r.Instance)
		if e == nil {
			return fmt.Errorf("an earlier cell loaded the edit %s.%s -> %s (%s), but no declaration of it exists any more "+
				"(its `var ... = edit.New(...)` was removed or changed); run %s.ClearEdits() to forget it, or declare it again",
				r.Parent, r.Target, r.Wrapper, r.Module, "model")
		}
		r, err := m.resolveEdit(e)
		if err != nil {
			return err
		}
		edits = append(edits, r)
	}
	m.editsMu.Lock()
	m.edits = edits
	m.editsMu.Unlock()
	return nil
}
