// Package kernel sets up and runs gonnsight's Jupyter kernel: it builds the pinned GoNB and its
// tools, installs the kernelspec, launches GoNB with each kernel's session, and checks the set-up.
package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

// HomeEnv names the environment variable that overrides gonnsight's data directory.
const HomeEnv = "GONNSIGHT_HOME"

// Tool is a Go program gonnsight builds at a pinned version.
type Tool struct {
	Name    string // binary name under TOOLS/bin
	Module  string // module that holds it
	Version string // pinned module version
	Package string // main package to build
}

// ID is the tool's pinned identity, as recorded in versions.json: MODULE@VERSION.
func (t Tool) ID() string { return t.Module + "@" + t.Version }

// Pinned tools: GoNB runs the kernel; without goimports every cell fails; without gopls there
// is no completion or contextual help.
var (
	GoNBTool      = Tool{"gonb", "github.com/janpfeifer/gonb", "v0.11.5", "github.com/janpfeifer/gonb"}
	GoImportsTool = Tool{"goimports", "golang.org/x/tools", "v0.44.0", "golang.org/x/tools/cmd/goimports"}
	GoplsTool     = Tool{"gopls", "golang.org/x/tools/gopls", "v0.21.1", "golang.org/x/tools/gopls"}
	Tools         = []Tool{GoNBTool, GoImportsTool, GoplsTool}
)

// StaticcheckTool is the linter scripts/test.sh runs; `gonnsight kernel install --lint` (which
// install.sh runs) builds it beside the kernel tools. The kernel itself does not need it.
var StaticcheckTool = Tool{"staticcheck", "honnef.co/go/tools", "v0.8.2", "honnef.co/go/tools/cmd/staticcheck"}

// versionsFile records, in TOOLS/versions.json, which version each binary was built from.
const versionsFile = "versions.json"

// DefaultHome returns gonnsight's data directory: $GONNSIGHT_HOME, else ~/.local/share/gonnsight,
// else (no home directory) TMP/gonnsight-UID, which is used only if it is this user's own
// (see checkToolsDir).
func DefaultHome() string {
	if h := os.Getenv(HomeEnv); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return tempHome()
	}
	return filepath.Join(home, ".local", "share", "gonnsight")
}

func tempHome() string { return filepath.Join(os.TempDir(), "gonnsight-"+strconv.Itoa(os.Getuid())) }

// checkToolsDir refuses the temporary fallback of DefaultHome unless it is a private folder
// of this user: the kernel runs the binaries it holds.
func checkToolsDir(dir string) error {
	if filepath.Clean(dir) != tempHome() {
		return nil
	}
	if err := fsx.EnsurePrivateDir(dir); err != nil {
		return fmt.Errorf("the kernel tools folder (no home directory, so a temporary one): %w", err)
	}
	return nil
}

// ToolsBinDir returns the directory that holds the built tools.
func ToolsBinDir(toolsDir string) string { return filepath.Join(toolsDir, "bin") }

// ToolPath returns where the named tool's binary lives under toolsDir.
func ToolPath(toolsDir, name string) string {
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(ToolsBinDir(toolsDir), name)
}

// InstalledToolVersions reads toolsDir/versions.json: tool name → MODULE@VERSION it was built from.
func InstalledToolVersions(toolsDir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(toolsDir, versionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(toolsDir, versionsFile), err)
	}
	return v, nil
}

// ToolInstalled reports whether t's binary exists under toolsDir and was built from t's pinned version.
func ToolInstalled(toolsDir string, t Tool) bool {
	if _, err := os.Stat(ToolPath(toolsDir, t.Name)); err != nil {
		return false
	}
	v, err := InstalledToolVersions(toolsDir)
	return err == nil && v[t.Name] == t.ID()
}

// InstallTools builds the pinned GoNB, goimports and gopls into toolsDir/bin (toolsDir ""
// means DefaultHome()). Tools already built from the same version are skipped.
func InstallTools(toolsDir string, log io.Writer) error {
	return InstallSelectedTools(toolsDir, Tools, log)
}

// InstallSelectedTools is InstallTools for a subset of Tools.
func InstallSelectedTools(toolsDir string, tools []Tool, log io.Writer) error {
	if toolsDir == "" {
		toolsDir = DefaultHome()
	}
	if err := checkToolsDir(toolsDir); err != nil {
		return err
	}
	if log == nil {
		log = io.Discard
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the kernel tools needs the go command on PATH: %w", err)
	}
	if err := os.MkdirAll(ToolsBinDir(toolsDir), 0o755); err != nil {
		return fmt.Errorf("creating the tools directory: %w", err)
	}
	goVersion, err := goEnv(goBin, nil, "GOVERSION")
	if err != nil {
		return err
	}
	for _, t := range tools {
		if ToolInstalled(toolsDir, t) {
			fmt.Fprintf(log, "%s %s already installed in %s\n", t.Name, t.Version, ToolsBinDir(toolsDir))
			continue
		}
		start := time.Now()
		fmt.Fprintf(log, "building %s (%s) ...\n", t.Name, t.ID())
		if err := buildTool(goBin, goVersion, toolsDir, t, log); err != nil {
			return err
		}
		if err := recordToolVersion(toolsDir, t); err != nil {
			return err
		}
		fmt.Fprintf(log, "built %s %s in %v\n", t.Name, t.Version, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// buildTool builds one tool in a temporary module that requires exactly its pinned version,
// which works where `go install pkg@version` does not (proxies that refuse version lists).
func buildTool(goBin, goVersion, toolsDir string, t Tool, log io.Writer) error {
	tmp, err := os.MkdirTemp("", "gonnsight-tool-"+t.Name+"-")
	if err != nil {
		return fmt.Errorf("building %s: %w", t.Name, err)
	}
	defer os.RemoveAll(tmp)
	goLine := strings.TrimPrefix(goVersion, "go")
	if i := strings.IndexAny(goLine, " -"); i >= 0 {
		goLine = goLine[:i]
	}
	gomod := fmt.Sprintf("module gonnsight.local/tools/%s\n\ngo %s\n\nrequire %s %s\n", t.Name, goLine, t.Module, t.Version)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(gomod), 0o644); err != nil {
		return fmt.Errorf("building %s: %w", t.Name, err)
	}
	final := ToolPath(toolsDir, t.Name)
	partial := final + ".partial"
	cmd := exec.Command(goBin, "build", "-mod=mod", "-o", partial, t.Package)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if gf := os.Getenv("GOFLAGS"); strings.Contains(gf, "-mod=") {
		cmd.Env = append(cmd.Env, "GOFLAGS="+stripModFlag(gf))
	}
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(log, &out)
	cmd.Stderr = io.MultiWriter(log, &out)
	if err := cmd.Run(); err != nil {
		_ = os.Remove(partial)
		return fmt.Errorf("building %s %s (go build %s in a module requiring %s): %w\n%s",
			t.Name, t.Version, t.Package, t.ID(), err, strings.TrimSpace(out.String()))
	}
	if err := os.Rename(partial, final); err != nil {
		return fmt.Errorf("installing %s: %w", t.Name, err)
	}
	return nil
}

// stripModFlag drops -mod=... from a GOFLAGS value (the tool build needs -mod=mod).
func stripModFlag(goflags string) string {
	var keep []string
	for _, f := range strings.Fields(goflags) {
		if !strings.HasPrefix(f, "-mod=") && !strings.HasPrefix(f, "--mod=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

func recordToolVersion(toolsDir string, t Tool) error {
	v, err := InstalledToolVersions(toolsDir)
	if err != nil {
		v = map[string]string{}
	}
	v[t.Name] = t.ID()
	data, _ := json.MarshalIndent(v, "", "  ")
	return writeFileAtomic(filepath.Join(toolsDir, versionsFile), append(data, '\n'), 0o644)
}

// writeFileAtomic writes data to a temporary file next to path and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_ = os.Chmod(tmp.Name(), perm)
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// goEnv runs `go env NAME` with env (nil: the current environment) and returns its value.
func goEnv(goBin string, env []string, name string) (string, error) {
	cmd := exec.Command(goBin, "env", name)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go env %s: %w: %s", name, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// WarmBuildCache compiles the gonnsight module (and GoNB's gonbui) with the flags cells use, so
// the first cell of a new kernel does not wait for a cold build (31–43 s measured).
func WarmBuildCache(moduleRoot string, xla bool, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("warming the build cache needs the go command on PATH: %w", err)
	}
	env, err := cellBuildEnv(os.Environ(), goBin, xla)
	if err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.Command(goBin, "build", "./...", "github.com/janpfeifer/gonb/gonbui")
	cmd.Dir = moduleRoot
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(log, &out)
	cmd.Stderr = io.MultiWriter(log, &out)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("warming the build cache (go build ./... in %s): %w\n%s", moduleRoot, err, strings.TrimSpace(out.String()))
	}
	fmt.Fprintf(log, "build cache warm in %v\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}
