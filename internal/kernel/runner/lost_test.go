package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An --out in a folder that does not exist is an error before any cell runs, not after
// every cell ran and the results are lost.
func TestRunNotebookOutFolderMissing(t *testing.T) {
	needKernel(t)
	marker := filepath.Join(t.TempDir(), "ran")
	path := writeNotebook(t, "open("+pyQuote(marker)+", 'w').write('x')")
	out := filepath.Join(t.TempDir(), "no-such-folder", "out.ipynb")
	res, err := RunNotebook(path, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(out)) {
		t.Fatalf("want an error naming the missing folder, got %v", err)
	}
	if res != nil && res.Written {
		t.Error("the result claims the notebook was written")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("cells ran although the output could never be written")
	}
}
