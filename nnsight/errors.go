package nnsight

import "github.com/gonnsight/gonnsight/module"

// Kinds of errors, for errors.Is. Every error gonnsight returns keeps its detailed message
// (what was wrong and what exists); these say what kind of mistake it was:
//
//	if errors.Is(err, nnsight.ErrUnknownPath) { ... }
var (
	// ErrUnknownPath: a module, labelled value or cached path that does not exist.
	ErrUnknownPath = module.ErrUnknownPath
	// ErrOutOfRange: a list index in a path, or an At axis or range, outside its bounds.
	ErrOutOfRange = module.ErrOutOfRange
	// ErrShape: a value whose shape does not fit where it is set, stacked or wrapped.
	ErrShape = module.ErrShape
	// ErrBadEdit: an edit that cannot be loaded or applied (its parent, node or wrapper).
	ErrBadEdit = module.ErrBadEdit
)
