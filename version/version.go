// Package version holds gonnsight's version string, printed by `gonnsight version` and
// available to anything that reports which gonnsight produced a result.
package version

// Version is gonnsight's version; release builds may set it with
// -ldflags "-X github.com/gonnsight/gonnsight/version.Version=...".
var Version = "0.1.0-dev"
