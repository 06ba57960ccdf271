package hub

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar writes "\rname  12.3 MB / 500.0 MB  2%  10.1 MB/s" at most a few times a second.
type progressBar struct {
	mu          sync.Mutex
	w           io.Writer
	name        string
	total, done int64
	start, last time.Time
	width       int
}

func newProgressBar(w io.Writer, name string, total int64) *progressBar {
	now := time.Now()
	p := &progressBar{w: w, name: name, total: total, start: now, last: now}
	p.print()
	return p
}

func (p *progressBar) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += int64(len(b))
	if time.Since(p.last) >= 200*time.Millisecond {
		p.last = time.Now()
		p.print()
	}
	return len(b), nil
}

func (p *progressBar) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print()
	if !ok {
		fmt.Fprint(p.w, " failed")
	}
	fmt.Fprintln(p.w)
}

func (p *progressBar) print() {
	line := "Downloading " + p.name + "  " + humanBytes(p.done)
	if p.total >= 0 {
		line += " / " + humanBytes(p.total)
		if p.total > 0 {
			line += fmt.Sprintf("  %3d%%", p.done*100/p.total)
		}
	}
	if el := time.Since(p.start).Seconds(); el > 0 && p.done > 0 {
		line += "  " + humanBytes(int64(float64(p.done)/el)) + "/s"
	}
	pad := ""
	if len(line) < p.width {
		pad = strings.Repeat(" ", p.width-len(line))
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}

// humanBytes formats n with decimal units, as huggingface_hub's progress bars.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, "kMGTP"[i])
}
