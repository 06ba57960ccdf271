package nnsight

// sessionSaveEdits records the loaded edits in the notebook session store, if any.
func sessionSaveEdits(m *Model) error { return nil }
