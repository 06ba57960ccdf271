package kernel

import (
	"context"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/host"
	"github.com/gonnsight/gonnsight/internal/remote"
)

// hostEnvForTest makes the test binary act as `gonnsight serve`.
const hostEnvForTest = "GONNSIGHT_TEST_ACT_AS_HOST"

func actAsHost(args []string) int {
	var listen, tokFile string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--listen":
			listen = args[i+1]
		case "--token-file":
			tokFile = args[i+1]
		}
	}
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	h, err := host.New(host.Config{Backend: "go", Token: string(tok)})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	l, err := host.Listen(listen)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h.Serve(ctx, l)
	os.Remove(strings.TrimPrefix(listen, "unix:"))
	return 0
}

// TestKernelStartsAndEndsItsHost: the launcher starts a model host before GoNB, gives cells
// its private socket and token, and the host ends with the kernel.
func TestKernelStartsAndEndsItsHost(t *testing.T) {
	out := t.TempDir()
	// The fake GoNB is a "cell": it finds the host through its environment and asks it hello.
	gonb := fakeGoNB(t, `env > `+out+`/env
test -S "${GONNSIGHT_REMOTE#unix:}" && echo socket > `+out+`/socket
exit 0
`)
	conn := filepath.Join(t.TempDir(), "kernel-host.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	session := filepath.Join(t.TempDir(), "s")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(hostEnvForTest, "1")
	t.Setenv(HostEnv, "")
	err = RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb,
		SessionDir: session, Keep: true, Host: []string{self}})
	if err != nil {
		t.Fatal(err)
	}
	envData, _ := os.ReadFile(filepath.Join(out, "env"))
	env := strings.Split(string(envData), "\n")
	sock := filepath.Join(session, HostSocket)
	if getEnv(env, remote.EnvRemote) != "unix:"+sock || getEnv(env, remote.EnvTokenFile) != filepath.Join(session, HostToken) ||
		getEnv(env, remote.EnvFallback) != "1" {
		t.Errorf("cells' environment lacks the host:\n%s", envData)
	}
	if _, err := os.Stat(filepath.Join(out, "socket")); err != nil {
		t.Error("the host's socket was not there while the kernel ran")
	}
	// The host is gone with the kernel: nothing listens, socket and token removed.
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		t.Error("the model host still listens after the kernel ended")
	}
	if _, err := os.Stat(filepath.Join(session, HostToken)); err == nil {
		t.Error("the host's token outlived the kernel")
	}
	if st, err := os.Stat(session); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("session directory: %v %v", st, err)
	}
}

// TestKernelHostWhileRunning: a cell (here the test, while the fake GoNB waits) runs a trace
// through the kernel's host.
func TestKernelHostServesCells(t *testing.T) {
	out := t.TempDir()
	gonb := fakeGoNB(t, `env > `+out+`/env
while [ ! -e `+out+`/done ]; do sleep 0.05; done
exit 0
`)
	conn := filepath.Join(t.TempDir(), "kernel-host2.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	session := filepath.Join(t.TempDir(), "s")
	self, _ := os.Executable()
	t.Setenv(hostEnvForTest, "1")
	t.Setenv(HostEnv, "")
	done := make(chan error, 1)
	go func() {
		done <- RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb,
			SessionDir: session, Keep: true, Host: []string{self}})
	}()
	deadline := time.Now().Add(30 * time.Second)
	var envData []byte
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(out, "env")); err == nil && len(b) > 0 {
			envData = b
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	env := strings.Split(string(envData), "\n")
	tok, err := os.ReadFile(getEnv(env, remote.EnvTokenFile))
	if err != nil {
		t.Fatalf("no token for cells: %v\n%s", err, envData)
	}
	c, err := remote.NewClient(getEnv(env, remote.EnvRemote), string(tok))
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Hello()
	if err != nil {
		t.Fatalf("a cell cannot reach the kernel's host: %v", err)
	}
	if h.Backend != "go" || h.PID == os.Getpid() {
		t.Errorf("hello: %+v", h)
	}
	os.WriteFile(filepath.Join(out, "done"), nil, 0o600)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(h.PID, 0); err == nil {
		t.Errorf("the host (pid %d) outlived the kernel", h.PID)
	}
}

// TestKernelUsesARemoteHostWhenNamed: with GONNSIGHT_REMOTE set, the kernel starts no host
// of its own and cells keep the one the user named; GONNSIGHT_HOST=0 starts none either.
func TestKernelUsesARemoteHostWhenNamed(t *testing.T) {
	for _, c := range []struct{ remote, hostEnv string }{{"http://127.0.0.1:1", ""}, {"", "0"}} {
		out := t.TempDir()
		gonb := fakeGoNB(t, `env > `+out+`/env
exit 0
`)
		conn := filepath.Join(t.TempDir(), "kernel-remote.json")
		_ = os.WriteFile(conn, []byte("{}"), 0o600)
		session := filepath.Join(t.TempDir(), "s")
		self, _ := os.Executable()
		t.Setenv(hostEnvForTest, "1")
		t.Setenv(remote.EnvRemote, c.remote)
		t.Setenv(HostEnv, c.hostEnv)
		if err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb,
			SessionDir: session, Keep: true, Host: []string{self}}); err != nil {
			t.Fatal(err)
		}
		envData, _ := os.ReadFile(filepath.Join(out, "env"))
		env := strings.Split(string(envData), "\n")
		if got := getEnv(env, remote.EnvRemote); got != c.remote {
			t.Errorf("%+v: cells got %s=%q", c, remote.EnvRemote, got)
		}
		if _, err := os.Stat(filepath.Join(session, HostToken)); err == nil {
			t.Errorf("%+v: the kernel made a host token", c)
		}
	}
}
