package display

import (
	"encoding/gob"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"
)

var notebookTested bool

// TestShowInNotebook plays GoNB's side of its named pipes and checks that a display arrives
// as one bundle with both text/html and text/plain, followed by a sync that completes, and
// that a heatmap's bundle also carries its picture as image/svg+xml.
func TestShowInNotebook(t *testing.T) {
	if notebookTested {
		t.Skip("gonbui keeps the pipes of the first run open for the whole process")
	}
	notebookTested = true
	dir := t.TempDir()
	toKernel, fromKernel := filepath.Join(dir, "pipe"), filepath.Join(dir, "pipe_back")
	for _, p := range []string{toKernel, fromKernel} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skipf("no named pipes here: %v", err)
		}
	}
	t.Setenv(protocol.GONB_PIPE_ENV, toKernel)
	t.Setenv(protocol.GONB_PIPE_BACK_ENV, fromKernel)
	gonbui.IsNotebook = true
	defer func() { gonbui.IsNotebook = false }()

	received := make(chan *protocol.DisplayData, 4)
	go func() {
		r, err := os.OpenFile(toKernel, os.O_RDONLY, 0)
		if err != nil {
			close(received)
			return
		}
		defer r.Close()
		w, err := os.OpenFile(fromKernel, os.O_WRONLY, 0)
		if err != nil {
			close(received)
			return
		}
		defer w.Close()
		dec, enc := gob.NewDecoder(r), gob.NewEncoder(w)
		for {
			data := &protocol.DisplayData{}
			if err := dec.Decode(data); err != nil {
				close(received)
				return
			}
			if v, ok := data.Data[protocol.MIMECommValue]; ok {
				var id any
				switch cv := v.(type) {
				case protocol.CommValue:
					id = cv.Value
				case *protocol.CommValue:
					id = cv.Value
				}
				_ = enc.Encode(&protocol.CommValue{Address: protocol.GonbuiSyncAckAddress, Value: id})
				continue
			}
			received <- data
		}
	}()

	done := make(chan struct{})
	go func() {
		ShowTensor([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2})
		ShowHeatmap([]float32{-1, 2}, 1, 2, nil, nil, "h", Axes("r", "c"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ShowTensor did not return: the sync was never acknowledged")
	}
	select {
	case data, ok := <-received:
		if !ok {
			t.Fatal("the pipe closed before a display arrived")
		}
		text := tensorText([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2})
		if got := data.Data[protocol.MIMETextPlain]; got != text {
			t.Errorf("text/plain = %q, want %q", got, text)
		}
		if got := data.Data[protocol.MIMETextHTML]; got != tensorHTML([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2}) {
			t.Errorf("text/html = %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no display arrived")
	}
	select {
	case data, ok := <-received:
		if !ok {
			t.Fatal("the pipe closed before the heatmap arrived")
		}
		svg := heatmapSVG([]float32{-1, 2}, 1, 2, nil, nil, "h", Axes("r", "c"))
		if got, _ := data.Data[protocol.MIMEImageSVG].(string); got == "" || got != svg {
			t.Errorf("image/svg+xml = %.100q, want heatmapSVG's picture", got)
		}
		if got, _ := data.Data[protocol.MIMETextHTML].(string); !strings.Contains(got, `<img class="gns-picture"`) {
			t.Errorf("the heatmap's text/html has no <img>: %.200q", got)
		}
		if got := data.Data[protocol.MIMETextPlain]; got != HeatmapText([]float32{-1, 2}, 1, 2, nil, nil, "h") {
			t.Errorf("text/plain = %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heatmap display arrived")
	}
}
