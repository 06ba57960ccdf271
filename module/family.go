package module

import (
	"github.com/gomlx/compute/shapes"
)

// Key names a build-wide value of type T that a model's own modules share while a graph is
// built (GPT-2's position ids, attention mask and KV cache are three). Keys are compared by
// identity, so two packages cannot collide on a name, and Get needs no type assertion.
type Key[T any] struct{ name string }

// NewKey makes a key; name is only for messages.
func NewKey[T any](name string) *Key[T] { return &Key[T]{name: name} }

func (k *Key[T]) String() string { return k.name }

// Set stores v under k for the rest of the build.
func (k *Key[T]) Set(c *Ctx, v T) { c.values[k] = v }

// Get returns the value stored under k, or T's zero value when none was.
func (k *Key[T]) Get(c *Ctx) T {
	v, _ := c.values[k].(T)
	return v
}

// UseTransposedWeights (true) lets modules use TransposedParam copies of 2-D weights where
// their matmuls run faster that way; the runner sets it (nnsight's TransposedLMHead option)
// only on backends that do not choose operand layouts themselves.
var UseTransposedWeights = NewKey[bool]("use transposed weights")

// LanguageModel is what a model family's root module implements so that nnsight can run it
// on token ids: Trace and Invoke over prompts (batched, padded, masked) and Generate with
// the family's own generation cache. nnsight builds the inputs as graph parameters and
// feeds them; the family decides what its modules do with them.
//
// One build, in order: nnsight makes the LMInputs parameters (and, when generating with a
// cache, one parameter per CacheSlot plus the position), calls BindInputs, runs the root's
// Forward on what BindInputs returned, takes Forward's first output as the logits
// [batch, seq, vocab], and, with a cache, calls CacheUpdates for the new state, which it
// feeds back as the next step's CacheInputs.State.
type LanguageModel interface {
	Module
	// LMSpec says the vocabulary, context and end-of-text token.
	LMSpec() LMSpec
	// BindInputs makes one forward's inputs visible to the family's modules (typically
	// with Keys) and returns the inputs of the root's Forward.
	BindInputs(c *Ctx, in LMInputs) []*Node
	// CacheSlots lists the state tensors of the generation cache for batch rows of up to
	// maxLen positions; each starts at zero. Nil: the family has no cache, and Generate
	// recomputes every position at every step.
	CacheSlots(batch, maxLen int) []CacheSlot
	// CacheUpdates returns, after the forward, the new value of each slot (same order and
	// shapes as CacheSlots), nil for a slot this forward did not write (a Skip kept the module
	// that writes it from running): the slot then keeps its old value.
	CacheUpdates(c *Ctx) []*Node
}

// LMSpec is what the runner needs to know of a language model's vocabulary and context.
type LMSpec struct {
	VocabSize    int // token ids are in [0, VocabSize)
	MaxPositions int // the longest sequence it can run (Hugging Face's n_positions); 0: no limit
	EOSTokenID   int // the end-of-text token that stops a generated row; -1: none
}

// LMInputs are one forward's inputs, as graph parameters. A batch is padded on the left
// (or right, with nnsight.PadRight) with pad tokens the mask hides.
type LMInputs struct {
	IDs       *Node        // [batch, seq] int32 token ids
	Positions *Node        // [batch, seq] int32: each row's first real token is at 0
	Mask      *Node        // [batch, keys] bool, false for padding and masked tokens; nil: all visible
	Cache     *CacheInputs // nil without a generation cache
}

// CacheInputs is the generation cache as one step sees it. With a cache, Mask covers MaxLen
// keys (every slot position; those past the prompt are true), and a forward's seq tokens
// sit at absolute positions Pos ... Pos+seq-1.
type CacheInputs struct {
	State  []*Node // the slots, in CacheSlots' order, as the previous step left them
	Pos    *Node   // int32 scalar
	MaxLen int
}

// CacheSlot is one state tensor of a generation cache: Name says what it holds, for errors
// ("transformer.h.3.attn's keys").
type CacheSlot struct {
	Name  string
	Shape shapes.Shape
}
