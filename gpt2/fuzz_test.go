package gpt2

import (
	"strings"
	"testing"
)

// FuzzParseConfig: any bytes give an error naming the file, or a config that validates and
// whose size is bounded (so building it cannot exhaust memory).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"vocab_size":512,"n_positions":32,"n_embd":16,"n_layer":2,"n_head":2,"model_type":"gpt2"}`))
	f.Add([]byte(`{"vocab_size":50257,"n_ctx":1024,"n_embd":768,"n_layer":12,"n_head":12,"n_inner":null}`))
	f.Add([]byte(`{"vocab_size":4294967296,"n_positions":1e12,"n_embd":16,"n_layer":1000000000,"n_head":2}`))
	f.Add([]byte(`{"n_inner":-5,"vocab_size":1,"n_positions":1,"n_embd":1,"n_layer":1,"n_head":1}`))
	f.Add([]byte(`{"model_type":"llama"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig("config.json", data)
		if err != nil {
			if !strings.Contains(err.Error(), "config.json") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parseConfig accepted an invalid config: %v", err)
		}
		if c.NumParams() > maxParams || c.NLayer > maxLayers || c.Inner() > maxInner || c.NEmbd > maxWidth || c.Inner() <= 0 || c.HeadDim() <= 0 {
			t.Fatalf("parseConfig accepted an oversized config %+v", c)
		}
	})
}
