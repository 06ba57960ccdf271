package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/internal/kernel"
	"github.com/gonnsight/gonnsight/internal/kernel/runner"
	"github.com/gonnsight/gonnsight/version"
)

func init() {
	register(&command{
		name:    "kernel",
		summary: "the Jupyter kernel: install (tools, kernelspec, pre-warm), run (the launcher), doctor",
		usage:   "install [--user|--prefix DIR] [--name N] [--module DIR] [--lint] | run --connection-file F --module DIR | doctor",
		examples: []string{
			"gonnsight kernel install",
			"gonnsight kernel doctor",
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) == 0 {
					return usageErrorf("kernel needs a subcommand: install, run or doctor")
				}
				switch args[0] {
				case "install":
					return kernelInstall(args[1:])
				case "run":
					return kernelRun(args[1:])
				case "doctor":
					return kernelDoctor(args[1:])
				}
				return usageErrorf("unknown kernel subcommand %q (install, run, doctor)", args[0])
			}
		},
	})
	register(&command{
		name:    "run",
		summary: "execute a notebook headless through the gonnsight kernel and write it with its outputs",
		usage:   "NOTEBOOK.ipynb [-p name=value ...] [--out F] [--timeout D] [--allow-errors] [--kernel NAME]",
		examples: []string{
			"gonnsight run notebooks/01_edit_walkthrough.ipynb",
			"gonnsight run notebooks/04_activation_patching.ipynb -p modelName=openai-community/gpt2 --out log.ipynb",
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			out := fs.String("out", "", "where to write the executed notebook (default NAME.out.ipynb beside it)")
			timeout := fs.Duration("timeout", 10*time.Minute, "per-cell timeout (0: no limit)")
			allow := fs.Bool("allow-errors", false, "keep going after a cell fails")
			name := fs.String("kernel", "gonnsight", "kernelspec name")
			verbose := fs.Bool("verbose", false, "show the kernel's own log (GoNB) on stderr")
			var params paramFlags
			fs.Var(&params, "p", "parameter name=value for the cell tagged \"parameters\" (repeatable)")
			return func(args []string) error {
				// Flags may follow the notebook path.
				if len(args) == 0 {
					return usageErrorf("give the notebook to run")
				}
				path := args[0]
				if err := fs.Parse(args[1:]); err != nil {
					return usageErrorf("%v", err)
				}
				if fs.NArg() > 0 {
					return usageErrorf("unexpected arguments %v", fs.Args())
				}
				if *timeout < 0 {
					return usageErrorf("--timeout must not be negative (got %v; 0 means no limit)", *timeout)
				}
				extra := map[string]any{}
				if eng, err := engine.Default(); err == nil {
					extra["backend"] = eng.Name
					extra["backend_reason"] = eng.Reason
					if kernel.UsesOwnHost(true) {
						// Cells run on the kernel's model host, which picks its backend as this
						// process did; they print "remote(NAME) on the local model host".
						extra["backend"] = "remote(" + eng.Name + ")"
						extra["backend_reason"] = "the kernel's model host; its backend: " + eng.Reason
					}
				}
				if m, ok := params["modelName"]; ok {
					extra["model"] = m
				} else if defaults, err := runner.NotebookParams(path); err == nil && defaults["modelName"] != "" {
					extra["model"] = defaults["modelName"] // the parameters cell's own value
				}
				// Ctrl-C or SIGTERM: interrupt the running cell, write what ran, end the kernel.
				stop, done := make(chan struct{}), make(chan struct{})
				sigs := make(chan os.Signal, 2)
				signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
				defer signal.Stop(sigs)
				defer close(done)
				go func() {
					select {
					case s := <-sigs:
						fmt.Fprintf(stderr, "gonnsight run: %v: interrupting the running cell, writing the notebook with what ran, shutting the kernel down\n", s)
						close(stop)
					case <-done:
					}
				}()
				res, err := runner.RunNotebook(path, runner.Options{KernelName: *name, Timeout: *timeout, AllowErrors: *allow,
					Params: params, Out: *out, ExtraMetadata: extra, Log: kernelLog(*verbose), Version: version.Version,
					Header: true, Stop: stop})
				if res != nil {
					for _, c := range res.Cells {
						fmt.Fprintf(stderr, "cell %d: %s (%.1fs)\n", c.Number, c.Status, c.Duration.Seconds())
						if c.Err != nil && err == nil { // with --allow-errors; otherwise err says it below
							fmt.Fprintf(stderr, "\t%s\n", strings.ReplaceAll(c.Err.Error(), "\n", "\n\t"))
						}
					}
					switch {
					case res.Written && errors.Is(err, runner.ErrStopped):
						fmt.Fprintln(stdout, "stopped; the notebook with what ran:", res.OutputPath)
					case res.Written:
						fmt.Fprintln(stdout, "executed notebook:", res.OutputPath)
					}
				}
				return err
			}
		},
	})
}

type paramFlags map[string]string

func (p *paramFlags) String() string { return fmt.Sprint(map[string]string(*p)) }
func (p *paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("parameter %q: want name=value", s)
	}
	if *p == nil {
		*p = map[string]string{}
	}
	(*p)[k] = v
	return nil
}

func moduleRootFlag(fs *flag.FlagSet) *string {
	wd, _ := os.Getwd()
	root, _ := kernel.FindModuleRoot(wd)
	return fs.String("module", root, "the gonnsight module root (the directory with its go.mod)")
}

func kernelInstall(args []string) error {
	fs := flag.NewFlagSet("kernel install", flag.ContinueOnError)
	user := fs.Bool("user", true, "install the kernelspec for this user")
	prefix := fs.String("prefix", "", "install the kernelspec under PREFIX/share/jupyter/kernels")
	name := fs.String("name", "gonnsight", "kernelspec name")
	module := moduleRootFlag(fs)
	noWarm := fs.Bool("no-warm", false, "skip pre-warming the Go build cache")
	lint := fs.Bool("lint", false, "also build the pinned staticcheck that scripts/test.sh runs")
	if err := fs.Parse(args); err != nil {
		return usageErrorf("%v", err)
	}
	if *module == "" {
		return errors.New("cannot find the gonnsight module root: run from the checkout or give --module")
	}
	root, err := filepath.Abs(*module)
	if err != nil {
		return err
	}
	home := kernel.DefaultHome()
	tools := kernel.Tools
	if *lint {
		tools = append(slices.Clip(tools), kernel.StaticcheckTool)
	}
	if err := kernel.InstallSelectedTools(home, tools, stderr); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	// The kernelspec must point at a binary that stays: copy this one into the tools dir.
	stable := filepath.Join(kernel.ToolsBinDir(home), "gonnsight")
	if bin != stable {
		if err := copyFile(bin, stable); err != nil {
			return err
		}
	}
	dir, err := kernel.InstallKernelspec(kernel.KernelspecOptions{Name: *name, User: *user && *prefix == "", Prefix: *prefix,
		Binary: stable, ModuleRoot: root, Home: home})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "kernelspec:", dir)
	if !*noWarm {
		start := time.Now()
		if err := kernel.WarmBuildCache(root, false, stderr); err != nil {
			return fmt.Errorf("pre-warming the build cache: %w", err)
		}
		fmt.Fprintf(stdout, "build cache pre-warmed in %.1fs\n", time.Since(start).Seconds())
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func kernelRun(args []string) error {
	fs := flag.NewFlagSet("kernel run", flag.ContinueOnError)
	conn := fs.String("connection-file", "", "the Jupyter connection file")
	module := moduleRootFlag(fs)
	keep := fs.Bool("keep-session", false, "keep the session directory at shutdown")
	if err := fs.Parse(args); err != nil {
		return usageErrorf("%v", err)
	}
	if *conn == "" {
		return usageErrorf("--connection-file is required")
	}
	var hostCmd []string
	if self, err := os.Executable(); err == nil {
		hostCmd = []string{self, "serve", "--private"} // its socket and token are in the user's 0700 session folder
	}
	err := kernel.RunKernel(kernel.LaunchOptions{ConnectionFile: *conn, ModuleRoot: *module, ToolsDir: kernel.DefaultHome(),
		Keep: *keep, Stdout: os.Stdout, Stderr: os.Stderr, Host: hostCmd})
	var ee *kernel.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	return err
}

func kernelDoctor(args []string) error {
	fs := flag.NewFlagSet("kernel doctor", flag.ContinueOnError)
	module := moduleRootFlag(fs)
	name := fs.String("name", "gonnsight", "kernelspec name")
	if err := fs.Parse(args); err != nil {
		return usageErrorf("%v", err)
	}
	ok := kernel.Doctor(stdout, kernel.DoctorOptions{ToolsDir: kernel.DefaultHome(), KernelName: *name, ModuleRoot: *module})
	if eng, err := engine.Default(); err == nil {
		fmt.Fprintf(stdout, "OK    backend: %s (%s)\n", eng.Name, eng.Reason)
	} else {
		fmt.Fprintf(stdout, "FAIL  backend: %v\n", err)
		ok = false
	}
	if !ok {
		return errors.New("some checks failed (see above)")
	}
	return nil
}

func kernelLog(verbose bool) io.Writer {
	if verbose {
		return stderr
	}
	return nil
}
