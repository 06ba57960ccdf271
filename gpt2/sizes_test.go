package gpt2_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/golden"
)

// A config.json claiming sizes its weights do not hold is refused before anything is
// allocated for them: a clear error within a second, never a fatal out-of-memory.
func TestLoadAbsurdConfigSizes(t *testing.T) {
	src := filepath.Join(golden.Root(), "testdata", "gpt2", "tiny-a")
	for _, c := range []struct {
		field string
		value int
		want  []string
	}{
		{"n_layer", 1_000_000_000, []string{"n_layer", "1000000000", "too large"}},
		{"n_layer", 4000, []string{"n_layer=4000", "holds 2 layers"}}, // under the limit: checked against the file
		{"n_positions", 100_000, []string{"n_positions=100000", "[32 16]"}},
		{"n_positions", 1_000_000_000_000, []string{"n_positions", "1000000000000"}},
		{"n_embd", 1 << 40, []string{"n_embd"}},
		{"vocab_size", 1 << 40, []string{"vocab_size"}},
		{"n_inner", 1 << 40, []string{"n_inner"}},
	} {
		t.Run(c.field+"="+itoa(c.value), func(t *testing.T) {
			dir := copyDir(t, src)
			cfgPath := filepath.Join(dir, "config.json")
			data, _ := os.ReadFile(cfgPath)
			s := string(data)
			i := strings.Index(s, `"`+c.field+`":`)
			j := i + strings.IndexAny(s[i:], ",\n}")
			s = s[:i] + `"` + c.field + `": ` + itoa(c.value) + s[j:]
			if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := gpt2.LoadDir(dir, nil)
			if err == nil {
				t.Fatal("loaded a config with an absurd " + c.field)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// make-tiny's sizes are checked before the weights are drawn.
func TestMakeTinyAbsurdSizes(t *testing.T) {
	for _, o := range []gpt2.TinyOptions{
		{Layers: 1_000_000_000},
		{Positions: 1 << 40},
		{Embd: 1 << 32, Heads: 1},
		{Layers: 4000, Embd: 4096, Heads: 32}, // ~800 G floats: fits no memory
	} {
		start := time.Now()
		err := gpt2.MakeTiny(filepath.Join(t.TempDir(), "m"), o)
		if err == nil || !(strings.Contains(err.Error(), "too large") || strings.Contains(err.Error(), "at most")) {
			t.Errorf("%+v: want a clear size error, got %v", o, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%+v: took %v", o, d)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
