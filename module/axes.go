package module

// Axis names say which axis of a value is what: attn_output[:, :, h*hd:(h+1)*hd] is head h,
// while the same slice on axis 1 would be positions. Labels carry their names (LabelAxes);
// module outputs get theirs from the model, because a generic layer (a Conv1D, a LayerNorm)
// cannot know what its input's axes mean, while the model that wires it can.

// AxesNamer is implemented by a root module that knows the axes of its modules' outputs.
type AxesNamer interface {
	// OutputAxes names each axis of the first output of the module at path, or returns nil
	// when the model does not say.
	OutputAxes(path string) []string
}

// OutputAxes returns what root says the axes of the module at path are, or nil.
func OutputAxes(root Module, path string) []string {
	if n, ok := root.(AxesNamer); ok {
		return n.OutputAxes(NormalizePath(path))
	}
	return nil
}
