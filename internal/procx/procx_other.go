//go:build !unix

package procx

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

const (
	KernelTagEnv = "GONNSIGHT_KERNEL_TAG"
	RunTagEnv    = "GONNSIGHT_RUN_TAG"
)

func NewTag() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Tagged finds nothing on this platform.
func Tagged(name, tag string) []int { return nil }

// KillTagged does nothing on this platform.
func KillTagged(name, tag string, grace time.Duration) []int { return nil }
