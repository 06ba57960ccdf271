package fsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// EnsurePrivateDir makes path a directory only this user can enter (mode 0700), creating its
// missing parents with mode 0700. An existing path must be a real directory (not a symbolic
// link, which another user may have planted) owned by this user; a too-open mode is narrowed.
func EnsurePrivateDir(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return CheckPrivateDir(path)
}

// CheckPrivateDir checks that path is a directory (not a symbolic link) owned by this user,
// and narrows its mode to 0700 if others could read or enter it.
func CheckPrivateDir(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	switch {
	case st.Mode()&os.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Errorf("%s is a symbolic link (to %s), not a directory: refusing to follow it (another user may have planted it); remove it", path, target)
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory (it is a %s); remove it", path, kind(st.Mode()))
	}
	if uid, ok := ownerUID(st); ok && uid != os.Getuid() {
		return fmt.Errorf("%s belongs to user id %d, not to you (user id %d): another user made it, so its contents cannot be trusted; remove it or choose another location", path, uid, os.Getuid())
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o700); err != nil {
			return fmt.Errorf("%s has mode %v, open to other users, and cannot be narrowed to 0700: %w", path, st.Mode().Perm(), err)
		}
	}
	return nil
}

// PrivateBase returns a per-user directory for short-lived private state named name:
// $XDG_RUNTIME_DIR/name when that is set and this user's, else the user's cache directory
// (~/.cache/gonnsight/name), else TMP/name-UID. Nothing is created.
func PrivateBase(name string) string {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
		if st, err := os.Stat(rt); err == nil && st.IsDir() {
			if uid, ok := ownerUID(st); !ok || uid == os.Getuid() {
				return filepath.Join(rt, name)
			}
		}
	}
	if c, err := os.UserCacheDir(); err == nil && filepath.IsAbs(c) {
		return filepath.Join(c, "gonnsight", name)
	}
	return filepath.Join(os.TempDir(), name+"-"+strconv.Itoa(os.Getuid()))
}
