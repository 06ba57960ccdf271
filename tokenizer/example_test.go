package tokenizer_test

import (
	"fmt"

	"github.com/gonnsight/gonnsight/tokenizer"
)

func ExampleGPT2() {
	tok := tokenizer.GPT2()
	ids := tok.Encode("The Eiffel Tower is in the city of")
	fmt.Println(ids)
	fmt.Printf("%q\n", tok.TokenString(ids[1]))
	text, _ := tok.Decode(ids)
	fmt.Println(text)
	// Output:
	// [464 412 733 417 8765 318 287 262 1748 286]
	// " E"
	// The Eiffel Tower is in the city of
}
