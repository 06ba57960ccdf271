package main

import (
	"flag"
	"fmt"
	"html"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/edit"
)

func init() {
	register(&command{
		name:    "graph",
		summary: "print a module's captured graph (torch.fx's print_tabular), as code or as HTML",
		usage:   "[--model M] --module PATH [--inline | --folded] [--html | --code] [--text T | --ids 1,2,3]",
		examples: []string{
			`gonnsight graph --module transformer.h.3.mlp.c_proj`,
			`gonnsight graph --module transformer.h.0.attn --folded`,
			`gonnsight graph --module transformer.h.0 --html > block0.html`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			model := modelFlag(fs)
			in := addInputFlags(fs)
			path := fs.String("module", "", "the module path, e.g. transformer.h.3.attn or transformer.h[3].attn")
			inline := fs.Bool("inline", true, "show the ops of child modules inline (the default)")
			folded := fs.Bool("folded", false, "show each child module call as one call_module row")
			asHTML := fs.Bool("html", false, "print an HTML page with the table")
			asCode := fs.Bool("code", false, "print the graph as readable code (torch.fx's print_readable)")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				switch {
				case *path == "":
					return usageErrorf("give the module with --module PATH")
				case set["inline"] && *inline && *folded:
					return usageErrorf("--inline and --folded exclude each other")
				case *asHTML && *asCode:
					return usageErrorf("--html and --code exclude each other")
				}
				if _, err := in.given(); err != nil {
					return err
				}
				m, err := loadModel(*model)
				if err != nil {
					return err
				}
				var opts []edit.GraphOption
				if *folded || (set["inline"] && !*inline) {
					opts = append(opts, edit.Folded())
				}
				x, err := in.value(m)
				if err != nil {
					return err
				}
				if x != nil {
					opts = append(opts, edit.WithInput(x))
				}
				gr, err := m.Graph(*path, opts...)
				if err != nil {
					return err
				}
				switch {
				case *asHTML:
					_, err = fmt.Fprintf(stdout, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n<body>\n%s\n</body></html>\n",
						html.EscapeString(*model+": "+*path), display.GraphHTML(gr))
				case *asCode:
					_, err = fmt.Fprint(stdout, gr.Code())
				default:
					_, err = fmt.Fprint(stdout, gr.Table())
				}
				return err
			}
		},
	})
	register(&command{
		name:    "explain",
		summary: "report how the forward was captured: graphs, breaks, op counts (torch._dynamo.explain)",
		usage:   "[--model M] [--text T | --ids 1,2,3]",
		examples: []string{
			`gonnsight explain`,
			`gonnsight explain --model ./my-gpt2 --text "Hello"`,
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
				e, err := m.Explain(x)
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(stdout, e.String())
				return err
			}
		},
	})
}
