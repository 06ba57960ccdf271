// Package tests holds gonnsight's end-to-end tests: the command line checked against the
// reference fixtures (an independent PyTorch GPT-2), the hub over real HTTP, and error paths.
package tests
