package module

import (
	"errors"
	"fmt"
)

// Kinds of user errors. Errors that gonnsight returns wrap one or more of them, so that a
// program can tell them apart with errors.Is while the message stays the detailed one
// ("no module \"transformer.h.0.mpl\" ...; nearest valid paths: ...").
var (
	// ErrUnknownPath: a module, labelled value or graph node path that does not exist.
	ErrUnknownPath = errors.New("unknown path")
	// ErrOutOfRange: an index (a list item in a path, an At range or axis) outside its range.
	ErrOutOfRange = errors.New("index out of range")
	// ErrShape: a value whose shape does not fit where it is put.
	ErrShape = errors.New("shape mismatch")
	// ErrBadEdit: an edit that cannot be applied to the model.
	ErrBadEdit = errors.New("bad edit")
)

// Error is a user-facing error. While a graph is built it travels as a panic (Errorf) and is
// turned back into an error at the API boundary (engine.Catch), so it must carry its kinds
// itself: errors.Is(err, ErrShape) sees through it however it was wrapped on the way.
type Error struct {
	Msg   string
	Kinds []error // sentinels (ErrShape, ...) and underlying causes errors.Is can find
}

func (e *Error) Error() string { return e.Msg }

// Unwrap exposes the kinds to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return e.Kinds }

// Errorf panics with a *Error of no particular kind: used while a graph is built, caught at
// the API boundary.
func Errorf(format string, args ...any) {
	panic(&Error{Msg: fmt.Sprintf(format, args...)})
}

// KindErrorf panics with a *Error of the given kind (ErrShape, ...).
func KindErrorf(kind error, format string, args ...any) {
	panic(NewError(kind, format, args...))
}

// NewError returns a *Error of the given kind with fmt's formatting; errors among args stay
// reachable through errors.Is and errors.As as well.
func NewError(kind error, format string, args ...any) *Error {
	kinds := []error{kind}
	for _, a := range args {
		if err, ok := a.(error); ok {
			kinds = append(kinds, err)
		}
	}
	return &Error{Msg: fmt.Errorf(format, args...).Error(), Kinds: kinds}
}

// WithKind returns err, with the same message, as one of the given kinds as well (nil stays
// nil): e.g. an unknown parent path met while loading an edit is also a bad edit.
func WithKind(err error, kinds ...error) error {
	if err == nil {
		return nil
	}
	return &Error{Msg: err.Error(), Kinds: append(append([]error(nil), kinds...), err)}
}
