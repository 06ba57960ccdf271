package gpt2

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// DefaultID is the model gonnsight uses when none is named (nnsight.LanguageModel(""), the
// CLI's --model, the tutorials): a small GPT-2 trained on the Brown Corpus by `gonnsight
// train`, committed in the repository under models/brown-gpt2 (its README.md is the model
// card). The random TinyID model stays for fast unit tests.
const DefaultID = "gonnsight/brown-gpt2"

// defaultName is DefaultID's directory under models/.
const defaultName = "brown-gpt2"

// DefaultDir finds the trained default model: $GONNSIGHT_HOME/models/brown-gpt2 when it
// holds a model, otherwise models/brown-gpt2 in the gonnsight source tree this package was
// compiled from (a checkout, or the module cache: the files travel with the module).
func DefaultDir() (string, error) {
	var tried []string
	if home := os.Getenv("GONNSIGHT_HOME"); home != "" {
		dir := filepath.Join(home, "models", defaultName)
		if tinyComplete(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "..", "models", defaultName)
		if tinyComplete(dir) {
			return filepath.Clean(dir), nil
		}
		tried = append(tried, filepath.Clean(dir))
	}
	return "", fmt.Errorf("the default model %s is not in %v: it ships in gonnsight's repository under models/%s "+
		"(copy that directory to $GONNSIGHT_HOME/models/%s, or recreate it with `gonnsight train --out DIR`, see its README.md)",
		DefaultID, tried, defaultName, defaultName)
}

// isDefaultID reports whether Load should map idOrDir to the trained default model.
func isDefaultID(idOrDir string) bool {
	return idOrDir == "" || idOrDir == DefaultID || idOrDir == "brown"
}
