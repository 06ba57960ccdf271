package fsx

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTempOwner(t *testing.T) {
	own := filepath.Base(TempName("/x/model.safetensors"))
	if pid, ok := TempOwner(own); !ok || pid != os.Getpid() {
		t.Errorf("TempOwner(%q) = %d, %v", own, pid, ok)
	}
	for _, name := range []string{"notes.tmp-12-x", "results.tmp-123-abcdefabcdef", ".a.tmp-12-abc", "model.incomplete-1-abcdef01"} {
		if _, ok := TempOwner(name); ok {
			t.Errorf("%q is a user's file, not a temporary one", name)
		}
	}
	if pid, ok := TempOwner("0123456789abcdef0123456789abcdef01234567.incomplete-42-abcdef01"); !ok || pid != 42 {
		t.Errorf("hub download: %d %v", pid, ok)
	}
}

func TestReadRegularLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	_ = os.WriteFile(p, make([]byte, 100), 0o600)
	if _, err := ReadRegular(p, 99); err == nil {
		t.Error("a file over the limit was read")
	}
	if b, err := ReadRegular(p, 100); err != nil || len(b) != 100 {
		t.Errorf("%d %v", len(b), err)
	}
	if _, err := ReadRegular(filepath.Dir(p), 100); err == nil {
		t.Error("a directory was read")
	}
}
