package nnsight

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/remote"
)

// openOnHost loads a model on a model host (or finds it resident there) and builds the
// module tree here, with weights that name the host's tensors: nothing of the weights is
// read or copied in this process.
func openOnHost(rb *remote.Backend, source string) (*gpt2.Pretrained, error) {
	reply, err := rb.Client.Open(source)
	if err != nil {
		return nil, err
	}
	w := gpt2.Weights{}
	for _, p := range reply.Params {
		sh := shapes.Make(dtypes.DType(p.DType), p.Dims...)
		t, err := tensors.FromBuffer(rb.WeightBuffer(remote.WeightRef{Model: reply.Model, Name: p.Name, Sum: p.Sum}, sh))
		if err != nil {
			return nil, err
		}
		w[p.Name] = t
	}
	pre, err := gpt2.FromParts(reply.Config, reply.Vocab, reply.Merges, w)
	if err != nil {
		return nil, err
	}
	pre.Source, pre.Dir, pre.Ignored = source, reply.Dir, reply.Ignored
	return pre, nil
}
