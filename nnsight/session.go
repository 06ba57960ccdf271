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
	"github.com/gonnsight/gonnsight/internal/fsx"
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
	kept, err := storeDir(dir, "kept")
	if err != nil {
		return fmt.Errorf("Keep(%q): %w", name, err)
	}
	fsx.SweepTemps(kept) // what cells killed mid-write left behind
	data, err := safetensors.Encode([]safetensors.Tensor{st}, nil)
	if err != nil {
		return fmt.Errorf("Keep(%q): %w", name, err)
	}
	if err := fsx.WriteFileAtomic(filepath.Join(kept, name+".safetensors"), data, 0o600); err != nil {
		return fmt.Errorf("Keep(%q): %w", name, err)
	}
	return nil
}

// storeDir returns the session store's sub-folder sub, made private (0700): the session
// directory and the folder must be real directories of this user, never symbolic links
// another user could have planted.
func storeDir(session, sub string) (string, error) {
	if err := fsx.CheckPrivateDir(session); err != nil {
		return "", fmt.Errorf("session store: %w", err)
	}
	p := filepath.Join(session, sub)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("session store: %w", err)
	}
	if err := fsx.CheckPrivateDir(p); err != nil {
		return "", fmt.Errorf("session store: %w", err)
	}
	return p, nil
}

// checkStore checks, before reading, that sub (if it exists) is a private folder of this user.
func checkStore(session, sub string) error {
	if err := fsx.CheckPrivateDir(session); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	if err := fsx.CheckPrivateDir(filepath.Join(session, sub)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("session store: %w", err)
	}
	return nil
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
	if err := checkStore(dir, "kept"); err != nil {
		return nil, fmt.Errorf("Kept(%q): %w", name, err)
	}
	path := filepath.Join(dir, "kept", name+".safetensors")
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("Kept(%q): %s is not a regular file (a symbolic link or special file is not followed)", name, path)
	}
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

// edits persistence: the store holds the Spec of each loaded edit; a later cell re-creates
// the edits whose wrappers are data (edit.Spec.Recreate) and waits for the others (Go code) to
// be loaded again by the cell: until they are, traces fail naming them.

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

// sessionSaveEdits records the loaded edits, and those an earlier cell loaded that this cell
// has not loaded again (pending), in the session store, if there is one.
func sessionSaveEdits(m *Model, edits []*edit.Edit, pending []edit.Spec) error {
	if SessionDir() == "" {
		return nil
	}
	specs := []edit.Spec{}
	for _, e := range edits {
		specs = append(specs, m.declared(e).Spec()) // as declared (an alias, a negative index)
	}
	specs = append(specs, pending...)
	data, err := json.MarshalIndent(specs, "", "  ")
	if err != nil {
		return err
	}
	dir, err := storeDir(SessionDir(), "edits")
	if err != nil {
		return err
	}
	fsx.SweepTemps(dir)
	// A temp file of its own, so that two writers never rename each other's half-written file.
	return fsx.WriteFileAtomic(filepath.Join(dir, m.sessionKey()+".json"), data, 0o600)
}

// sessionRestoreEdits returns, in a new cell, the edits an earlier cell loaded that can be
// re-created from their specs, and the specs of the others (wrappers that are Go code), which
// the cell must load again.
func sessionRestoreEdits(m *Model) ([]*edit.Edit, []edit.Spec, error) {
	if SessionDir() == "" {
		return nil, nil, nil
	}
	if err := checkStore(SessionDir(), "edits"); err != nil {
		return nil, nil, err
	}
	data, err := fsx.ReadRegular(editsFile(m), 64<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var specs []edit.Spec
	if err := json.Unmarshal(data, &specs); err != nil {
		return nil, nil, fmt.Errorf("session store %s: %w", editsFile(m), err)
	}
	var edits []*edit.Edit
	var pending []edit.Spec
	for _, s := range specs {
		e, ok := s.Recreate()
		if !ok {
			pending = append(pending, s)
			continue
		}
		r, err := m.resolveEdit(e, edits)
		if err != nil {
			return nil, nil, fmt.Errorf("restoring the edits an earlier cell loaded: %w; run model.ClearEdits() and load the edit again", err)
		}
		edits = append(edits, r)
	}
	return edits, pending, nil
}

// pendingError is the error of a trace while edits an earlier cell loaded wait to be loaded
// again (their wrappers are Go code, which a new cell cannot re-create from the store).
func pendingError(pending []edit.Spec) error {
	if len(pending) == 0 {
		return nil
	}
	var names []string
	for _, s := range pending {
		names = append(names, s.String())
	}
	return module.NewError(ErrBadEdit, "an earlier cell loaded the edit(s) %s, whose wrapper is Go code that a new cell cannot re-create "+
		"from the session store (only edit.Identity() and edit.Scale(f) are); load them again in this cell with model.LoadEdits(...) "+
		"before tracing, or run model.ClearEdits() to forget them", strings.Join(names, "; "))
}
