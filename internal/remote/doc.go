// Package remote sends a trace's work to a model host: Backend is a compute.Backend that
// records the programs GoMLX builds on it (each op checked by a local shadow builder), and
// Replay rebuilds such a program on the host's backend, validating it op by op.
//
// Three phases, as in GoMLX itself: recording (graph building, in the client: every
// compute.Function call becomes an op in a byte stream, generated from compute's interface
// by ./gen), replaying (on the host: the same calls on a real backend, with limits on ops,
// sizes and FLOPs), and running (an executable whose Execute sends the inputs — weights by
// name, the client's values by content, earlier outputs by id — and gets the outputs back).
// The wire between them is in wire.go; the host itself is internal/host.
package remote
