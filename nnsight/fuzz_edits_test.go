package nnsight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
)

// FuzzEditSpecs: any edit a user declares (parent path, target node, wrapper name) and any
// content of the session store's edits file give an error or a valid edit, never a panic.
func FuzzEditSpecs(f *testing.F) {
	session := f.TempDir()
	old, had := os.LookupEnv(EnvSessionDir)
	os.Setenv(EnvSessionDir, session)
	f.Cleanup(func() {
		if had {
			os.Setenv(EnvSessionDir, old)
		} else {
			os.Unsetenv(EnvSessionDir)
		}
	})
	m := LanguageModel(filepath.Join("..", "testdata", "gpt2", "tiny-a"), WithBackend("go"))
	if err := m.Load(); err != nil {
		f.Fatal(err)
	}
	declaredEdit := edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity())
	seed := `[{"parent":"transformer.h.1.attn","target":"query","wrapper":"query_wrapper","instance":-1,"kind":"Identity","module":"Identity()"}]`
	f.Add("transformer.h.1.attn", "query", "query_wrapper", seed)
	f.Add("transformer.h[-1].attn", "value", "v", `[]`)
	f.Add("transformer.h.9.attn", "qurey", "", `[{"parent":"transformer.h.9","instance":99}]`)
	f.Add("", "", ".", `{"not":"a list"}`)
	f.Add("transformer.h.0", "mlp", "attn", `[null]`)
	if err := os.MkdirAll(filepath.Join(session, "edits"), 0o700); err != nil {
		f.Fatal(err)
	}
	_ = declaredEdit
	f.Fuzz(func(t *testing.T, parent, target, wrapper, stored string) {
		e := &edit.Edit{Parent: parent, Target: target, Wrapper: wrapper, Module: edit.Identity(), Instance: -1}
		if r, err := m.resolveEdit(e, nil); err == nil {
			if err := m.validateEdits([]*edit.Edit{r}); err != nil && strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
		} else if !strings.Contains(err.Error(), "edit") {
			t.Errorf("error does not say which edit: %v", err)
		}
		if err := os.WriteFile(editsFile(m), []byte(stored), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, _ = sessionRestoreEdits(m)
	})
}
