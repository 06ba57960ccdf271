//go:build ignore

// Command exported counts the exported names of gonnsight's user-importable packages: every
// non-main package outside internal/ and testdata/, test files excluded. A name is a
// top-level func, type, var or const (the "top-level" column: what `go doc -short` lists), or
// a method or struct field of an exported type ("total" counts them all).
//
//	go run scripts/exported.go [-v] [ROOT]   # ROOT: the module root, default "."
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type count struct{ funcs, types, values, methods, fields int }

func (c count) total() int { return c.top() + c.methods + c.fields }

// top counts the top-level names, what `go doc -short` lists.
func (c count) top() int { return c.funcs + c.types + c.values }

func main() {
	verbose := flag.Bool("v", false, "list every name")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	pkgs := map[string]*count{}
	names := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			base := d.Name()
			if rel != "." && (base == "internal" || base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" || ignored(f) {
			return nil
		}
		dir := filepath.Dir(rel)
		c := pkgs[dir]
		if c == nil {
			c = &count{}
			pkgs[dir] = c
		}
		add := func(n *int, name string) { *n++; names[dir] = append(names[dir], name) }
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					add(&c.funcs, d.Name.Name)
				} else if recv := recvType(d.Recv.List[0].Type); ast.IsExported(recv) {
					add(&c.methods, recv+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						add(&c.types, s.Name.Name)
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fld := range st.Fields.List {
								for _, n := range fld.Names {
									if n.IsExported() {
										add(&c.fields, s.Name.Name+"."+n.Name)
									}
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								add(&c.values, n.Name)
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "exported:", err)
		os.Exit(1)
	}
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var all count
	fmt.Printf("%-22s %5s %9s %5s %5s %11s %7s %6s\n", "package", "total", "top-level", "funcs", "types", "vars+consts", "methods", "fields")
	for _, d := range dirs {
		c := pkgs[d]
		all.funcs += c.funcs
		all.types += c.types
		all.values += c.values
		all.methods += c.methods
		all.fields += c.fields
		fmt.Printf("%-22s %5d %9d %5d %5d %11d %7d %6d\n", d, c.total(), c.top(), c.funcs, c.types, c.values, c.methods, c.fields)
		if *verbose {
			sort.Strings(names[d])
			fmt.Println("    " + strings.Join(names[d], " "))
		}
	}
	fmt.Printf("%-22s %5d %9d %5d %5d %11d %7d %6d\n", "all", all.total(), all.top(), all.funcs, all.types, all.values, all.methods, all.fields)
}

// ignored reports whether a file has a //go:build ignore constraint.
func ignored(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "//go:build") && strings.Contains(c.Text, "ignore") {
				return true
			}
		}
	}
	return false
}

// recvType names a method's receiver type: T for T, *T, T[P], *T[P].
func recvType(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}
