package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/nnsight"
)

// Run the benchmarks with, for example:
//
//	GOEXPERIMENT=simd go test ./bench -run '^$' -bench 'Forward/go/1×128' -benchtime 5x
//
// They build GPT-2 small (124M random weights) per backend, so they never run in a plain
// `go test`; `gonnsight bench` runs the same workloads and prints the tables.

func TestMain(m *testing.M) {
	RunChild() // a load-measuring child (BenchmarkLoad) exits here
	os.Exit(m.Run())
}

func model(b *testing.B, backend string) *nnsight.Model {
	b.Helper()
	m, err := Model(backend)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func perBackend(b *testing.B, fn func(b *testing.B, backend string)) {
	for _, be := range Backends() {
		b.Run(be, func(b *testing.B) { fn(b, be) })
	}
}

func loop(b *testing.B, fn func() error) {
	b.Helper()
	if err := fn(); err != nil { // warm-up: compiles
		b.Fatal(err)
	}
	for b.Loop() {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/1e6, "ms/op")
}

func BenchmarkForward(b *testing.B) {
	perBackend(b, func(b *testing.B, backend string) {
		for _, s := range DefaultShapes {
			b.Run(fmt.Sprintf("%dx%d", s.Batch, s.Seq), func(b *testing.B) {
				m := model(b, backend)
				loop(b, func() error { return Forward(m, s) })
			})
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	perBackend(b, func(b *testing.B, backend string) {
		for _, cache := range []bool{true, false} {
			name := "cache"
			if !cache {
				name = "nocache"
			}
			b.Run(name, func(b *testing.B) {
				m := model(b, backend)
				loop(b, func() error { return Generate(m, cache) })
				b.ReportMetric(float64(b.Elapsed())/float64(b.N)/NewTokens/1e6, "ms/token")
			})
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	dir, err := EnsureModelDir(os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	perBackend(b, func(b *testing.B, backend string) {
		var sum, load time.Duration
		n := 0
		loop(b, func() error {
			wall, res, err := LoadInChild(dir, backend, nil)
			if err != nil {
				return err
			}
			sum += wall - res.Forward
			load += res.Load
			n++
			return nil
		})
		b.ReportMetric(float64(sum)/float64(n)/1e6, "ms-to-loaded")
		b.ReportMetric(float64(load)/float64(n)/1e6, "ms-Load")
	})
}

func BenchmarkTraceOverhead(b *testing.B) {
	s := Shape{1, 128}
	perBackend(b, func(b *testing.B, backend string) {
		b.Run("plain", func(b *testing.B) {
			m := model(b, backend)
			loop(b, func() error { return Forward(m, s) })
		})
		b.Run("traced", func(b *testing.B) {
			m := model(b, backend)
			loop(b, func() error { return Traced(m, s, 1) })
		})
	})
}

func BenchmarkEdit(b *testing.B) {
	s := Shape{1, 128}
	perBackend(b, func(b *testing.B, backend string) {
		b.Run("none", func(b *testing.B) {
			m := model(b, backend)
			loop(b, func() error { return Forward(m, s) })
		})
		b.Run("identity", func(b *testing.B) {
			m := model(b, backend)
			if err := m.LoadEdits(QueryEdit); err != nil {
				b.Fatal(err)
			}
			defer m.ClearEdits()
			loop(b, func() error { return Forward(m, s) })
		})
	})
}

func BenchmarkCompile(b *testing.B) {
	s := Shape{1, 8}
	perBackend(b, func(b *testing.B, backend string) {
		b.Run("cold", func(b *testing.B) {
			m := model(b, backend)
			i := 0
			loop(b, func() error { i++; return Traced(m, s, 1+float64(i)/1024) })
		})
		b.Run("cached", func(b *testing.B) {
			m := model(b, backend)
			loop(b, func() error { return Traced(m, s, 1) })
		})
	})
}

func TestMarkdown(t *testing.T) {
	got := Markdown([]string{"workload", "go", "PyTorch"}, [][]string{{"forward 1×8, ms", "194", "104"}, {"x", "1.50"}})
	// The second row's cell is wider than the header: columns widen to fit.
	want := "" +
		"| workload        |   go | PyTorch |\n" +
		"| --------------- | ---: | ------: |\n" +
		"| forward 1×8, ms |  194 |     104 |\n" +
		"| x               | 1.50 |         |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestReportMarkdown(t *testing.T) {
	ms := func(v ...float64) Stats {
		var s Stats
		for _, x := range v {
			s.Add(time.Duration(x * float64(time.Millisecond)))
		}
		return s
	}
	r := &Report{
		Columns: []string{"go", "onnx:cpu", TorchColumn},
		Rows: []Row{
			{Workload: "forward 1×128", Unit: "ms", Cells: map[string]Stats{"go": ms(400, 420, 410), "onnx:cpu": ms(500), TorchColumn: ms(300, 330, 310)}},
			{Workload: "load", Unit: "ms", Cells: map[string]Stats{"go": ms(0.5)}},
		},
		Pairs: []Pair{{Name: "trace", Backend: "go", Base: ms(100, 102), With: ms(103, 105), Goal: 1.05}},
	}
	got := r.Markdown()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 4+1+3 {
		t.Fatalf("want a 4-line table, a blank line and a 3-line table, got:\n%s", got)
	}
	if !strings.Contains(lines[0], "go ÷ PyTorch") || !strings.Contains(lines[2], "1.32×") || !strings.Contains(lines[2], "1.61×") {
		t.Errorf("ratio columns wrong:\n%s", got)
	}
	if !strings.Contains(lines[7], "1.030×") || !strings.Contains(lines[7], "≤ 1.05×") {
		t.Errorf("overhead row wrong:\n%s", got)
	}
}

func TestParseShapes(t *testing.T) {
	s, err := ParseShapes("1x1, 8×64")
	if err != nil || len(s) != 2 || s[1] != (Shape{8, 64}) || s[1].String() != "8×64" {
		t.Errorf("ParseShapes = %v, %v", s, err)
	}
	for _, bad := range []string{"", "1x", "0x8", "1x2000", "axb"} {
		if _, err := ParseShapes(bad); err == nil {
			t.Errorf("ParseShapes(%q) accepted", bad)
		}
	}
}

func TestStats(t *testing.T) {
	s := Stats{Samples: []time.Duration{5, 1, 3, 100}}
	if s.Median() != 4 || s.Min() != 1 || s.Max() != 100 || (Stats{Samples: []time.Duration{10, 30, 20}}).Scale(2).Median() != 10 {
		t.Errorf("median %v min %v max %v", s.Median(), s.Min(), s.Max())
	}
	if Millis(1234567*time.Microsecond) != "1235" || Millis(12345*time.Microsecond) != "12.3" ||
		Millis(1500*time.Microsecond) != "1.50" || Millis(0) != "–" {
		t.Error("Millis formatting")
	}
}
