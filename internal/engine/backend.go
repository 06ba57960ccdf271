package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gonnsight/gonnsight/internal/remote"
)

// EnvBackend names the backend configuration to use, as in GoMLX: "go", "onnx:cpu",
// "xla:cpu", "xla:cuda" or "xla:/path/to/pjrt_plugin.so".
const EnvBackend = "GOMLX_BACKEND"

// EnvXLAPlugin names a PJRT plugin (.so) to use for the XLA backend.
const EnvXLAPlugin = "GONNSIGHT_XLA_PLUGIN"

var (
	defaultOnce sync.Once
	defaultEng  *Engine
	defaultErr  error
)

// Default returns the process-wide engine, created on first use: GOMLX_BACKEND if set,
// otherwise the best backend found (see Choose).
func Default() (*Engine, error) {
	defaultOnce.Do(func() {
		if os.Getenv(remote.EnvRemote) != "" {
			defaultEng, defaultErr = Open("remote")
			if defaultErr != nil && os.Getenv(remote.EnvFallback) == "1" {
				// The kernel's own host is gone (it crashed, or was stopped): run here.
				fmt.Fprintf(os.Stderr, "gonnsight: warning: %v; running in this process\n", defaultErr)
				defaultEng, defaultErr = Open(os.Getenv(EnvBackend))
			}
			return
		}
		defaultEng, defaultErr = Open(os.Getenv(EnvBackend))
	})
	return defaultEng, defaultErr
}

// Open creates an engine for a backend configuration; "" picks automatically.
func Open(config string) (*Engine, error) {
	config = strings.TrimSpace(config)
	if config == "remote" {
		return openRemote()
	}
	if config != "" {
		b, err := newBackend(config)
		if err != nil {
			return nil, fmt.Errorf("backend %q (from %s): %w; compiled-in backends: %s", config, EnvBackend, err,
				strings.Join(compute.List(), ", "))
		}
		return New(b, config, "set by "+EnvBackend), nil
	}
	name, reason, warnings := Choose()
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "gonnsight: warning:", w)
	}
	b, err := newBackend(name)
	if err != nil && name != "go" {
		fmt.Fprintf(os.Stderr, "gonnsight: warning: backend %s failed (%v); falling back to the Go backend\n", name, err)
		reason = fmt.Sprintf("fallback: %s failed: %v", name, err)
		name = "go"
		b, err = newBackend(name)
	}
	if err != nil {
		return nil, err
	}
	return New(b, name, reason), nil
}

func newBackend(config string) (b compute.Backend, err error) {
	err = catch(func() error {
		var e error
		b, e = compute.NewWithConfig(goConfig(config))
		return e
	})
	return
}

// goConfig runs GoMLX's Go backend one op at a time (each op still on every core) unless the
// configuration asks otherwise ("go:ops_parallel"). Its parallel executor (compute v0.1.3)
// can wait forever: independent ops run as tasks of its worker pool, and a matmul inside such a
// task waits for more workers of the same pool, which the other ops' tasks hold. Seen on 2
// cores with the AVX2 kernels (no AVX-512): a generation test hung for 12 minutes with every
// goroutine in workerspool's Saturate or WaitToStart; earlier, three training runs.
func goConfig(config string) string {
	if config == "go" {
		return "go:ops_sequential"
	}
	return config
}

// Choose picks a backend configuration when none is set, and says why. Candidates are
// registered by the files of this package built for them (see xla.go, onnx.go).
func Choose() (name, reason string, warnings []string) {
	for _, c := range candidates {
		n, r, ws := c()
		warnings = append(warnings, ws...)
		if n != "" {
			return n, r, warnings
		}
	}
	return "go", "the pure-Go backend (no faster backend found)", warnings
}

// candidates are tried in order by Choose; each returns "" when it does not apply.
var candidates []func() (name, reason string, warnings []string)

// PJRTPluginDirs are the directories go-xla searches for PJRT plugins, in its order:
// PJRT_PLUGIN_LIBRARY_PATH, /usr/local/lib/go-xla, ~/.local/lib/go-xla.
func PJRTPluginDirs() []string {
	var dirs []string
	for _, d := range strings.Split(os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"), ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	home, _ := os.UserHomeDir()
	return append(dirs, "/usr/local/lib/go-xla", filepath.Join(home, ".local/lib/go-xla"))
}

// HasNVIDIAGPU reports whether an NVIDIA driver and device are visible.
func HasNVIDIAGPU() bool {
	if _, err := os.Stat("/proc/driver/nvidia/version"); err == nil {
		return true
	}
	_, err := os.Stat("/dev/nvidia0")
	return err == nil
}

// openRemote connects to the model host that GONNSIGHT_REMOTE names: programs built on the
// engine are recorded here and run there, on the host's resident weights.
func openRemote() (*Engine, error) {
	c, err := remote.FromEnv()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("backend \"remote\": set %s to the model host's address (http://HOST:PORT or unix:/path) and %s to its token", remote.EnvRemote, remote.EnvToken)
	}
	b, err := remote.Dial(c)
	if err != nil {
		return nil, err
	}
	return New(b, b.String(), "set by "+remote.EnvRemote), nil
}
