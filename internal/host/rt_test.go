package host_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/bench"
	"github.com/gonnsight/gonnsight/internal/host"
	"github.com/gonnsight/gonnsight/nnsight"
)

// BenchmarkRoundTrip: a traced 1×8 forward of the 500 MB model (written by `gonnsight
// bench`) in-process and through a host, with the host's own time beside it.
func BenchmarkRoundTrip(b *testing.B) {
	th, models := benchModels(b)
	for _, mode := range []string{"local", "host"} {
		m := models[mode]
		if err := bench.Traced(m, bench.CellShape, 2); err != nil {
			b.Fatal(err)
		}
		b.Run(mode, func(b *testing.B) {
			s0 := th.Stats()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				if err := bench.Traced(m, bench.CellShape, 2); err != nil {
					b.Fatal(err)
				}
			}
			if mode == "host" {
				s1 := th.Stats()
				n := float64(b.N)
				b.ReportMetric(float64(s1.ExecNanos-s0.ExecNanos)/n/1e6, "exec-ms/op")
				b.ReportMetric(float64(s1.ServeNanos-s0.ServeNanos)/n/1e6, "serve-ms/op")
				b.ReportMetric(float64(time.Since(t0))/n/1e6, "wall-ms/op")
			}
		})
	}
}

// BenchmarkGenerate: 8 greedy tokens with the KV cache, in-process and through a host.
func BenchmarkGenerate(b *testing.B) {
	th, models := benchModels(b)
	for _, mode := range []string{"local", "host"} {
		m := models[mode]
		gen := func() error {
			_, err := m.Generate([]int{1, 2, 3, 4, 5, 6, 7, 8}, 8, nil, nnsight.IgnoreEOS())
			return err
		}
		if err := gen(); err != nil {
			b.Fatal(err)
		}
		b.Run(mode, func(b *testing.B) {
			s0 := th.Stats()
			for i := 0; i < b.N; i++ {
				if err := gen(); err != nil {
					b.Fatal(err)
				}
			}
			if mode == "host" {
				s1 := th.Stats()
				b.ReportMetric(float64(s1.ExecNanos-s0.ExecNanos)/float64(b.N)/1e6, "exec-ms/op")
				b.ReportMetric(float64(s1.InputBytes-s0.InputBytes)/float64(b.N)/1e6, "MB-sent/op")
				b.ReportMetric(float64(s1.ServeNanos-s0.ServeNanos)/float64(b.N)/1e6, "serve-ms/op")
			}
		})
	}
}

// benchModels is the bench's 500 MB model in-process ("local") and through a new host ("host").
func benchModels(b *testing.B) (*testHost, map[string]*nnsight.Model) {
	dir := bench.ModelDir()
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		b.Skip("no bench model: run `gonnsight bench --only host` once")
	}
	th := startHost(b, host.Config{ModelDirs: []string{filepath.Dir(dir)}})
	return th, map[string]*nnsight.Model{
		"local": nnsight.LanguageModel(dir, nnsight.WithBackend("go")),
		"host":  nnsight.LanguageModel(dir, nnsight.WithEngine(th.engine(b))),
	}
}
