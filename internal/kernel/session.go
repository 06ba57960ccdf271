package kernel

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gonnsight/gonnsight/internal/procx"
)

// A Jupyter client restarts a kernel by stopping it and starting the kernelspec again with the
// same connection file, and deletes the connection file only after a final shutdown, once the
// kernel has exited. The session directory (named after the connection file) must survive the
// first and go with the second, but the exiting launcher cannot tell them apart. So it leaves a
// small watcher behind that removes the directory once the connection file is gone, unless a
// restarted launcher has claimed the directory in the meantime.

// sessionOwnerFile, inside a session directory, names the launcher using it.
const sessionOwnerFile = ".owner"

// sessionWatchLimit is how long (in half-second polls) the watcher waits for the connection
// file to go before leaving the directory in place: 10 minutes.
const sessionWatchLimit = 1200

// claimSession records this launcher as the user of the session directory and returns the
// record, unique to this launcher.
func claimSession(dir string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	owner := fmt.Sprintf("pid=%d token=%s", os.Getpid(), hex.EncodeToString(b[:]))
	tmp, err := os.CreateTemp(dir, sessionOwnerFile+".tmp-*")
	if err != nil {
		return "", err
	}
	if _, err := tmp.WriteString(owner); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, sessionOwnerFile)); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return owner, nil
}

// sessionOwnedBy reports whether owner (claimSession's record) still owns the session directory.
func sessionOwnedBy(dir, owner string) bool {
	data, err := os.ReadFile(filepath.Join(dir, sessionOwnerFile))
	return err == nil && string(data) == owner
}

// releaseSession runs when the launcher exits: it removes the session directory now if the
// connection file is already gone (or a restarted launcher cannot use it anyway), else leaves
// a detached watcher that removes it once the connection file is deleted (a final shutdown),
// and exits without removing it as soon as another launcher claims it (a restart).
func releaseSession(dir, connFile, owner string) {
	if !sessionOwnedBy(dir, owner) {
		return // claimed by another launcher already
	}
	if _, err := os.Stat(connFile); err != nil {
		os.RemoveAll(dir)
		return
	}
	const script = `conn="$1"; dir="$2"; owner="$3"; limit="$4"; n=0
while [ -e "$conn" ]; do
	[ "$(cat "$dir/` + sessionOwnerFile + `" 2>/dev/null)" = "$owner" ] || exit 0
	n=$((n+1)); [ "$n" -gt "$limit" ] && exit 0
	sleep 0.5
done
[ "$(cat "$dir/` + sessionOwnerFile + `" 2>/dev/null)" = "$owner" ] && rm -rf "$dir"
exit 0`
	cmd := exec.Command("/bin/sh", "-c", script, "gonnsight-session-watcher", connFile, dir, owner, fmt.Sprint(sessionWatchLimit))
	// The watcher outlives the kernel on purpose: it must not carry the tags by which the
	// runner and the launcher end what a kernel left behind.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != procx.RunTagEnv && k != procx.KernelTagEnv {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	detach(cmd)
	if err := cmd.Start(); err != nil {
		// No shell: keep the directory (in the temporary directory) rather than lose a restart's state.
		return
	}
	_ = cmd.Process.Release()
}
