//go:build !noxla

package main

import (
	"flag"
	"fmt"

	"github.com/gomlx/go-xla/installer"
	"github.com/gonnsight/gonnsight/internal/engine"
)

func init() {
	register(&command{
		name:    "install-xla",
		summary: "install the XLA PJRT plugins (CUDA when an NVIDIA GPU is present) the way go-xla does; needs internet",
		usage:   "[--dir LIBDIR]",
		examples: []string{
			"gonnsight install-xla",
			"gonnsight install-xla --dir /usr/local/lib",
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			dir := fs.String("dir", "", "lib directory (plugins go under DIR/go-xla; default ~/.local/lib)")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := installer.AutoInstall(*dir, true, installer.Normal); err != nil {
					return fmt.Errorf("%w\nwithout internet access, install the CUDA PJRT plugin by hand: copy xla_cuda_plugin.so "+
						"from the jax-cuda13-pjrt wheel (jax_plugins/xla_cuda13/) into ~/.local/lib/go-xla/, or point %s at it",
						err, engine.EnvXLAPlugin)
				}
				if p := engine.FindCUDAPlugin(); p != "" {
					fmt.Fprintln(stdout, "CUDA PJRT plugin:", p)
				} else {
					fmt.Fprintln(stdout, "installed; no CUDA plugin (no NVIDIA GPU detected?)")
				}
				return nil
			}
		},
	})
}
