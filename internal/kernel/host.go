package kernel

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/internal/remote"
)

// HostEnv set to 0 starts no model host: every cell then loads its models itself.
const HostEnv = "GONNSIGHT_HOST"

// Files of the model host in the session directory.
const (
	HostSocket = "host.sock"
	HostToken  = "host.token"
)

// UsesOwnHost says whether a kernel launched now starts a model host of its own: when it
// has a host command, unless $GONNSIGHT_HOST=0 or $GONNSIGHT_REMOTE already names a host
// (cells then use that one, as any program would).
func UsesOwnHost(hasCommand bool) bool {
	return hasCommand && os.Getenv(HostEnv) != "0" && os.Getenv(remote.EnvRemote) == ""
}

// maxSocketPath is the longest Unix socket path Linux and macOS accept (sun_path, less one).
const maxSocketPath = 103

// startHost starts the kernel's model host (argv plus --listen and --token-file) with its
// socket and token in the session directory, waits until it accepts connections, and
// returns what cells need in their environment to use it and the function that ends it.
func startHost(argv []string, sessionDir string, env []string, log io.Writer) (cellEnv []string, stop func(), err error) {
	sock := filepath.Join(sessionDir, HostSocket)
	if len(sock) > maxSocketPath {
		return nil, nil, fmt.Errorf("the socket path %s is longer than %d bytes", sock, maxSocketPath)
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, nil, err
	}
	tokFile := filepath.Join(sessionDir, HostToken)
	if err := fsx.WriteFileAtomic(tokFile, []byte(hex.EncodeToString(r[:])+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	args := append(append([]string{}, argv[1:]...), "--listen", "unix:"+sock, "--token-file", tokFile)
	cmd := exec.Command(argv[0], args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting the model host (%s): %w", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.Remove(sock)
		_ = os.Remove(tokFile)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, nil, fmt.Errorf("the model host exited at start: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, errors.New("the model host did not listen within 30 s")
		}
	}
	return []string{remote.EnvRemote + "=unix:" + sock, remote.EnvTokenFile + "=" + tokFile, remote.EnvFallback + "=1"}, stop, nil
}
