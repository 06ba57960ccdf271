package kernel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/gonnsight/gonnsight/internal/kernel/runner"
)

// ModulePath is gonnsight's module path, which FindModuleRoot looks for in go.mod files.
const ModulePath = "github.com/gonnsight/gonnsight"

// Kernelspec defaults.
const (
	DefaultKernelName  = runner.DefaultKernelName
	DefaultDisplayName = "Go (gonnsight)"
)

// KernelspecOptions configures InstallKernelspec.
type KernelspecOptions struct {
	// Name is the kernelspec's directory name; default "gonnsight".
	Name string
	// DisplayName is what Jupyter shows; default "Go (gonnsight)".
	DisplayName string
	// User installs into the user's Jupyter data directory ($JUPYTER_DATA_DIR or
	// ~/.local/share/jupyter)/kernels/NAME. It is the default when Prefix is empty.
	User bool
	// Prefix installs into PREFIX/share/jupyter/kernels/NAME (e.g. /usr/local, a venv).
	Prefix string
	// Binary is the gonnsight binary the kernel runs; default: the running executable.
	Binary string
	// ModuleRoot is the directory with gonnsight's go.mod. Required.
	ModuleRoot string
	// Home, if set, is recorded as $GONNSIGHT_HOME in the kernel's environment (where the tools
	// are); default: the current $GONNSIGHT_HOME, if any.
	Home string
	// Env adds environment variables to kernel.json (e.g. GOMLX_BACKEND).
	Env map[string]string
}

// KernelspecDir returns where InstallKernelspec puts the kernelspec for opts.
func KernelspecDir(opts KernelspecOptions) (string, error) {
	name := opts.Name
	if name == "" {
		name = DefaultKernelName
	}
	if strings.ContainsAny(name, `/\ `) || name == "." || name == ".." {
		return "", fmt.Errorf("invalid kernel name %q: use letters, digits, '-', '_' or '.'", name)
	}
	if opts.User && opts.Prefix != "" {
		return "", fmt.Errorf("kernelspec: choose either User or Prefix (%q), not both", opts.Prefix)
	}
	if opts.Prefix != "" {
		return filepath.Join(opts.Prefix, "share", "jupyter", "kernels", name), nil
	}
	return filepath.Join(runner.JupyterDataDir(), "kernels", name), nil
}

// InstallKernelspec writes kernel.json (and logos) so Jupyter runs
// `gonnsight kernel run --connection-file {connection_file} --module ROOT`; it returns the
// kernelspec's directory.
func InstallKernelspec(opts KernelspecOptions) (dir string, err error) {
	dir, err = KernelspecDir(opts)
	if err != nil {
		return "", err
	}
	bin := opts.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return "", fmt.Errorf("finding the gonnsight binary: %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return "", err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return "", fmt.Errorf("gonnsight binary %s does not exist or is not a file", bin)
	}
	if opts.ModuleRoot == "" {
		return "", errors.New("kernelspec: the gonnsight module root (the directory with its go.mod) is required")
	}
	root, err := filepath.Abs(opts.ModuleRoot)
	if err != nil {
		return "", err
	}
	if mod, err := modulePathOf(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("gonnsight module root %s: %w", root, err)
	} else if mod != ModulePath {
		return "", fmt.Errorf("module root %s holds module %q, not %q", root, mod, ModulePath)
	}
	display := opts.DisplayName
	if display == "" {
		display = DefaultDisplayName
	}
	env := map[string]string{"GOEXPERIMENT": "simd"}
	home := opts.Home
	if home == "" {
		home = os.Getenv(HomeEnv)
	}
	if home != "" {
		if home, err = filepath.Abs(home); err != nil {
			return "", err
		}
		env[HomeEnv] = home
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	spec := runner.Kernelspec{
		Argv:          []string{bin, "kernel", "run", "--connection-file", "{connection_file}", "--module", root},
		DisplayName:   display,
		Language:      "go",
		InterruptMode: "message", // GoNB handles interrupt_request on the control channel
		Env:           env,
		Metadata:      map[string]any{"debugger": false},
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating kernelspec directory: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "kernel.json"), append(data, '\n'), 0o644); err != nil {
		return "", err
	}
	for _, size := range []int{32, 64} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, logo(size)); err == nil {
			_ = writeFileAtomic(filepath.Join(dir, fmt.Sprintf("logo-%dx%d.png", size, size)), buf.Bytes(), 0o644)
		}
	}
	return dir, nil
}

// logo draws the kernel's icon: a Go-blue disc with a white ring.
func logo(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	goBlue := color.NRGBA{0x00, 0xAD, 0xD8, 0xFF}
	c := float64(size-1) / 2
	r := float64(size) / 2
	for y := range size {
		for x := range size {
			dx, dy := float64(x)-c, float64(y)-c
			d2 := dx*dx + dy*dy
			switch {
			case d2 <= (r*0.45)*(r*0.45):
				img.SetNRGBA(x, y, goBlue)
			case d2 <= (r*0.62)*(r*0.62):
				img.SetNRGBA(x, y, color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF})
			case d2 <= r*r:
				img.SetNRGBA(x, y, goBlue)
			}
		}
	}
	return img
}

// modulePathOf returns the module path declared in a go.mod file.
func modulePathOf(gomod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// FindModuleRoot returns the nearest directory at or above dir whose go.mod declares
// gonnsight's module.
func FindModuleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; {
		if mod, err := modulePathOf(filepath.Join(d, "go.mod")); err == nil && mod == ModulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod of %s at or above %s", ModulePath, abs)
		}
		d = parent
	}
}
