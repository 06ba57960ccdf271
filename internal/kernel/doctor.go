package kernel

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gonnsight/gonnsight/internal/kernel/runner"
)

// DoctorOptions configures Doctor; zero values mean the defaults.
type DoctorOptions struct {
	// ToolsDir holds the built tools; default DefaultHome().
	ToolsDir string
	// KernelName is the kernelspec to check; default "gonnsight".
	KernelName string
	// ModuleRoot, if set, is checked for gonnsight's go.mod.
	ModuleRoot string
	// Python is the interpreter that should have Jupyter; default /usr/bin/python3 when it
	// exists, else python3 on PATH.
	Python string
}

// Doctor checks what running notebooks needs and writes one line per check, starting with OK
// or FAIL and saying what to do about a failure. It returns whether every check passed.
func Doctor(w io.Writer, opts DoctorOptions) (ok bool) {
	ok = true
	report := func(pass bool, what, detail, fix string) {
		if pass {
			fmt.Fprintf(w, "OK   %-14s %s\n", what, detail)
			return
		}
		ok = false
		fmt.Fprintf(w, "FAIL %-14s %s", what, detail)
		if fix != "" {
			fmt.Fprintf(w, " → %s", fix)
		}
		fmt.Fprintln(w)
	}
	toolsDir := opts.ToolsDir
	if toolsDir == "" {
		toolsDir = DefaultHome()
	}

	// Go and the simd experiment.
	goBin, err := exec.LookPath("go")
	if err != nil {
		report(false, "go", "the go command is not on PATH", "install Go 1.26+ (https://go.dev/dl) and add it to PATH")
	} else {
		v, err := goEnv(goBin, nil, "GOVERSION")
		switch {
		case err != nil:
			report(false, "go", err.Error(), "check the Go installation")
		case !goAtLeast(v, 26):
			report(false, "go", v+" at "+goBin, "gonnsight needs Go 1.26 or newer")
		default:
			report(true, "go", v+" at "+goBin, "")
		}
		env := append(os.Environ(), "GOEXPERIMENT=simd")
		cmd := exec.Command(goBin, "list", "simd/archsimd")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			report(false, "simd", "GOEXPERIMENT=simd: "+firstLine(string(out)), "use Go 1.26+ on amd64 (the Go backend's fast matmul needs it)")
		} else {
			report(true, "simd", "GOEXPERIMENT=simd builds simd/archsimd", "")
		}
	}

	// Tools.
	versions, _ := InstalledToolVersions(toolsDir)
	for _, t := range Tools {
		p := ToolPath(toolsDir, t.Name)
		what := t.Name
		switch {
		case fileExists(p) && versions[t.Name] == t.ID():
			report(true, what, t.Version+" at "+p, "")
		case fileExists(p):
			report(false, what, fmt.Sprintf("%s was built from %q, want %s", p, versions[t.Name], t.ID()),
				"run `gonnsight kernel install` to rebuild the pinned tools")
		default:
			if other, err := exec.LookPath(t.Name); err == nil {
				report(false, what, "not in "+ToolsBinDir(toolsDir)+" (an unpinned one is on PATH: "+other+")",
					"run `gonnsight kernel install` to build "+t.ID())
			} else {
				report(false, what, "not found in "+ToolsBinDir(toolsDir), "run `gonnsight kernel install` to build "+t.ID())
			}
		}
	}

	// Jupyter.
	python := opts.Python
	if python == "" {
		python = "/usr/bin/python3"
		if !fileExists(python) {
			python, _ = exec.LookPath("python3")
		}
	}
	jupyterOK := false
	if python != "" {
		if out, err := exec.Command(python, "-m", "jupyter", "--version").CombinedOutput(); err == nil {
			report(true, "jupyter", python+" -m jupyter: "+summarizeJupyter(string(out)), "")
			jupyterOK = true
		}
	}
	if !jupyterOK {
		if j, err := exec.LookPath("jupyter"); err == nil {
			if out, err := exec.Command(j, "--version").CombinedOutput(); err == nil {
				report(true, "jupyter", j+": "+summarizeJupyter(string(out)), "")
				jupyterOK = true
			}
		}
	}
	if !jupyterOK {
		report(false, "jupyter", "no `jupyter` (tried "+orDash(python)+" -m jupyter and jupyter on PATH)",
			"install it: `apt-get install jupyter-notebook jupyter-client python3-nbclient` or `pip install jupyterlab`")
	}
	if python != "" {
		if out, err := exec.Command(python, "-c", "import jupyter_client; print(jupyter_client.__version__)").CombinedOutput(); err == nil {
			report(true, "jupyter_client", strings.TrimSpace(string(out))+" ("+python+")", "")
		} else {
			report(false, "jupyter_client", "not importable by "+python+": "+lastLine(string(out)),
				"install it: `apt-get install jupyter-client` or `pip install jupyter_client`")
		}
	} else {
		report(false, "jupyter_client", "no python3 found", "install Python 3 and jupyter_client")
	}

	// Kernelspec.
	name := opts.KernelName
	if name == "" {
		name = DefaultKernelName
	}
	if spec, err := runner.FindKernelspec(name); err != nil {
		report(false, "kernelspec", err.Error(), "run `gonnsight kernel install`")
	} else {
		bin := spec.Argv[0]
		switch {
		case !fileExists(bin):
			report(false, "kernelspec", fmt.Sprintf("%s runs %s, which does not exist", spec.Dir, bin), "run `gonnsight kernel install` again")
		default:
			detail := fmt.Sprintf("%s runs %s", spec.Dir, bin)
			root := argAfter(spec.Argv, "--module")
			if root != "" && !fileExists(filepath.Join(root, "go.mod")) {
				report(false, "kernelspec", detail+", but its module root "+root+" has no go.mod", "run `gonnsight kernel install` from the gonnsight checkout")
			} else {
				report(true, "kernelspec", detail, "")
			}
		}
	}

	// Module root.
	if opts.ModuleRoot != "" {
		if mod, err := modulePathOf(filepath.Join(opts.ModuleRoot, "go.mod")); err != nil || mod != ModulePath {
			report(false, "module", fmt.Sprintf("%s is not the %s module root", opts.ModuleRoot, ModulePath), "pass the directory that holds gonnsight's go.mod")
		} else {
			report(true, "module", opts.ModuleRoot, "")
		}
	}

	// Backend.
	backend := os.Getenv(BackendEnv)
	switch {
	case backend == "":
		report(true, "backend", BackendEnv+" unset: the fastest available backend is chosen; cells build with -tags "+NoXLATag, "")
	case strings.HasPrefix(backend, "xla:/"):
		plugin := strings.TrimPrefix(backend, "xla:")
		if fileExists(plugin) {
			report(true, "backend", BackendEnv+"="+backend+" (cells link go-xla)", "")
		} else {
			report(false, "backend", BackendEnv+"="+backend+": plugin file not found", "point it at an existing PJRT plugin .so, or unset it")
		}
	case hasAnyPrefix(backend, "go", "xla", "onnx"):
		report(true, "backend", BackendEnv+"="+backend, "")
	default:
		report(false, "backend", BackendEnv+"="+backend+" is not a known backend", "use go, xla:cpu, xla:cuda, xla:/path/plugin.so or onnx:cpu, or unset it")
	}

	// Hugging Face cache.
	cache := hfCacheDir()
	if st, err := os.Stat(cache); err == nil && st.IsDir() {
		report(true, "hf cache", cache, "")
	} else if err == nil {
		report(false, "hf cache", cache+" is not a directory", "set HF_HUB_CACHE or HF_HOME to a directory")
	} else if parent := existingParent(cache); writable(parent) {
		report(true, "hf cache", cache+" (not created yet; "+parent+" is writable)", "")
	} else {
		report(false, "hf cache", cache+" cannot be created", "set HF_HUB_CACHE or HF_HOME to a writable directory")
	}
	return ok
}

// hfCacheDir is where Hugging Face hub files are cached: $HF_HUB_CACHE, $HF_HOME/hub,
// $XDG_CACHE_HOME/huggingface/hub or ~/.cache/huggingface/hub.
func hfCacheDir() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// goAtLeast reports whether a GOVERSION like go1.26.8 is at least go1.minor.
func goAtLeast(v string, minor int) bool {
	var major, m int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "go"), "%d.%d", &major, &m); err != nil {
		return strings.HasPrefix(v, "devel")
	}
	return major > 1 || (major == 1 && m >= minor)
}

func summarizeJupyter(out string) string {
	var parts []string
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if strings.Contains(v, "not installed") {
			continue
		}
		if k == "jupyter_client" || k == "nbclient" || k == "notebook" || k == "ipykernel" || k == "jupyterlab" {
			parts = append(parts, k+" "+strings.TrimSpace(v))
		}
	}
	if len(parts) == 0 {
		return firstLine(out)
	}
	return strings.Join(parts, ", ")
}

func argAfter(argv []string, flag string) string {
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func existingParent(p string) string {
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		if filepath.Dir(d) == d {
			return d
		}
	}
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".gonnsight-doctor-*")
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return true
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+":") {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
