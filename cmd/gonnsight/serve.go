package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/internal/host"
	"github.com/gonnsight/gonnsight/internal/remote"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "run a model host: models stay loaded, clients send programs (GONNSIGHT_REMOTE)",
		usage:   "--listen ADDR --token-file F [--models DIR,...]",
		examples: []string{
			"gonnsight serve --listen unix:/run/user/1000/gonnsight.sock --token-file ~/.gonnsight-token",
			"gonnsight serve --listen 127.0.0.1:7733 --token-file token --models /data/models",
			"GONNSIGHT_REMOTE=http://127.0.0.1:7733 GONNSIGHT_TOKEN=$(cat token) gonnsight logits --text hi",
		},
		flags: func(fs *flag.FlagSet) func(args []string) error {
			listen := fs.String("listen", "", "where to listen: unix:/path/to/socket, an absolute socket path, or HOST:PORT")
			tokenFile := fs.String("token-file", "", "file holding the clients' token, or one \"NAME TOKEN\" line per user (each user's kept values\nand sessions are their own); created, 0600, with a random token if missing")
			models := fs.String("models", "", "comma-separated directories under which clients may name local models (hub ids always resolve through the HF cache)")
			private := fs.Bool("private", false, "a private host (the kernel's): clients may name any local model directory this user can read; never for a shared host")
			backend := fs.String("backend", "", "the host's backend (default: as GOMLX_BACKEND, else the best available)")
			conc := fs.Int("max-concurrent", 0, "runs executing at once (default 4)")
			timeout := fs.Duration("run-timeout", 2*time.Minute, "longest a run may take")
			maxValue := fs.Int64("max-value-bytes", 0, "largest value a program may make (default 2 GiB)")
			maxTotal := fs.Int64("max-memory-bytes", 0, "bound on all the values one program makes together: its memory (default 64 GiB)")
			maxBody := fs.Int64("max-body-bytes", 0, "bound on a request's body (default 1 GiB)")
			maxFLOPs := fs.Float64("max-flops", 0, "bound on a program's dot-product FLOPs, counted from shapes before it runs (default 1e14)")
			inline := fs.Int64("inline-bytes", 0, "outputs larger than this stay on the host for the client to read or reuse (default 64 KiB; -1: none)")
			maxResident := fs.Int64("max-resident-bytes", 0, "bound on the outputs kept for clients (default 4 GiB)")
			return func(args []string) error {
				if len(args) > 0 {
					return usageErrorf("unexpected arguments %v", args)
				}
				if *listen == "" || *tokenFile == "" {
					return usageErrorf("--listen and --token-file are required")
				}
				token, err := readOrMakeToken(*tokenFile)
				if err != nil {
					return err
				}
				var dirs []string
				for _, d := range strings.Split(*models, ",") {
					if d = strings.TrimSpace(d); d != "" {
						dirs = append(dirs, d)
					}
				}
				h, err := host.New(host.Config{Backend: *backend, Token: token, ModelDirs: dirs, AnyModelDir: *private, MaxConcurrent: *conc, MaxRequestBytes: *maxBody,
					RunTimeout: *timeout, Limits: remote.Limits{MaxValueBytes: *maxValue, MaxTotalBytes: *maxTotal, MaxFLOPs: *maxFLOPs},
					InlineBytes: *inline, MaxResidentBytes: *maxResident, Log: stderr})
				if err != nil {
					return err
				}
				l, err := host.Listen(*listen)
				if err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
				defer stop()
				fmt.Fprintf(stderr, "gonnsight host: serving on %s, backend %s, pid %d\n", *listen, h.Backend(), os.Getpid())
				if !strings.HasPrefix(*listen, "unix:") && !strings.HasPrefix(*listen, "/") && !strings.HasPrefix(*listen, "127.") && !strings.HasPrefix(*listen, "localhost:") {
					fmt.Fprintln(stderr, "gonnsight host: warning: plain HTTP on a network address: the token travels in clear; put TLS (a reverse proxy) or an SSH tunnel in front")
				}
				err = h.Serve(ctx, l)
				if path, ok := strings.CutPrefix(*listen, "unix:"); ok {
					os.Remove(path)
				} else if strings.HasPrefix(*listen, "/") {
					os.Remove(*listen)
				}
				return err
			}
		},
	})
}

// readOrMakeToken reads the token file, or creates it (0600) with a random token.
func readOrMakeToken(path string) (string, error) {
	b, err := fsx.ReadRegular(path, 4096)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("token file %s is empty", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(r[:])
	if err := fsx.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "gonnsight host: wrote a new token to %s\n", path)
	return tok, nil
}

func init() {
	register(&command{
		name:     "host-stats",
		summary:  "print the counters of the model host GONNSIGHT_REMOTE names (models, programs, hits, memory) as JSON",
		examples: []string{"GONNSIGHT_REMOTE=unix:$GONNSIGHT_SESSION_DIR/host.sock GONNSIGHT_TOKEN_FILE=$GONNSIGHT_SESSION_DIR/host.token gonnsight host-stats"},
		flags: func(fs *flag.FlagSet) func(args []string) error {
			return func(args []string) error {
				if len(args) > 0 {
					return usageErrorf("unexpected arguments %v", args)
				}
				c, err := remote.FromEnv()
				if err != nil {
					return err
				}
				if c == nil {
					return usageErrorf("set %s (and %s or %s) to the host's address", remote.EnvRemote, remote.EnvToken, remote.EnvTokenFile)
				}
				st, err := c.Stats()
				if err != nil {
					return err
				}
				b, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(stdout, string(b))
				return nil
			}
		},
	})
}
