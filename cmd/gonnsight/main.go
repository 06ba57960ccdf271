// Command gonnsight is the command line over gonnsight: tokenize, run and trace GPT-2 models
// (local directories or Hugging Face hub ids), print captured graphs, generate text, and
// make the tiny test model. Run `gonnsight help` for the list of commands.
//
// Every command that runs a model says on stderr which backend ran it ("backend: go (...)").
// Errors are printed as "gonnsight CMD: <error>" and exit with status 1; usage errors exit
// with status 2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// command is one subcommand. Each file of this package registers its group of commands
// from an init function, so adding a command (kernel, run, bench, ...) never edits main.go:
//
//	func init() {
//		register(&command{name: "bench", summary: "...", usage: "[--model M]", examples: []string{"gonnsight bench"},
//			flags: func(fs *flag.FlagSet) func(args []string) error {
//				model := modelFlag(fs)
//				return func(args []string) error { m, err := loadModel(*model); ... }
//			}})
//	}
//
// Return usageErrorf(...) for a wrong command line (exit 2), any other error otherwise
// (exit 1); dispatch prints it as "gonnsight NAME: <error>".
type command struct {
	name    string
	summary string // one line, for `gonnsight help`
	usage   string // argument synopsis after the command name, e.g. "--model M --text T"
	// examples are shown by `gonnsight CMD -h`, one command line each.
	examples []string
	// flags declares the command's flags on fs and returns the function that runs it with
	// the parsed flags and the remaining arguments.
	flags func(fs *flag.FlagSet) func(args []string) error
}

// commands holds every subcommand by name.
var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("gonnsight: command " + c.name + " registered twice")
	}
	commands[c.name] = c
}

// errUsage marks errors that are the user's command line (exit status 2).
var errUsage = errors.New("usage error")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// Where commands write: results to stdout, progress, the backend line and errors to stderr.
var stdout, stderr io.Writer = os.Stdout, os.Stderr

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

// dispatch executes one command line and returns the exit status.
func dispatch(args []string) int {
	if len(args) == 0 {
		printHelp(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			c, ok := commands[rest[0]]
			if !ok {
				return unknown(rest[0], stderr)
			}
			printUsage(c, newFlagSet(c), stdout)
			return 0
		}
		printHelp(stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		return unknown(name, stderr)
	}
	fs := newFlagSet(c)
	runFn := c.flags(fs)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(c, fs, stdout)
			return 0
		}
		fmt.Fprintf(stderr, "gonnsight %s: %v\nrun 'gonnsight %s -h' for usage\n", name, err, name)
		return 2
	}
	if err := safeRun(runFn, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "gonnsight %s: %s\n", name, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "run 'gonnsight %s -h' for usage\n", name)
			return 2
		}
		return 1
	}
	return 0
}

// safeRun turns a panic into an error: users get a message, not a stack trace (set
// GONNSIGHT_DEBUG=1 to see it).
func safeRun(fn func([]string) error, args []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if os.Getenv("GONNSIGHT_DEBUG") != "" {
				fmt.Fprintf(stderr, "panic: %v\n%s", r, debug.Stack())
			}
			err = fmt.Errorf("internal error: %v (set GONNSIGHT_DEBUG=1 for a stack trace)", r)
		}
	}()
	return fn(args)
}

func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints errors and usage itself
	fs.Usage = func() {}
	return fs
}

func unknown(name string, w io.Writer) int {
	fmt.Fprintf(w, "gonnsight: unknown command %q; commands: %s\nrun 'gonnsight help' for usage\n",
		name, strings.Join(commandNames(), ", "))
	return 2
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `gonnsight inspects and edits neural networks (GPT-2) from the command line.

usage: gonnsight COMMAND [flags]

commands:
`)
	width := 0
	for _, n := range commandNames() {
		width = max(width, len(n))
	}
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintf(w, `
Models are local directories or Hugging Face hub ids (downloaded through HF_ENDPOINT into
the Hugging Face cache; HF_HUB_OFFLINE=1 uses the cache only). The default model, %s,
is a small GPT-2 trained on the Brown Corpus that ships with gonnsight (gonnsight train
made it; models/brown-gpt2/README.md); gonnsight/tiny-gpt2 is a tiny random one. GOMLX_BACKEND picks the backend.

Run 'gonnsight help COMMAND' or 'gonnsight COMMAND -h' for a command's flags and examples.
`, defaultModel)
}

func printUsage(c *command, fs *flag.FlagSet, w io.Writer) {
	if c.flags != nil && !hasFlags(fs) {
		c.flags(fs)
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace("gonnsight "+c.name+" "+c.usage), c.summary)
	if hasFlags(fs) {
		fmt.Fprint(w, "\nflags:\n")
		printFlags(fs, w)
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nexamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printFlags lists flags as flag.PrintDefaults does, but spelled with two dashes.
func printFlags(fs *flag.FlagSet, w io.Writer) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
			if typ == "string" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
		}
		fmt.Fprintf(w, "%s\n    \t%s%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"), def)
	})
}
