package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gonnsight/gonnsight/internal/bench"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "measure GPT-2 small (random weights) on every available backend, optionally beside PyTorch; prints markdown",
		usage:   "[--backend B[,B...]] [--shapes 1x1,1x8,...] [--reps N] [--only W[,W...]] [--torch]",
		examples: []string{
			"gonnsight bench --torch",
			"gonnsight bench --backend go --shapes 1x128,8x64 --reps 3 --only forward",
			"gonnsight bench --only trace,edit,compile",
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			backends := fs.String("backend", "", "backends to measure, comma-separated (default: every available one: "+
				strings.Join(bench.Backends(), ", ")+")")
			shapes := fs.String("shapes", "1x1,1x8,1x128,1x512,8x64", "forward shapes, BATCHxSEQ, comma-separated")
			reps := fs.Int("reps", 5, "repetitions of each measurement (after one warm-up); medians are reported")
			only := fs.String("only", "", "workloads, comma-separated: "+strings.Join(bench.AllWorkloads, ", ")+" (default: all)")
			traceShape := fs.String("trace-shape", "1x128", "input of the trace and edit overhead measurements")
			torch := fs.Bool("torch", false, "also run tests/reference/bench_torch.py (/usr/bin/python3 with PyTorch) "+
				"on the same workloads, alternating with gonnsight, and print the ratios")
			python := fs.String("python", "/usr/bin/python3", "the Python with PyTorch, for --torch")
			hostModel := fs.String("host-model", "small", "the random GPT-2 the host workload serves: small (500 MB) or medium (1.4 GB)")
			return func(args []string) error {
				return benchCommand(args, *backends, *shapes, *reps, *only, *traceShape, *torch, *python, *hostModel)
			}
		},
	})
}

func benchCommand(args []string, backends, shapeList string, reps int, only, traceShape string, torch bool, python, hostModel string) error {
	bench.RunChild() // as the load-measuring child of another `gonnsight bench`, exit here
	if err := noArgs(args); err != nil {
		return err
	}
	if hostModel != "small" && hostModel != "medium" {
		return usageErrorf("--host-model %q: want small or medium", hostModel)
	}
	cfg := bench.Config{Reps: reps, Torch: torch, Python: python, ChildArgs: []string{"bench"}, Log: stderr, HostModel: hostModel}
	if backends != "" {
		avail := bench.Backends()
		for _, b := range strings.Split(backends, ",") {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			if !slices.Contains(avail, b) && b != "go" {
				fmt.Fprintf(stderr, "gonnsight bench: warning: %s is not among the backends found here (%s); trying it anyway\n",
					b, strings.Join(avail, ", "))
			}
			cfg.Backends = append(cfg.Backends, b)
		}
	}
	var err error
	if cfg.Shapes, err = bench.ParseShapes(shapeList); err != nil {
		return usageErrorf("--shapes: %v", err)
	}
	ts, err := bench.ParseShapes(traceShape)
	if err != nil || len(ts) != 1 {
		return usageErrorf("--trace-shape: want one BATCHxSEQ shape, got %q", traceShape)
	}
	cfg.TraceShape = ts[0]
	if reps <= 0 {
		return usageErrorf("--reps must be positive, got %d", reps)
	}
	if only != "" {
		for _, w := range strings.Split(only, ",") {
			w = strings.TrimSpace(w)
			if !slices.Contains(bench.AllWorkloads, w) {
				return usageErrorf("--only: unknown workload %q (known: %s)", w, strings.Join(bench.AllWorkloads, ", "))
			}
			cfg.Workloads = append(cfg.Workloads, w)
		}
	}
	start := time.Now()
	rep, err := bench.Run(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Measured %s on %s.\n\nCommand: `gonnsight %s`\n\n", start.Format("2006-01-02"), rep.Machine,
		strings.Join(os.Args[1:], " "))
	fmt.Fprint(stdout, rep.Markdown())
	return nil
}
