package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/safetensors"
)

func init() {
	register(&command{
		name:    "trace",
		summary: "run the model and save module outputs, inputs and labelled values to a safetensors file",
		usage:   "[--model M] (--text T | --ids 1,2,3) --save PATH [--save PATH ...] --out F.safetensors",
		examples: []string{
			`gonnsight trace --text "Hello" --save transformer.h.3.mlp --save transformer.h.3.attn.query --out acts.safetensors`,
			`gonnsight trace --ids 464,412 --save transformer.h.1.input --save lm_head --out acts.safetensors`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			model := modelFlag(fs)
			in := addInputFlags(fs)
			var saves stringList
			fs.Var(&saves, "save", "the `PATH` of a value to save, repeatable: a module (its output, e.g. transformer.h.0.mlp), "+
				"a labelled value (transformer.h.0.attn.query, [batch, pos, embd] before the head split), or a module's input "+
				"(transformer.h.1.input); `gonnsight scan` lists every path with its axes")
			out := fs.String("out", "", "the safetensors file to write (tensors keyed by the paths as given)")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := in.require(); err != nil {
					return err
				}
				if len(saves) == 0 {
					return usageErrorf("give at least one --save PATH")
				}
				if *out == "" {
					return usageErrorf("give the output file with --out")
				}
				m, ids, err := modelAndIDs(*model, in)
				if err != nil {
					return err
				}
				return runTrace(m, *model, ids, saves, *out)
			}
		},
	})
	register(&command{
		name:    "scan",
		summary: "list the shape of every module output and labelled value, and what each axis is (builds the graph, runs nothing)",
		usage:   "[--model M] [--text T | --ids 1,2,3]",
		examples: []string{
			`gonnsight scan --text "The Eiffel Tower"`,
			`gonnsight scan --model ./my-gpt2 --ids 1,2,3`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			model := modelFlag(fs)
			in := addInputFlags(fs)
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				m, x, err := modelAndValue(*model, in)
				if err != nil {
					return err
				}
				if x == nil {
					x = defaultInput(m)
				}
				res, err := m.Scan(x, nil)
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(stdout, res.String())
				return err
			}
		},
	})
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// defaultInput is the prompt used when a command that only builds the graph gets none.
func defaultInput(m *nnsight.Model) any {
	if m.Tokenizer() != nil {
		return "Hello, world"
	}
	return []int{0, 1, 2}
}

// savePoint splits a --save argument into the model's own path to give Tracer.Module and
// whether it names the module's input: "transformer.h.1.input" is block 1's input unless the
// model has a module of that name. Negative indices ("transformer.h[-1]") resolve here.
func savePoint(m *nnsight.Model, arg string, modules map[string]bool) (path string, input bool, err error) {
	p, err := m.Resolve(arg)
	if err != nil {
		return "", false, fmt.Errorf("--save %s: %w", arg, err)
	}
	if modules[p] {
		return p, false, nil
	}
	for _, suffix := range []string{".input", ".output"} {
		if base, ok := strings.CutSuffix(p, suffix); ok && modules[base] {
			return base, suffix == ".input", nil
		}
	}
	return p, false, nil
}

func runTrace(m *nnsight.Model, source string, ids []int, saves []string, out string) error {
	modules := map[string]bool{}
	for _, p := range m.Paths() {
		modules[p] = true
	}
	seen := map[string]bool{}
	type point struct {
		path  string
		input bool
	}
	points := make([]point, len(saves))
	for i, s := range saves {
		if seen[s] {
			return usageErrorf("--save %s is given twice", s)
		}
		seen[s] = true
		path, input, err := savePoint(m, s, modules)
		if err != nil {
			return err
		}
		points[i] = point{path, input}
	}
	res, err := m.Trace(ids, func(t *nnsight.Tracer) {
		for i, s := range saves {
			if points[i].input {
				t.Module(points[i].path).Input().Save(s)
			} else {
				t.Module(points[i].path).Output().Save(s)
			}
		}
	})
	if err != nil {
		return err
	}
	saved := make([]safetensors.Tensor, 0, len(saves))
	width := 0
	for _, s := range saves {
		width = max(width, len(s))
	}
	var summary strings.Builder
	for _, s := range saves {
		t, err := savedTensor(res, s)
		if err != nil {
			return err
		}
		saved = append(saved, t)
		fmt.Fprintf(&summary, "%-*s  %s %v\n", width, s, t.DType, t.Shape)
	}
	meta := map[string]string{"model": source, "ids": joinInts(ids), "backend": m.Backend()}
	if err := safetensors.Write(out, saved, meta); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	fmt.Fprint(stdout, summary.String())
	fmt.Fprintf(stderr, "wrote %d tensor(s) to %s\n", len(saved), out)
	return nil
}

// savedTensor converts a saved value for safetensors: floats as F32, token ids as I64.
func savedTensor(res *nnsight.Result, name string) (safetensors.Tensor, error) {
	t, err := res.Value(name)
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("--save %s: %w", name, err)
	}
	shape := t.Shape().Dimensions
	switch t.DType() {
	case dtypes.Float32:
		return safetensors.F32(name, shape, tensors.MustCopyFlatData[float32](t)), nil
	case dtypes.Int32:
		data := tensors.MustCopyFlatData[int32](t)
		wide := make([]int64, len(data))
		for i, v := range data {
			wide[i] = int64(v)
		}
		return safetensors.I64(name, shape, wide), nil
	case dtypes.Int64:
		return safetensors.I64(name, shape, tensors.MustCopyFlatData[int64](t)), nil
	}
	return safetensors.Tensor{}, fmt.Errorf("--save %s: values of type %s cannot be written (float32, int32 and int64 can)", name, t.DType())
}
