package remote

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

// The wire format between clients and a host: HTTP POSTs with gob bodies (see host.go's
// package doc for why). Every request carries "Authorization: Bearer TOKEN".
const (
	PathHello  = "/v1/hello"
	PathOpen   = "/v1/open"
	PathRun    = "/v1/run"
	PathWeight = "/v1/weight"
	PathStats  = "/v1/stats"
	PathValue  = "/v1/value"
	PathKeep   = "/v1/keep"
	PathKept   = "/v1/kept"
	// StatusUnknownProgram answers a run that named a program by hash the host does not
	// hold (it was evicted, or the host restarted): the client sends it again in full.
	StatusUnknownProgram = 409
)

// Hello is what a host says about itself.
type Hello struct {
	Backend   string   // the host's backend configuration ("go", "xla:cuda")
	Ops       []string // the ops its backend implements (compute.OpType names)
	DTypes    []int
	Functions bool
	OpsetID   uint64
	PID       int
}

// OpenRequest asks a host to load a model (or find it loaded).
type OpenRequest struct{ Source string }

// ParamInfo describes one resident weight.
type ParamInfo struct {
	Name  string
	DType int
	Dims  []int
	Sum   uint32 // CRC-32C of the weight's bytes
}

// OpenReply names the resident model and gives what a client needs to build the module
// tree and tokenize (a few MB at most): never the weights.
type OpenReply struct {
	Model         string // the host's id for the model
	Dir           string // where the host read it (for messages)
	Config        []byte // config.json
	Vocab, Merges []byte // the tokenizer (empty: none)
	Params        []ParamInfo
	Ignored       []string
}

// WeightRef names a weight resident on the host.
type WeightRef struct {
	Model, Name string
	Sum         uint32
}

// Tensor is a value on the wire: its data, or (in a reply) the id of a value the host kept
// resident for the client's session instead of sending it.
type Tensor struct {
	DType    int
	Dims     []int
	Data     []byte
	Resident uint64
}

// Shape is t's shape.
func (t Tensor) Shape() shapes.Shape { return shapes.Make(dtypes.DType(t.DType), t.Dims...) }

// Check says whether t's data fits its shape.
func (t Tensor) Check() error {
	dt := dtypes.DType(t.DType)
	if dt == dtypes.InvalidDType || dt.Size() == 0 && dt != dtypes.Bool {
		return fmt.Errorf("bad dtype %d", t.DType)
	}
	if len(t.Dims) > maxRank {
		return fmt.Errorf("rank %d", len(t.Dims))
	}
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || d > 1<<40 {
			return fmt.Errorf("bad dimension %d", d)
		}
		n *= int64(d)
		if n > 1<<40 {
			return fmt.Errorf("too many elements")
		}
	}
	if t.Resident != 0 && len(t.Data) == 0 {
		return nil
	}
	if n*int64(max(1, dt.Size())) != int64(len(t.Data)) {
		return fmt.Errorf("shape %s has %d bytes of data, wants %d", t.Shape(), len(t.Data), n*int64(max(1, dt.Size())))
	}
	return nil
}

// Input is one program input: a resident weight, a value sent with the request, or a value
// an earlier run of the same session left resident on the host.
type Input struct {
	Weight   *WeightRef
	Value    *Tensor
	Resident uint64
}

// RunRequest runs a program. Program is empty when the client believes the host holds
// the program with this Hash.
type RunRequest struct {
	Name    string
	Hash    [32]byte
	Program []byte
	Inputs  []Input
	// Session names the client process whose resident values the request may use and make;
	// Release lists values it no longer holds.
	Session [16]byte
	Release []uint64
}

// ValueRequest reads a resident value.
type ValueRequest struct {
	Session [16]byte
	ID      uint64
}

// RunReply holds the program's outputs.
type RunReply struct {
	Outputs  []Tensor
	Compiled bool // this run compiled the program (a miss of the host's cache)
}

// WeightRequest reads a resident weight (a client that wants a weight's values).
type WeightRequest struct{ Ref WeightRef }

// Stats are a host's counters.
type Stats struct {
	Backend     string
	Models      []string
	WeightBytes int64
	Programs    int
	Compiles    int
	Hits        int
	Runs        int
	Errors      int
	RSSBytes    int64
	Refused     int
	// ExecNanos and ServeNanos add up the time of runs: in the backend's Execute, and from
	// the request's arrival to its reply's encoding.
	ExecNanos, ServeNanos int64
	// InputBytes and OutputBytes add up the values sent as run inputs (weights never are)
	// and returned as outputs; ResidentBytes is what sessions hold on the host now.
	InputBytes, OutputBytes, ResidentBytes int64
	Sessions                               int
}

// KeepRequest keeps a value on the host under a name, for later programs and processes
// (nnsight.Keep with a remote host): a value the session already holds there (Resident), or
// one sent with the request.
type KeepRequest struct {
	Name     string
	Session  [16]byte
	Resident uint64
	Value    *Tensor
}

// KeptRequest reads a kept value (Name), or lists them (Name empty: the reply's Names).
type KeptRequest struct{ Name string }

// KeptReply is a kept value, or the list of names.
type KeptReply struct {
	Value *Tensor
	Names []string
}
