//go:build !unix

package safetensors

import (
	"io"
	"os"
)

// mapFile reads the file into memory where mmap is not available; views
// are then into this private copy rather than a mapping.
func mapFile(fd *os.File, size int) ([]byte, func([]byte) error, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(fd, 0, int64(size)), b); err != nil {
		return nil, nil, err
	}
	return b, func([]byte) error { return nil }, nil
}
