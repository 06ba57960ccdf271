package gpt2_test

import (
	"fmt"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/module"
)

// Read a model's config.json and build its module tree: Hugging Face's names, one GoMLX
// parameter per safetensors tensor.
func ExampleNew() {
	cfg, err := gpt2.ReadConfig("../testdata/gpt2/tiny-a/config.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	model := gpt2.New(cfg)
	fmt.Printf("%d layers, %d heads of %d, vocabulary %d\n", cfg.NLayer, cfg.NHead, cfg.HeadDim(), cfg.VocabSize)
	for _, p := range module.ParamsOf(model.Transformer.H.Items[0].(*gpt2.Block).Attn.CAttn) {
		fmt.Println(p.Name, p.Shape)
	}
	// A config that cannot be a GPT-2 is an error naming the field.
	bad := cfg
	bad.NHead = 3
	fmt.Println(bad.Validate())
	// Output:
	// 2 layers, 2 heads of 8, vocabulary 512
	// weight [16 48]
	// bias [48]
	// n_embd 16 is not divisible by n_head 3
}
