package hub_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gonnsight/gonnsight/internal/hub"
	"github.com/gonnsight/gonnsight/internal/hubtest"
)

// Resolve a hub id: the files are downloaded into the cache on first use, then found there.
// (A fake hub stands in for https://huggingface.co; normally Options can stay nil.)
func ExampleResolve() {
	srv := hubtest.NewServer(nil, map[string]map[string][]byte{
		"org/tiny": {"config.json": []byte(`{"model_type":"gpt2"}`), "vocab.json": []byte(`{}`), "merges.txt": []byte("#\n")},
	})
	defer srv.Close()
	cache, _ := os.MkdirTemp("", "hub-example")
	defer func() { _ = os.RemoveAll(cache) }()
	online := false
	opts := &hub.Options{Endpoint: srv.URL, CacheDir: cache, Offline: &online}

	for range 2 {
		res, err := hub.Resolve("org/tiny", []string{"config.json"},
			[]string{"tokenizer.json", "vocab.json", "merges.txt"}, opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		_, hasTokenizerJSON := res.Files["tokenizer.json"]
		fmt.Println(filepath.Base(res.Files["config.json"]), len(res.Files), hasTokenizerJSON, res.Downloaded)
	}
	// Output:
	// config.json 3 false [config.json vocab.json merges.txt]
	// config.json 3 false []
}

// A local directory is used as is.
func ExampleResolve_localDir() {
	dir, _ := os.MkdirTemp("", "model")
	defer func() { _ = os.RemoveAll(dir) }()
	_ = os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o644)

	res, err := hub.Resolve(dir, []string{"config.json"}, []string{"tokenizer.json"}, nil)
	fmt.Println(err, res.Local, len(res.Files), hub.IsLocalDir(dir))
	// Output: <nil> true 1 true
}
