package experiments_test

import (
	"fmt"
	"path/filepath"

	"github.com/gonnsight/gonnsight/experiments"
	"github.com/gonnsight/gonnsight/nnsight"
)

// A residual-stream patching sweep in one call, on the tiny reference model of the tests
// (no tokenizer: prompts are token ids). Patching the last block's output at the last
// position restores the clean run's metric exactly.
func ExamplePatch() {
	m := nnsight.LanguageModel(filepath.Join("..", "testdata", "gpt2", "tiny-a"), nnsight.WithBackend("go"))
	clean := []int{12, 340, 77, 205, 9, 130}
	corrupt := []int{12, 340, 266, 205, 9, 130}
	r, err := experiments.Patch(m, experiments.ResidPost, clean, corrupt, experiments.LogitDiff(5, 7))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("shape:", r.Shape())
	fmt.Printf("clean %.4f, corrupted %.4f\n", r.Clean, r.Corrupt)
	fmt.Printf("last layer, last position: %.4f\n", r.At(-1, -1))
	fmt.Printf("layer 0, position 0 (before the corrupted token): %.4f\n", r.At(0, 0))
	n, _ := r.Normalized()
	fmt.Println(n)
	// Output:
	// shape: [2 6]
	// clean 0.9224, corrupted 0.7383
	// last layer, last position: 0.9224
	// layer 0, position 0 (before the corrupted token): 0.7383
	// activation patching: resid_post, clean → corrupted (normalized: 0 = corrupted, 1 = clean) (rows: layer, columns: position); clean 0.9224, corrupted 0.7383
	//    0 #12  1 #340     2 #266  3 #205     4 #9  5 #130
	// -  -----  ------  ---------  ------  -------  ------
	// 0      0       0  -0.003061  0.1088  0.06973  0.9633
	// 1      0       0          0       0        0       1
}
