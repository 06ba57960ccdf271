package module

import (
	"fmt"
	"strconv"
	"strings"
)

// Tree prints a module tree like PyTorch's repr, folding runs of identical children of a
// list into one line ("(h): 0-11 x GPT2Block(...)"). extra adds children by parent path
// (edit wrappers), marked "[edit]". withShapes lists each parameter's shape.
func Tree(root Module, extra map[string][]Child, withShapes bool) string {
	var b strings.Builder
	writeTree(&b, "", root, extra, withShapes, 0)
	return strings.TrimRight(b.String(), "\n")
}

func writeTree(b *strings.Builder, path string, m Module, extra map[string][]Child, withShapes bool, depth int) {
	ind := strings.Repeat("  ", depth)
	children := ChildrenOf(m)
	ex := extra[path]
	params := ParamsOf(m)
	desc := ""
	if d, ok := m.(Describer); ok {
		desc = d.Describe()
	}
	if len(children) == 0 && len(ex) == 0 && !(withShapes && len(params) > 0) {
		b.WriteString(TypeName(m) + "(" + desc + ")\n")
		return
	}
	b.WriteString(TypeName(m) + "(" + desc + "\n")
	if withShapes {
		for _, p := range params {
			fmt.Fprintf(b, "%s  %s: %v\n", ind, p.Name, p.Shape)
		}
	}
	for i := 0; i < len(children); {
		ch := children[i]
		// Fold a run of list items whose subtrees print the same.
		j := i + 1
		if _, err := strconv.Atoi(ch.Name); err == nil {
			first := subtree(Join(path, ch.Name), ch.Module, extra, withShapes)
			for j < len(children) {
				if _, err := strconv.Atoi(children[j].Name); err != nil {
					break
				}
				if subtree(Join(path, children[j].Name), children[j].Module, extra, withShapes) != first {
					break
				}
				j++
			}
		}
		name := ch.Name
		if j-i > 1 {
			name = fmt.Sprintf("%s-%s", ch.Name, children[j-1].Name)
			fmt.Fprintf(b, "%s  (%s): %d x ", ind, name, j-i)
		} else {
			fmt.Fprintf(b, "%s  (%s): ", ind, name)
		}
		writeTree(b, Join(path, ch.Name), ch.Module, extra, withShapes, depth+1)
		i = j
	}
	for _, ch := range ex {
		fmt.Fprintf(b, "%s  (%s): [edit] ", ind, ch.Name)
		writeTree(b, Join(path, ch.Name), ch.Module, extra, withShapes, depth+1)
	}
	b.WriteString(ind + ")\n")
}

// subtree prints a child's subtree with its own path stripped, so that identical layers
// compare equal; edits on one layer make it differ.
func subtree(path string, m Module, extra map[string][]Child, withShapes bool) string {
	var b strings.Builder
	rel := map[string][]Child{}
	for p, ch := range extra {
		if p == path || strings.HasPrefix(p, path+".") {
			rel[strings.TrimPrefix(p, path)] = ch
		}
	}
	writeTree(&b, "", m, nil, withShapes, 0)
	for p, ch := range rel {
		for _, c := range ch {
			b.WriteString("edit:" + p + "." + c.Name + "\n")
		}
	}
	return b.String()
}
