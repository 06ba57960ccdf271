package engine

import (
	"github.com/gomlx/compute"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// withONNXAuto turns on the automatic choice of onnx:cpu for one test.
func withONNXAuto(t *testing.T) {
	old := ONNXAuto
	ONNXAuto = true
	t.Cleanup(func() { ONNXAuto = old })
	// No XLA plugin may answer first.
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	t.Setenv(EnvXLAPlugin, "")
	if HasNVIDIAGPU() {
		t.Skip("this machine has an NVIDIA GPU")
	}
}

func TestBrokenONNXLibraryFallsBack(t *testing.T) {
	withONNXAuto(t)
	dir := t.TempDir()
	notALib := filepath.Join(dir, "libonnxruntime.so")
	os.WriteFile(notALib, []byte("not a shared library"), 0o644)
	libs := []string{filepath.Join(dir, "missing", "libonnxruntime.so"), notALib}
	if data, err := os.ReadFile("/lib/x86_64-linux-gnu/libm.so.6"); err == nil {
		noSymbols := filepath.Join(dir, "libm-copy.so") // a real library without OrtGetApiBase
		os.WriteFile(noSymbols, data, 0o644)
		libs = append(libs, noSymbols)
	}
	for _, lib := range libs {
		t.Run(filepath.Base(lib), func(t *testing.T) {
			t.Setenv(EnvONNXLibrary, lib)
			name, reason, warnings := Choose()
			if name != "go" {
				t.Errorf("chose %q (%s) with a broken ONNX Runtime library", name, reason)
			}
			if !strings.Contains(strings.Join(warnings, "\n"), lib) {
				t.Errorf("no warning names %s: %q", lib, warnings)
			}
			e, err := Open("")
			if err != nil || e.Name != "go" {
				t.Errorf("Open(\"\") = %v, %v; want the Go backend", e, err)
			}
		})
	}
}

func TestONNXLibraryRuns(t *testing.T) {
	lib := ONNXLibrary()
	if lib == "" {
		t.Skip("no ONNX Runtime here (build with -tags onnx and run scripts/fetch-onnxruntime.sh)")
	}
	if err := CheckONNX(lib); err != nil {
		t.Fatal(err)
	}
	withONNXAuto(t)
	name, reason, warnings := Choose()
	if name != "onnx:cpu" || !strings.Contains(reason, lib) {
		t.Errorf("Choose() = %q (%s), warnings %q; want onnx:cpu from %s", name, reason, warnings, lib)
	}
}

func TestXLAComesBeforeONNX(t *testing.T) {
	if !slices.Contains(compute.List(), "xla") {
		t.Skip("built without XLA (-tags noxla)")
	}
	withONNXAuto(t)
	plugin := filepath.Join(t.TempDir(), "xla_cuda_plugin.so")
	os.WriteFile(plugin, []byte("stand-in"), 0o644)
	t.Setenv(EnvXLAPlugin, plugin)
	if name, _, _ := Choose(); name != "xla:"+plugin {
		t.Errorf("Choose() = %q; an XLA plugin must win over ONNX Runtime and the Go backend", name)
	}
}
