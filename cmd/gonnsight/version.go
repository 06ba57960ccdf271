package main

import (
	"flag"
	"fmt"

	"github.com/gonnsight/gonnsight/version"
)

func init() {
	register(&command{
		name:     "version",
		summary:  "print gonnsight's version",
		examples: []string{"gonnsight version"},
		flags: func(fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				_, err := fmt.Fprintf(stdout, "gonnsight %s\n", version.Version)
				return err
			}
		},
	})
}
