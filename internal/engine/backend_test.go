package engine

import (
	"slices"

	"github.com/gomlx/compute"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenReportsBackend(t *testing.T) {
	e, err := Open("go")
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "go" || !strings.Contains(e.Reason, "GOMLX_BACKEND") {
		t.Errorf("engine %q reason %q", e.Name, e.Reason)
	}
	if _, err := Open("nosuchbackend"); err == nil || !strings.Contains(err.Error(), "nosuchbackend") {
		t.Errorf("unknown backend: %v", err)
	}
}

func TestChooseFallsBackToGo(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	name, reason, _ := Choose()
	if HasNVIDIAGPU() {
		t.Skip("this machine has an NVIDIA GPU")
	}
	if name != "go" && !strings.HasPrefix(name, "onnx") {
		t.Errorf("chose %q (%s) on a machine without a GPU", name, reason)
	}
}

func TestBrokenXLAPluginFallsBack(t *testing.T) {
	if !slices.Contains(compute.List(), "xla") {
		t.Skip("built without XLA (-tags noxla)")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "xla_cuda_plugin.so")
	os.WriteFile(fake, []byte("not a shared library"), 0o644)
	t.Setenv(EnvXLAPlugin, fake)
	e, err := Open("")
	if err != nil {
		t.Fatalf("a broken plugin must fall back, not fail: %v", err)
	}
	if e.Name == "xla:"+fake {
		t.Fatalf("used the broken plugin")
	}
	if !strings.Contains(e.Reason, "fallback") {
		t.Errorf("reason %q does not say it fell back", e.Reason)
	}
}

// The Go backend runs one op at a time unless asked otherwise: its parallel executor can
// deadlock (see goConfig).
func TestGoBackendRunsOpsSequentially(t *testing.T) {
	for config, want := range map[string]string{"go": "go:ops_sequential", "go:ops_parallel": "go:ops_parallel", "xla:cuda": "xla:cuda"} {
		if got := goConfig(config); got != want {
			t.Errorf("goConfig(%q) = %q, want %q", config, got, want)
		}
	}
	e, err := Open("go")
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "go" {
		t.Errorf("Open(\"go\").Name = %q: the name users see stays \"go\"", e.Name)
	}
}
