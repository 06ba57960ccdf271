package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs one command line in-process and returns its exit status, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	oldOut, oldErr := stdout, stderr
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = oldOut, oldErr }()
	code := dispatch(args)
	return code, o.String(), e.String()
}

// make-tiny over an existing model refuses unless --force: the weights the user had stay.
func TestMakeTinyKeepsExistingModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if code, _, errOut := runCLI(t, "make-tiny", "--out", dir, "--layers", "1", "--embd", "16", "--seed", "1"); code != 0 {
		t.Fatalf("first make-tiny: %d %s", code, errOut)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	code, _, errOut := runCLI(t, "make-tiny", "--out", dir, "--layers", "1", "--embd", "16", "--seed", "2")
	if code == 0 || !strings.Contains(errOut, "--force") || !strings.Contains(errOut, dir) {
		t.Errorf("overwriting a model should be refused, naming it and --force: %d %q", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if !bytes.Equal(before, after) {
		t.Fatal("make-tiny overwrote the existing weights")
	}
	if code, _, errOut := runCLI(t, "make-tiny", "--out", dir, "--layers", "1", "--embd", "16", "--seed", "2", "--force"); code != 0 {
		t.Fatalf("--force: %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); bytes.Equal(before, after) {
		t.Error("--force did not write the new weights")
	}
}
