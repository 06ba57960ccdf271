package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Kernelspec is a Jupyter kernel specification (a kernel.json file and its directory).
type Kernelspec struct {
	Name          string            `json:"-"`
	Dir           string            `json:"-"`
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Metadata      map[string]any    `json:"metadata,omitempty"`
}

// JupyterDataDir returns Jupyter's user data directory: $JUPYTER_DATA_DIR, or the platform
// default (~/.local/share/jupyter on Linux, ~/Library/Jupyter on macOS).
func JupyterDataDir() string {
	if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	switch runtime.GOOS {
	case "darwin":
		return filepath.Join(home, "Library", "Jupyter")
	case "windows":
		if app := os.Getenv("APPDATA"); app != "" {
			return filepath.Join(app, "jupyter")
		}
		return filepath.Join(home, "AppData", "Roaming", "jupyter")
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "jupyter")
	}
	return filepath.Join(home, ".local", "share", "jupyter")
}

// KernelDirs returns the directories searched for kernelspecs, in priority order:
// each $JUPYTER_PATH entry, the user data directory, then the system directories.
func KernelDirs() []string {
	var dirs []string
	for _, p := range filepath.SplitList(os.Getenv("JUPYTER_PATH")) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "kernels"))
		}
	}
	dirs = append(dirs, filepath.Join(JupyterDataDir(), "kernels"))
	if runtime.GOOS != "windows" {
		dirs = append(dirs, "/usr/local/share/jupyter/kernels", "/usr/share/jupyter/kernels")
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// ListKernelspecs returns the names of all kernelspecs found in KernelDirs, sorted.
func ListKernelspecs() []string {
	seen := map[string]bool{}
	var names []string
	for _, d := range KernelDirs() {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(d, e.Name(), "kernel.json")); err == nil && !seen[e.Name()] {
				seen[e.Name()] = true
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	return names
}

// FindKernelspec finds and reads the kernelspec called name (case-insensitive, as Jupyter does)
// in KernelDirs.
func FindKernelspec(name string) (*Kernelspec, error) {
	if name == "" {
		return nil, errors.New("empty kernel name")
	}
	lname := strings.ToLower(name)
	for _, d := range KernelDirs() {
		dir := filepath.Join(d, lname)
		if _, err := os.Stat(filepath.Join(dir, "kernel.json")); err != nil {
			dir = filepath.Join(d, name)
			if _, err := os.Stat(filepath.Join(dir, "kernel.json")); err != nil {
				continue
			}
		}
		return ReadKernelspec(dir)
	}
	return nil, fmt.Errorf("no Jupyter kernelspec %q in %s; available: %s",
		name, strings.Join(KernelDirs(), ", "), orNone(ListKernelspecs()))
}

// ReadKernelspec reads DIR/kernel.json.
func ReadKernelspec(dir string) (*Kernelspec, error) {
	file := filepath.Join(dir, "kernel.json")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading kernelspec: %w", err)
	}
	var ks Kernelspec
	if err := json.Unmarshal(data, &ks); err != nil {
		return nil, fmt.Errorf("parsing kernelspec %s: %w", file, err)
	}
	if len(ks.Argv) == 0 {
		return nil, fmt.Errorf("kernelspec %s has an empty argv", file)
	}
	ks.Name = filepath.Base(dir)
	ks.Dir = dir
	return &ks, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
