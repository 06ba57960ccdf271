package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve starts `gonnsight serve` on a free loopback port and returns its address and token.
func serve(t *testing.T) (addr, token string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	tokFile := filepath.Join(t.TempDir(), "token")
	cmd := exec.Command(bin, "serve", "--listen", addr, "--token-file", tokFile)
	cmd.Env = append(os.Environ(), "GONNSIGHT_HOME="+filepath.Join(work, "home"), "HF_HUB_OFFLINE=1", "GOMLX_BACKEND=go")
	var log strings.Builder
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("host log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host did not listen on %s: %s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr, strings.TrimSpace(string(b))
}

// TestCLIRemote: with GONNSIGHT_REMOTE a CLI command runs on the host, says so in its JSON,
// and prints the same numbers as in-process.
func TestCLIRemote(t *testing.T) {
	addr, token := serve(t)
	remote := []string{"GONNSIGHT_REMOTE=" + addr, "GONNSIGHT_TOKEN=" + token, "GOMLX_BACKEND=go"}
	for _, args := range [][]string{
		{"logits", "--text", "The Eiffel Tower is in", "--top", "5"},
		{"generate", "--text", "Once upon a time", "--max-new-tokens", "4", "--json"},
	} {
		local := gns(t, []string{"GOMLX_BACKEND=go"}, args...)
		there := gns(t, remote, args...)
		if local.code != 0 || there.code != 0 {
			t.Fatalf("%v: exit %d (%s) here, %d (%s) through the host", args, local.code, local.stderr, there.code, there.stderr)
		}
		var a, b map[string]any
		if err := json.Unmarshal([]byte(local.stdout), &a); err != nil {
			t.Fatalf("%v: %v: %s", args, err, local.stdout)
		}
		if err := json.Unmarshal([]byte(there.stdout), &b); err != nil {
			t.Fatalf("%v: %v: %s", args, err, there.stdout)
		}
		if be, _ := b["backend"].(string); !strings.Contains(be, "remote") {
			t.Errorf("%v: backend %q does not say remote", args, b["backend"])
		}
		delete(a, "backend")
		delete(b, "backend")
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%v: output differs through the host:\n%s\n%s", args, local.stdout, there.stdout)
		}
	}
	// The host loaded the model once and ran every command's programs.
	st := gns(t, remote, "host-stats")
	var stats struct {
		Models         []string
		Compiles, Runs int
	}
	if err := json.Unmarshal([]byte(st.stdout), &stats); err != nil || st.code != 0 {
		t.Fatalf("host-stats: exit %d, %v: %s %s", st.code, err, st.stdout, st.stderr)
	}
	if len(stats.Models) != 1 || stats.Compiles == 0 || stats.Runs < 5 {
		t.Errorf("host-stats: %+v", stats)
	}
	bad := gns(t, []string{"GONNSIGHT_REMOTE=" + addr, "GONNSIGHT_TOKEN=wrong"}, "logits", "--text", "hi")
	if bad.code == 0 || !strings.Contains(bad.stderr, "unauthorized") {
		t.Errorf("a wrong token: exit %d, %s", bad.code, bad.stderr)
	}
	// The kernel's own host gone: its cells fall back to running in-process, with a warning;
	// a host the user named is never skipped silently.
	gone := []string{"GONNSIGHT_REMOTE=unix:" + filepath.Join(t.TempDir(), "no.sock"), "GONNSIGHT_TOKEN=x", "GOMLX_BACKEND=go"}
	fb := gns(t, append(gone, "GONNSIGHT_REMOTE_FALLBACK=1"), "logits", "--text", "hi")
	if fb.code != 0 || !strings.Contains(fb.stderr, "running in this process") || strings.Contains(fb.stdout, "remote") {
		t.Errorf("an unreachable kernel host with fallback: exit %d\n%s\n%s", fb.code, fb.stdout, fb.stderr)
	}
	nofb := gns(t, gone, "logits", "--text", "hi")
	if nofb.code == 0 || !strings.Contains(nofb.stderr, "no.sock") {
		t.Errorf("an unreachable host the user named: exit %d\n%s", nofb.code, nofb.stderr)
	}
	none := gns(t, []string{"GONNSIGHT_REMOTE=" + addr}, "logits", "--text", "hi")
	if none.code == 0 || !strings.Contains(none.stderr, "GONNSIGHT_TOKEN") {
		t.Errorf("no token: exit %d, %s", none.code, none.stderr)
	}
}
