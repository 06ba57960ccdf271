// Package fsx holds the careful file operations gonnsight's packages share: reading only
// regular files of a bounded size (a FIFO or a device named like a model file must not hang
// or exhaust the process), atomic writes whose temporary files name their writer so that
// leftovers of killed writers can be swept, and private per-user directories.
package fsx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// OpenRegular opens path for reading without blocking (a FIFO would block a plain open) and
// returns it only if it is a regular file.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := openNoBlock(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file (it is a %s)", path, kind(st.Mode()))
	}
	return f, st, nil
}

// ReadRegular reads a regular file of at most limit bytes.
func ReadRegular(path string, limit int64) ([]byte, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d this file can sensibly hold", path, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", path, limit)
	}
	return data, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file " + m.String()
}

// tempMarker separates a file's name from its writer's pid in temporary names:
// ".NAME.tmp-PID-RANDOM".
const tempMarker = ".tmp-"

// TempName returns a temporary name next to path that records this process's pid, so that
// SweepTemps can tell a killed writer's leftover from a write in progress.
func TempName(path string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+tempMarker+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:]))
}

// CreateTemp creates, exclusively, a TempName for path with mode perm.
func CreateTemp(path string, perm os.FileMode) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := os.OpenFile(TempName(path), os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if err == nil || !errors.Is(err, os.ErrExist) || i > 10 {
			return f, err
		}
	}
}

// WriteFileAtomic writes data to path through a temporary file (mode perm) renamed over it:
// readers see the old content or the new, never a part.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := CreateTemp(path, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil { // the umask may have narrowed it
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// SweepTemps removes, in dir, the temporary files of TempName and of the hub's downloads
// (see TempOwner) whose writing process no longer runs. It returns the
// names removed. Files of live processes are kept.
func SweepTemps(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		pid, ok := TempOwner(e.Name())
		if !ok || e.IsDir() || processAlive(pid) {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			removed = append(removed, e.Name())
		}
	}
	return removed
}

// TempOwner returns the pid recorded in a temporary name made by TempName
// (".NAME.tmp-PID-" and 12 hex digits) or by the hub's downloads ("BLOB.incomplete-PID-" and
// 8 hex digits), if name is one. Nothing else matches, so no user file is ever taken for one.
func TempOwner(name string) (int, bool) {
	m := tempNameRE.FindStringSubmatch(name)
	if m == nil {
		m = incompleteRE.FindStringSubmatch(name)
	}
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	return pid, err == nil && pid > 0
}

var (
	tempNameRE   = regexp.MustCompile(`^\..+\.tmp-([0-9]{1,10})-[0-9a-f]{12}$`)
	incompleteRE = regexp.MustCompile(`^[0-9a-f]{40,64}\.incomplete-([0-9]{1,10})-[0-9a-f]{8}$`)
)
