//go:build !noxla

package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/go-xla/compute/xla"
)

func init() {
	// Never download plugins behind the user's back (go-xla's default): `gonnsight
	// install-xla` or install.sh --gpu does that on request.
	xla.EnableAutoInstall(false)
	candidates = append([]func() (string, string, []string){chooseXLA}, candidates...)
}

// chooseXLA picks XLA on CUDA when a CUDA PJRT plugin and an NVIDIA GPU are both present.
func chooseXLA() (string, string, []string) {
	if p := os.Getenv(EnvXLAPlugin); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", "", []string{fmt.Sprintf("%s=%s: %v; not using XLA", EnvXLAPlugin, p, err)}
		}
		return "xla:" + p, fmt.Sprintf("XLA with the PJRT plugin %s (from %s)", p, EnvXLAPlugin), nil
	}
	plugin := FindCUDAPlugin()
	if plugin == "" {
		return "", "", nil
	}
	if !HasNVIDIAGPU() {
		return "", "", nil
	}
	return "xla:" + plugin, "XLA on CUDA: found the PJRT plugin " + plugin + " and an NVIDIA GPU", nil
}

// FindCUDAPlugin looks for a CUDA PJRT plugin where jax's CUDA plugin packages and go-xla's
// installer put it; "" if none.
func FindCUDAPlugin() string {
	home, _ := os.UserHomeDir()
	names := []string{"pjrt_c_api_cuda_plugin.so", "xla_cuda_plugin.so"}
	for _, d := range PJRTPluginDirs() {
		for _, n := range names {
			p := filepath.Join(d, n)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	// jax-cuda*-pjrt wheels: site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so
	patterns := []string{
		"/usr/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
		"/usr/lib/python3/dist-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
		"/usr/local/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
		"/usr/local/lib/python3*/dist-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
		filepath.Join(home, ".local/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so"),
		"/opt/conda/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	}
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		patterns = append(patterns, filepath.Join(v, "lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so"))
	}
	for _, pat := range patterns {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[len(m)-1]
		}
	}
	return ""
}
