package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticcheckPinnedOnce checks that the test command asks for the staticcheck version
// that `gonnsight kernel install --lint` builds, and that install.sh asks for it.
func TestStaticcheckPinnedOnce(t *testing.T) {
	root := filepath.Join("..", "..")
	testSh, err := os.ReadFile(filepath.Join(root, "scripts", "test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	want := `STATICCHECK_VERSION="(` + strings.TrimPrefix(StaticcheckTool.Version, "v") + `)"`
	if !strings.Contains(string(testSh), want) || !strings.Contains(string(testSh), `"$STATICCHECK" ./...`) {
		t.Errorf("scripts/test.sh does not run staticcheck %s over ./... (want a line %s)", StaticcheckTool.Version, want)
	}
	install, err := os.ReadFile(filepath.Join(root, "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(install), "kernel install") || !strings.Contains(string(install), "--lint") {
		t.Error("install.sh does not build staticcheck (gonnsight kernel install --lint)")
	}
}
