package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/kernel/runner"
)

// launcherEnv makes the test binary act as `gonnsight kernel run ...`, so a kernelspec written
// by InstallKernelspec can point at it.
const launcherEnv = "GONNSIGHT_TEST_ACT_AS_LAUNCHER"

func TestMain(m *testing.M) {
	if os.Getenv(launcherEnv) == "1" {
		os.Exit(actAsLauncher(os.Args[1:]))
	}
	if os.Getenv(hostEnvForTest) == "1" {
		os.Exit(actAsHost(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func actAsLauncher(args []string) int {
	var opts LaunchOptions
	if len(args) < 2 || args[0] != "kernel" || args[1] != "run" {
		os.Stderr.WriteString("want: kernel run --connection-file F --module DIR\n")
		return 2
	}
	for i := 2; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--connection-file":
			opts.ConnectionFile = args[i+1]
		case "--module":
			opts.ModuleRoot = args[i+1]
		}
	}
	err := RunKernel(opts)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestInstallKernelspec(t *testing.T) {
	data := t.TempDir()
	t.Setenv("JUPYTER_DATA_DIR", data)
	t.Setenv("JUPYTER_PATH", "")
	t.Setenv(HomeEnv, "")
	bin := filepath.Join(t.TempDir(), "gonnsight")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t)
	dir, err := InstallKernelspec(KernelspecOptions{Binary: bin, ModuleRoot: root, Env: map[string]string{"GOMLX_BACKEND": "go"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(data, "kernels", "gonnsight"); dir != want {
		t.Errorf("dir %s, want %s", dir, want)
	}
	spec, err := runner.FindKernelspec("gonnsight")
	if err != nil {
		t.Fatal(err)
	}
	wantArgv := []string{bin, "kernel", "run", "--connection-file", "{connection_file}", "--module", root}
	if strings.Join(spec.Argv, "|") != strings.Join(wantArgv, "|") {
		t.Errorf("argv %q, want %q", spec.Argv, wantArgv)
	}
	if spec.Language != "go" || spec.DisplayName != "Go (gonnsight)" || spec.Env["GOEXPERIMENT"] != "simd" || spec.Env["GOMLX_BACKEND"] != "go" {
		t.Errorf("spec %+v", spec)
	}
	for _, logo := range []string{"logo-32x32.png", "logo-64x64.png"} {
		if _, err := os.Stat(filepath.Join(dir, logo)); err != nil {
			t.Error(err)
		}
	}

	prefix := t.TempDir()
	dir, err = InstallKernelspec(KernelspecOptions{Name: "gn2", Prefix: prefix, Binary: bin, ModuleRoot: root})
	if err != nil || dir != filepath.Join(prefix, "share", "jupyter", "kernels", "gn2") {
		t.Errorf("prefix install: %s, %v", dir, err)
	}
	if _, err := InstallKernelspec(KernelspecOptions{Binary: filepath.Join(prefix, "missing"), ModuleRoot: root}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing binary should be named: %v", err)
	}
	if _, err := InstallKernelspec(KernelspecOptions{Binary: bin, ModuleRoot: prefix}); err == nil || !strings.Contains(err.Error(), prefix) {
		t.Errorf("a bad module root should be named: %v", err)
	}
}

func TestSessionDirFor(t *testing.T) {
	if id := KernelID("/run/user/1/jupyter/kernel-3f2a-11.json"); id != "3f2a-11" {
		t.Errorf("KernelID = %q", id)
	}
	if id := KernelID("conn.json"); id != "conn" {
		t.Errorf("KernelID = %q", id)
	}
	a, b := SessionDirFor("/x/kernel-abc.json"), SessionDirFor("/y/kernel-abc.json")
	if a != b || filepath.Base(a) != "abc" || strings.HasPrefix(a, filepath.Join(os.TempDir(), "gonnsight-sessions")+string(os.PathSeparator)) {
		t.Errorf("session dirs %s %s", a, b)
	}
}

func TestWithBuildTag(t *testing.T) {
	for _, c := range []struct {
		in   string
		add  bool
		want string
	}{
		{"", true, "-tags=noxla"},
		{"-buildvcs=false", true, "-buildvcs=false -tags=noxla"},
		{"-tags=foo,bar -v", true, "-tags=foo,bar,noxla -v"},
		{"-tags=noxla", true, "-tags=noxla"},
		{"-tags=foo,noxla", false, "-tags=foo"},
		{"-buildvcs=false", false, "-buildvcs=false"},
	} {
		if got := withBuildTag(c.in, "noxla", c.add); got != c.want {
			t.Errorf("withBuildTag(%q, %v) = %q, want %q", c.in, c.add, got, c.want)
		}
	}
}

func TestKernelEnv(t *testing.T) {
	tools := t.TempDir()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOFLAGS=-buildvcs=false", "GOEXPERIMENT=loopvar"}
	env, err := KernelEnv(base, tools, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := getEnv(env, "GOFLAGS"); got != "-buildvcs=false -tags=noxla "+CellLDFlags {
		t.Errorf("GOFLAGS=%q", got)
	}
	// A user's own -ldflags is kept.
	own, err := KernelEnv([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOFLAGS=-ldflags=-X=main.v=1"}, tools, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := getEnv(own, "GOFLAGS"); got != "-ldflags=-X=main.v=1 -tags=noxla" {
		t.Errorf("with the user's -ldflags: GOFLAGS=%q", got)
	}
	if got := getEnv(env, "GOEXPERIMENT"); got != "loopvar,simd" {
		t.Errorf("GOEXPERIMENT=%q", got)
	}
	if got := getEnv(env, "PATH"); !strings.HasPrefix(got, filepath.Join(tools, "bin")+string(os.PathListSeparator)) {
		t.Errorf("PATH=%q does not start with the tools", got)
	}
	env, err = KernelEnv(append(base, "GOMLX_BACKEND=xla:cuda"), tools, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := getEnv(env, "GOFLAGS"); strings.Contains(got, "noxla") {
		t.Errorf("XLA backend requested but GOFLAGS=%q", got)
	}
}

// fakeGoNB writes a shell script standing in for GoNB.
func fakeGoNB(t *testing.T, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("fake GoNB is a shell script")
	}
	p := filepath.Join(t.TempDir(), "gonb")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunKernelEnvironmentAndExitStatus(t *testing.T) {
	out := t.TempDir()
	gonb := fakeGoNB(t, `echo "$@" > `+out+`/args
env > `+out+`/env
touch "$GONNSIGHT_SESSION_DIR/state"
exit 3
`)
	conn := filepath.Join(t.TempDir(), "kernel-1234.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	session := filepath.Join(t.TempDir(), "session")
	tools := t.TempDir()
	t.Setenv(KeepSessionEnv, "")
	t.Setenv(BackendEnv, "")
	err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: tools, GoNB: gonb, SessionDir: session})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.ExitCode() != 3 {
		t.Fatalf("want GoNB's exit status 3, got %v", err)
	}
	args, _ := os.ReadFile(filepath.Join(out, "args"))
	if want := "--kernel " + conn + " --go_work=" + moduleRoot(t); strings.TrimSpace(string(args)) != want {
		t.Errorf("GoNB args %q, want %q", args, want)
	}
	envData, _ := os.ReadFile(filepath.Join(out, "env"))
	env := strings.Split(string(envData), "\n")
	if !strings.Contains(getEnv(env, "GOFLAGS"), "-tags=noxla") || !strings.Contains(getEnv(env, "GOEXPERIMENT"), "simd") ||
		getEnv(env, SessionDirEnv) != session || !strings.HasPrefix(getEnv(env, "PATH"), filepath.Join(tools, "bin")) {
		t.Errorf("GoNB environment:\n%s", envData)
	}
	// The connection file is still there: the client may restart the kernel with it, so the
	// session stays until the file goes (a final shutdown) ...
	if _, err := os.Stat(filepath.Join(session, "state")); err != nil {
		t.Fatalf("the session directory should wait for the connection file to go: %v", err)
	}
	// ... and a restart with the same connection file claims it and keeps its state.
	time.Sleep(700 * time.Millisecond) // the first launcher's watcher has polled at least once
	gonb2 := fakeGoNB(t, `test -e "$GONNSIGHT_SESSION_DIR/state" && echo restarted > "$GONNSIGHT_SESSION_DIR/state2"
exit 0
`)
	if err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: tools, GoNB: gonb2, SessionDir: session}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(session, "state2")); err != nil {
		t.Fatalf("the restarted kernel did not find the session's state: %v", err)
	}
	// The final shutdown: the client deletes the connection file and the directory goes.
	_ = os.Remove(conn)
	waitGone := func(dir string) error {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return errors.New(dir + " still exists")
	}
	if err := waitGone(session); err != nil {
		t.Errorf("the session directory should be removed once the connection file is gone: %v", err)
	}

	// Without a connection file left at exit, the directory goes at once.
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	gonb3 := fakeGoNB(t, `touch "$GONNSIGHT_SESSION_DIR/state"; rm -f `+conn+`; exit 0`)
	if err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: tools, GoNB: gonb3, SessionDir: session}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(session); !os.IsNotExist(err) {
		t.Errorf("the session directory should be removed at exit when the connection file is gone: %v", err)
	}

	// Kept sessions survive.
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	err = RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: tools, GoNB: gonb, SessionDir: session, Keep: true})
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	_ = os.Remove(conn)
	time.Sleep(time.Second)
	if _, err := os.Stat(filepath.Join(session, "state")); err != nil {
		t.Errorf("kept session lost its state: %v", err)
	}
}

func TestRunKernelForwardsInterrupt(t *testing.T) {
	out := t.TempDir()
	gonb := fakeGoNB(t, `trap 'echo interrupted > `+out+`/int; exit 0' INT
touch `+out+`/ready
i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
exit 7
`)
	conn := filepath.Join(t.TempDir(), "kernel-int.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	go func() {
		for range 200 {
			if _, err := os.Stat(filepath.Join(out, "ready")); err == nil {
				_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb, SessionDir: t.TempDir()})
	if err != nil {
		t.Fatalf("GoNB should have exited 0 on the forwarded SIGINT: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "int")); !bytes.Contains(data, []byte("interrupted")) {
		t.Error("SIGINT was not forwarded to GoNB")
	}
}

func TestRunKernelErrors(t *testing.T) {
	if err := RunKernel(LaunchOptions{ModuleRoot: "."}); err == nil || !strings.Contains(err.Error(), "connection file") {
		t.Errorf("got %v", err)
	}
	conn := filepath.Join(t.TempDir(), "kernel-x.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), SessionDir: t.TempDir()})
	if _, lookErr := exec.LookPath("gonb"); lookErr != nil && (err == nil || !strings.Contains(err.Error(), "kernel install")) {
		t.Errorf("missing GoNB should say how to install it: %v", err)
	}
}

func TestDoctor(t *testing.T) {
	tools := t.TempDir()
	_ = os.MkdirAll(ToolsBinDir(tools), 0o755)
	for _, tool := range Tools {
		_ = os.WriteFile(ToolPath(tools, tool.Name), []byte("#!/bin/sh\n"), 0o755)
		if err := recordToolVersion(tools, tool); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(ToolPath(tools, GoplsTool.Name), []byte("#!/bin/sh\n"), 0o755)
	v, _ := InstalledToolVersions(tools)
	v[GoplsTool.Name] = "golang.org/x/tools/gopls@v0.1.0"
	data, _ := json.Marshal(v)
	_ = os.WriteFile(filepath.Join(tools, versionsFile), data, 0o644)

	t.Setenv("JUPYTER_PATH", "")
	t.Setenv("JUPYTER_DATA_DIR", t.TempDir())
	t.Setenv(BackendEnv, "bogus")
	var buf bytes.Buffer
	ok := Doctor(&buf, DoctorOptions{ToolsDir: tools, KernelName: "no-such-kernel", ModuleRoot: t.TempDir()})
	out := buf.String()
	if ok {
		t.Errorf("Doctor passed with failures:\n%s", out)
	}
	for _, want := range []string{"OK   gonb", "OK   goimports", "FAIL gopls", "v0.1.0", "FAIL kernelspec", "gonnsight kernel install", "FAIL module", "FAIL backend"} {
		if !strings.Contains(out, want) {
			t.Errorf("Doctor output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "OK   ") && !strings.HasPrefix(line, "FAIL ") {
			t.Errorf("line without OK/FAIL: %q", line)
		}
		if strings.HasPrefix(line, "FAIL ") && !strings.Contains(line, "→") {
			t.Errorf("FAIL line without what to do: %q", line)
		}
	}
}

// TestInstallToolsBuildsGoNB builds the pinned GoNB into a temporary directory (minutes on a
// cold build cache).
func TestInstallToolsBuildsGoNB(t *testing.T) {
	if testing.Short() {
		t.Skip("builds GoNB (minutes on a cold cache): skipped in -short mode")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH: cannot build the kernel tools")
	}
	dir := t.TempDir()
	var log bytes.Buffer
	start := time.Now()
	if err := InstallSelectedTools(dir, []Tool{GoNBTool}, &log); err != nil {
		if strings.Contains(err.Error(), "dial tcp") || strings.Contains(err.Error(), "proxy") {
			t.Skipf("the Go module proxy cannot serve %s: %v", GoNBTool.ID(), err)
		}
		t.Fatal(err)
	}
	t.Logf("built GoNB in %v", time.Since(start))
	out, err := exec.Command(ToolPath(dir, "gonb"), "-V").Output()
	if err != nil || strings.TrimSpace(string(out)) != GoNBTool.Version {
		t.Errorf("gonb -V: %q, %v", out, err)
	}
	if !ToolInstalled(dir, GoNBTool) {
		t.Error("versions.json does not record GoNB")
	}
	log.Reset()
	if err := InstallSelectedTools(dir, []Tool{GoNBTool}, &log); err != nil || !strings.Contains(log.String(), "already installed") {
		t.Errorf("second install should be a no-op: %v %q", err, log.String())
	}
}
