package kernel

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/internal/procx"
)

// Environment variables the launcher sets or reads.
const (
	// SessionDirEnv names the per-kernel session directory (the cross-cell store) for cells.
	SessionDirEnv = "GONNSIGHT_SESSION_DIR"
	// KeepSessionEnv set to 1 keeps the session directory when the kernel exits.
	KeepSessionEnv = "GONNSIGHT_KEEP_SESSION"
	// BackendEnv selects GoMLX's backend ("go", "xla:cpu", "xla:cuda", "onnx:cpu", ...).
	BackendEnv = "GOMLX_BACKEND"
	// NoXLATag is the build tag that leaves go-xla (cgo, slow external link) out of cells.
	NoXLATag = "noxla"
)

// LaunchOptions configures RunKernel.
type LaunchOptions struct {
	// ConnectionFile is the Jupyter connection file (kernel.json's {connection_file}). Required.
	ConnectionFile string
	// ModuleRoot is the directory holding gonnsight's go.mod; cells get it through a go.work. Required.
	ModuleRoot string
	// ToolsDir holds bin/gonb, bin/goimports and bin/gopls; default DefaultHome().
	ToolsDir string
	// GoNB is the GoNB binary; default ToolsDir/bin/gonb, else gonb on PATH.
	GoNB string
	// SessionDir is the session store; default SessionDirFor(ConnectionFile).
	SessionDir string
	// Keep keeps the session directory at exit (also when $GONNSIGHT_KEEP_SESSION=1).
	Keep bool
	// XLA links go-xla into cells (no -tags noxla); also implied by $GOMLX_BACKEND=xla...
	XLA bool
	// ExtraArgs are passed on to GoNB (e.g. --extra_log=FILE, --raw_error, --work).
	ExtraArgs []string
	// Stdout and Stderr receive GoNB's output; default os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// Host is the command that runs a model host (`gonnsight serve`); the launcher adds
	// --listen and --token-file, starts it before GoNB and ends it with the kernel, and cells
	// send their programs to it. Empty, or $GONNSIGHT_HOST=0: cells load models themselves.
	Host []string
}

// ExitError is returned by RunKernel when GoNB exits unsuccessfully; Code is its exit status
// (-1 when a signal killed it).
type ExitError struct {
	Code  int
	State string
}

func (e *ExitError) Error() string { return "GoNB kernel exited: " + e.State }

// ExitCode returns the exit status to pass on to os.Exit.
func (e *ExitError) ExitCode() int {
	if e.Code < 0 {
		return 1
	}
	return e.Code
}

// KernelID returns the kernel id in a connection file name (kernel-ID.json → ID), else the
// file's base name without extension.
func KernelID(connectionFile string) string {
	base := strings.TrimSuffix(filepath.Base(connectionFile), filepath.Ext(connectionFile))
	if id := strings.TrimPrefix(base, "kernel-"); id != "" {
		return id
	}
	return base
}

// SessionDirFor returns the default session directory of the kernel with this connection file:
// SESSIONS/KERNEL-ID, where SESSIONS is private to the user: $XDG_RUNTIME_DIR/gonnsight-sessions,
// else ~/.cache/gonnsight/gonnsight-sessions, else TMP/gonnsight-sessions-UID (never a folder
// shared by every user, where another user could read kept values or plant some). A restarted
// kernel with the same connection file reuses it.
func SessionDirFor(connectionFile string) string {
	return filepath.Join(fsx.PrivateBase("gonnsight-sessions"), KernelID(connectionFile))
}

// RunKernel runs GoNB as the Jupyter kernel for opts.ConnectionFile: it prepares the cells'
// environment (GOEXPERIMENT=simd, -tags noxla, the tools on PATH, the session directory, a
// go.work with gonnsight), forwards SIGINT (interrupt) and SIGTERM/SIGHUP (shutdown) to GoNB,
// removes the session directory once the kernel is shut down for good unless kept (see
// releaseSession), and returns GoNB's exit status as *ExitError.
func RunKernel(opts LaunchOptions) error {
	if opts.ConnectionFile == "" {
		return errors.New("RunKernel: no connection file given")
	}
	if _, err := os.Stat(opts.ConnectionFile); err != nil {
		return fmt.Errorf("kernel connection file: %w", err)
	}
	connFile, err := filepath.Abs(opts.ConnectionFile)
	if err != nil {
		return err
	}
	if opts.ModuleRoot == "" {
		return errors.New("RunKernel: no gonnsight module root given")
	}
	root, err := filepath.Abs(opts.ModuleRoot)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("gonnsight module root %s has no go.mod: %w", root, err)
	}
	toolsDir := opts.ToolsDir
	if toolsDir == "" {
		toolsDir = DefaultHome()
	}
	if err := checkToolsDir(toolsDir); err != nil {
		return err
	}
	env, err := KernelEnv(os.Environ(), toolsDir, opts.XLA)
	if err != nil {
		return err
	}
	gonb := opts.GoNB
	if gonb == "" {
		gonb = ToolPath(toolsDir, GoNBTool.Name)
		if _, err := os.Stat(gonb); err != nil {
			p, lookErr := lookPathIn("gonb", env)
			if lookErr != nil {
				return fmt.Errorf("no GoNB at %s nor on PATH: run `gonnsight kernel install` (InstallTools) first", gonb)
			}
			gonb = p
		}
	}
	sessionDir := opts.SessionDir
	if sessionDir == "" {
		sessionDir = SessionDirFor(connFile)
	}
	// Folders 0700, owned by this user, no symbolic link followed: the store holds values and
	// edits that cells trust.
	if opts.SessionDir == "" {
		if err := fsx.EnsurePrivateDir(filepath.Dir(sessionDir)); err != nil {
			return fmt.Errorf("the session directories' folder: %w", err)
		}
	}
	if err := fsx.EnsurePrivateDir(sessionDir); err != nil {
		return fmt.Errorf("the session directory: %w", err)
	}
	keep := opts.Keep || os.Getenv(KeepSessionEnv) == "1"
	owner, err := claimSession(sessionDir)
	if err != nil {
		return fmt.Errorf("claiming the session directory: %w", err)
	}
	if !keep {
		defer releaseSession(sessionDir, connFile, owner)
	}
	env = setEnv(env, SessionDirEnv, sessionDir)

	// GoNB, gopls (a process group of its own) and cells carry a tag, and GoNB's work folders
	// go to a temporary folder of this launcher: whatever they leave when GoNB dies or is shut
	// down at once is ended and removed when GoNB exits.
	tag := procx.NewTag()
	env = setEnv(env, procx.KernelTagEnv, tag)
	tmpBase := fsx.PrivateBase("gonnsight-tmp")
	if err := fsx.EnsurePrivateDir(tmpBase); err != nil {
		return fmt.Errorf("the kernel's temporary folder: %w", err)
	}
	tmpDir, err := os.MkdirTemp(tmpBase, KernelID(connFile)+"-")
	if err != nil {
		return fmt.Errorf("the kernel's temporary folder: %w", err)
	}
	defer func() {
		procx.KillTagged(procx.KernelTagEnv, tag, 2*time.Second)
		_ = os.RemoveAll(tmpDir)
	}()
	env = setEnv(env, "TMPDIR", tmpDir)

	if UsesOwnHost(len(opts.Host) > 0) {
		log := opts.Stderr
		if log == nil {
			log = os.Stderr
		}
		cellEnv, stopHost, err := startHost(opts.Host, sessionDir, env, log)
		if err != nil {
			fmt.Fprintf(log, "gonnsight: warning: no model host (%v); each cell loads its models itself\n", err)
		} else {
			defer stopHost()
			for _, kv := range cellEnv {
				k, v, _ := strings.Cut(kv, "=")
				env = setEnv(env, k, v)
			}
		}
	}

	args := append([]string{"--kernel", connFile, "--go_work=" + root}, opts.ExtraArgs...)
	cmd := exec.Command(gonb, args...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = opts.Stdout, opts.Stderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting GoNB (%s): %w", gonb, err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Code: ee.ExitCode(), State: ee.ProcessState.String()}
	}
	if err != nil {
		return fmt.Errorf("running GoNB: %w", err)
	}
	return nil
}

// defaultGOROOT is where Go's official Linux and macOS archives install it.
const defaultGOROOT = "/usr/local/go"

// KernelEnv returns base with what cells need: GOEXPERIMENT including simd, PATH starting with
// toolsDir/bin (GoNB finds goimports and gopls there) and holding the go command, and GOFLAGS
// with -tags=noxla unless xla is true or $GOMLX_BACKEND selects XLA.
func KernelEnv(base []string, toolsDir string, xla bool) ([]string, error) {
	env := slices.Clone(base)
	path := ToolsBinDir(toolsDir)
	if old := getEnv(env, "PATH"); old != "" {
		path += string(os.PathListSeparator) + old
	}
	env = setEnv(env, "PATH", path)
	goBin, err := lookPathIn("go", env)
	if err != nil {
		// Not on PATH: $GOROOT/bin, else where the official archive installs Go.
		goroot := getEnv(env, "GOROOT")
		if goroot == "" {
			goroot = defaultGOROOT
		}
		candidate := filepath.Join(goroot, "bin")
		if _, statErr := os.Stat(filepath.Join(candidate, "go")); goroot == "" || statErr != nil {
			return nil, errors.New("the go command is not on PATH (cells are compiled with it): install Go 1.26+ and add it to PATH")
		}
		env = setEnv(env, "PATH", path+string(os.PathListSeparator)+candidate)
		goBin = filepath.Join(candidate, "go")
	}
	return cellBuildEnv(env, goBin, xla)
}

// cellBuildEnv sets GOEXPERIMENT (adding simd) and GOFLAGS (adding -tags=noxla unless XLA is
// wanted, and CellLDFlags).
func cellBuildEnv(env []string, goBin string, xla bool) ([]string, error) {
	env = slices.Clone(env)
	exp := getEnv(env, "GOEXPERIMENT")
	if !slices.Contains(strings.Split(exp, ","), "simd") {
		if exp == "" {
			exp = "simd"
		} else {
			exp += ",simd"
		}
	}
	env = setEnv(env, "GOEXPERIMENT", exp)
	goflags, set := lookupEnv(env, "GOFLAGS")
	if !set {
		// Setting GOFLAGS in the environment hides the one in `go env -w`: start from it.
		v, err := goEnv(goBin, env, "GOFLAGS")
		if err != nil {
			return nil, fmt.Errorf("reading GOFLAGS: %w", err)
		}
		goflags = v
	}
	if !xla {
		xla = strings.HasPrefix(strings.ToLower(getEnv(env, BackendEnv)), "xla")
	}
	goflags = withBuildTag(goflags, NoXLATag, !xla)
	if !strings.Contains(goflags, "-ldflags") {
		// Cells link without the symbol table and DWARF: a third less link time per cell
		// (1.55 s -> 1.07 s measured on a cell importing nnsight); panics still print
		// file:line stack traces (they use the pcln table).
		goflags = strings.TrimSpace(goflags + " " + CellLDFlags)
	}
	return setEnv(env, "GOFLAGS", goflags), nil
}

// CellLDFlags are the linker flags cells build with unless GOFLAGS already has -ldflags.
const CellLDFlags = "-ldflags=-s"

// withBuildTag adds (or, when add is false, removes) tag in the -tags flag of a GOFLAGS value.
func withBuildTag(goflags, tag string, add bool) string {
	fields := strings.Fields(goflags)
	found := false
	for i, f := range fields {
		name, value, ok := strings.Cut(f, "=")
		if !ok || (name != "-tags" && name != "--tags") {
			continue
		}
		found = true
		var tags []string
		for _, t := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' }) {
			if t != tag {
				tags = append(tags, t)
			}
		}
		if add {
			tags = append(tags, tag)
		}
		fields[i] = name + "=" + strings.Join(tags, ",")
	}
	if !found && add {
		fields = append(fields, "-tags="+tag)
	}
	return strings.Join(fields, " ")
}

func lookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func getEnv(env []string, name string) string {
	v, _ := lookupEnv(env, name)
	return v
}

// setEnv returns env with name=value, replacing earlier settings of name.
func setEnv(env []string, name, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == name {
			continue
		}
		out = append(out, kv)
	}
	return append(out, name+"="+value)
}

// lookPathIn finds an executable in the PATH of env.
func lookPathIn(name string, env []string) (string, error) {
	for _, dir := range filepath.SplitList(getEnv(env, "PATH")) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() && (runtime.GOOS == "windows" || st.Mode()&0o111 != 0) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}
