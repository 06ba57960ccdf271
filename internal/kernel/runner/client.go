package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/gonnsight/gonnsight/internal/procx"
)

// connectionInfo is the content of a Jupyter connection file.
type connectionInfo struct {
	ShellPort       int    `json:"shell_port"`
	IOPubPort       int    `json:"iopub_port"`
	StdinPort       int    `json:"stdin_port"`
	ControlPort     int    `json:"control_port"`
	HBPort          int    `json:"hb_port"`
	IP              string `json:"ip"`
	Key             string `json:"key"`
	Transport       string `json:"transport"`
	SignatureScheme string `json:"signature_scheme"`
	KernelName      string `json:"kernel_name"`
}

// kernelClient owns one kernel process and the client ends of its shell, control and iopub channels.
type kernelClient struct {
	spec       *Kernelspec
	sess       *session
	conn       connectionInfo
	runtimeDir string
	connFile   string
	log        io.Writer

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the kernel process has exited
	exitErr error
	stderr  *tailBuffer

	ctx     context.Context
	cancel  context.CancelFunc
	shell   zmq4.Socket
	control zmq4.Socket
	iopub   zmq4.Socket

	tag string // procx.RunTagEnv of the kernel's processes
	// stop is Options.Stop: waits for the kernel give up when it is closed.
	stop      <-chan struct{}
	connected bool // the channels are dialed (connect succeeded)

	shellCh, controlCh, iopubCh chan *message
	readers                     sync.WaitGroup
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startKernel writes a connection file, starts the kernel described by spec and connects to it.
// The kernel is not yet known to be ready: call waitReady.
func startKernel(spec *Kernelspec, cwd string, log io.Writer) (k *kernelClient, err error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	var keyBytes [32]byte
	if _, err := rand.Read(keyBytes[:]); err != nil {
		return nil, fmt.Errorf("generating the HMAC key: %w", err)
	}
	ci := connectionInfo{
		ShellPort: ports[0], IOPubPort: ports[1], StdinPort: ports[2], ControlPort: ports[3], HBPort: ports[4],
		IP: "127.0.0.1", Key: hex.EncodeToString(keyBytes[:]), Transport: "tcp",
		SignatureScheme: "hmac-sha256", KernelName: spec.Name,
	}
	sess, err := newSession([]byte(ci.Key), ci.SignatureScheme)
	if err != nil {
		return nil, err
	}
	runtimeDir, err := os.MkdirTemp("", "gonnsight-run-")
	if err != nil {
		return nil, fmt.Errorf("creating a runtime directory for the connection file: %w", err)
	}
	k = &kernelClient{
		spec: spec, sess: sess, conn: ci, runtimeDir: runtimeDir, log: log,
		connFile: filepath.Join(runtimeDir, "kernel-"+newID()+".json"),
		exited:   make(chan struct{}),
		stderr:   &tailBuffer{max: 8 << 10},
		shellCh:  make(chan *message, 256), controlCh: make(chan *message, 64), iopubCh: make(chan *message, 4096),
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			k.close()
		}
	}()
	data, _ := json.MarshalIndent(ci, "", "  ")
	if err := os.WriteFile(k.connFile, data, 0o600); err != nil {
		return nil, fmt.Errorf("writing connection file: %w", err)
	}

	subst := strings.NewReplacer("{connection_file}", k.connFile, "{resource_dir}", spec.Dir)
	argv := make([]string, len(spec.Argv))
	for i, a := range spec.Argv {
		argv[i] = subst.Replace(a)
	}
	k.cmd = exec.Command(argv[0], argv[1:]...)
	k.cmd.Dir = cwd
	// The tag reaches every process the kernel starts, so that shutdown finds those that left
	// its process group (gopls) or outlived their parent.
	k.tag = procx.NewTag()
	k.cmd.Env = append(os.Environ(), procx.RunTagEnv+"="+k.tag)
	for name, v := range spec.Env {
		k.cmd.Env = append(k.cmd.Env, name+"="+subst.Replace(v))
	}
	out := prefixWriter(log, "[kernel] ")
	k.cmd.Stdout = out
	k.cmd.Stderr = io.MultiWriter(out, k.stderr)
	setProcessGroup(k.cmd)
	if err := k.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kernel %q (%s): %w", spec.Name, strings.Join(argv, " "), err)
	}
	go func() {
		k.exitErr = k.cmd.Wait()
		close(k.exited)
	}()

	k.shell = zmq4.NewDealer(k.ctx, zmq4.WithDialerRetry(50*time.Millisecond), zmq4.WithDialerMaxRetries(-1), zmq4.WithLogger(nullLogger()))
	k.control = zmq4.NewDealer(k.ctx, zmq4.WithDialerRetry(50*time.Millisecond), zmq4.WithDialerMaxRetries(-1), zmq4.WithLogger(nullLogger()))
	k.iopub = zmq4.NewSub(k.ctx, zmq4.WithDialerRetry(50*time.Millisecond), zmq4.WithDialerMaxRetries(-1), zmq4.WithLogger(nullLogger()))
	return k, nil
}

// connect dials the kernel's channels, retrying until they accept, the kernel exits or the deadline passes.
func (k *kernelClient) connect(deadline time.Time) error {
	type dial struct {
		name string
		sck  zmq4.Socket
		port int
	}
	dials := []dial{{"shell", k.shell, k.conn.ShellPort}, {"control", k.control, k.conn.ControlPort}, {"iopub", k.iopub, k.conn.IOPubPort}}
	errc := make(chan error, len(dials))
	for _, d := range dials {
		go func() {
			if err := d.sck.Dial(fmt.Sprintf("tcp://%s:%d", k.conn.IP, d.port)); err != nil {
				errc <- fmt.Errorf("connecting to the kernel's %s channel: %w", d.name, err)
				return
			}
			errc <- nil
		}()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for range dials {
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-k.exited:
			return k.diedError("while starting")
		case <-k.stop:
			return fmt.Errorf("kernel %q was starting: %w", k.spec.Name, ErrStopped)
		case <-timer.C:
			return fmt.Errorf("kernel %q did not open its ports within the startup timeout", k.spec.Name)
		}
	}
	k.connected = true
	if err := k.iopub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		return fmt.Errorf("subscribing to iopub: %w", err)
	}
	k.readers.Add(3)
	go k.readLoop("shell", k.shell, k.shellCh, true)
	go k.readLoop("control", k.control, k.controlCh, false)
	go k.readLoop("iopub", k.iopub, k.iopubCh, true)
	return nil
}

// readLoop decodes messages from one socket; messages with a bad signature are logged and dropped.
func (k *kernelClient) readLoop(name string, sck zmq4.Socket, ch chan *message, block bool) {
	defer k.readers.Done()
	for {
		zm, err := sck.Recv()
		if err != nil {
			if k.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				logf(k.log, "gonnsight: %s channel closed: %v", name, err)
			}
			return
		}
		msg, err := k.sess.decode(zm.Frames)
		if err != nil {
			logf(k.log, "gonnsight: rejected a message on the %s channel: %v", name, err)
			continue
		}
		if block {
			select {
			case ch <- msg:
			case <-k.ctx.Done():
				return
			}
		} else {
			select {
			case ch <- msg:
			default:
			}
		}
	}
}

// send signs and sends a request on sck and returns its msg_id.
func (k *kernelClient) send(sck zmq4.Socket, msgType string, content any) (string, error) {
	h := k.sess.newHeader(msgType)
	frames, err := k.sess.encode(h, content)
	if err != nil {
		return "", err
	}
	if err := sck.SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
		return "", fmt.Errorf("sending %s: %w", msgType, err)
	}
	return h.MsgID, nil
}

// waitReady sends kernel_info_request until a reply arrives on shell and a message arrives on
// iopub (which shows the subscription is live), the kernel exits, or the deadline passes.
func (k *kernelClient) waitReady(deadline time.Time) (map[string]any, error) {
	var info map[string]any
	gotIOPub := false
	pending := map[string]bool{}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for info == nil || !gotIOPub {
		id, err := k.send(k.shell, "kernel_info_request", nil)
		if err != nil {
			return nil, err
		}
		pending[id] = true
		retry := time.NewTimer(time.Second)
	wait:
		for info == nil || !gotIOPub {
			select {
			case m := <-k.shellCh:
				if m.Header.MsgType == "kernel_info_reply" && pending[m.Parent.MsgID] {
					info = m.Content
				}
			case <-k.iopubCh:
				gotIOPub = true
			case <-retry.C:
				break wait
			case <-k.exited:
				retry.Stop()
				return nil, k.diedError("before it was ready")
			case <-k.stop:
				retry.Stop()
				return nil, fmt.Errorf("kernel %q was starting: %w", k.spec.Name, ErrStopped)
			case <-timer.C:
				retry.Stop()
				return nil, fmt.Errorf("kernel %q sent no kernel_info_reply within the startup timeout (reply=%v, iopub=%v)",
					k.spec.Name, info != nil, gotIOPub)
			}
		}
		retry.Stop()
	}
	// Drain the iopub status messages of the kernel_info requests so they are not taken for cell output.
	for {
		select {
		case <-k.iopubCh:
		case <-time.After(100 * time.Millisecond):
			return info, nil
		}
	}
}

// interrupt asks the kernel to interrupt the running cell: by SIGINT when the kernelspec's
// interrupt_mode is "signal" (Jupyter's default), else by an interrupt_request on control.
func (k *kernelClient) interrupt() error {
	if k.spec.InterruptMode == "" || k.spec.InterruptMode == "signal" {
		return interruptProcess(k.cmd)
	}
	_, err := k.send(k.control, "interrupt_request", nil)
	return err
}

// isDead reports whether the kernel process has exited.
func (k *kernelClient) isDead() bool {
	select {
	case <-k.exited:
		return true
	default:
		return false
	}
}

// diedError describes the kernel's exit, with the tail of its stderr.
func (k *kernelClient) diedError(when string) error {
	<-k.exited
	msg := fmt.Sprintf("kernel %q died %s", k.spec.Name, when)
	if k.exitErr != nil {
		msg += " (" + k.exitErr.Error() + ")"
	} else {
		msg += " (exit status 0)"
	}
	if tail := strings.TrimSpace(k.stderr.String()); tail != "" {
		msg += "; its stderr ends with:\n" + tail
	}
	return errors.New(msg)
}

// shutdown asks the kernel to exit, then terminates and kills it if it does not, and cleans up.
func (k *kernelClient) shutdown(grace time.Duration) {
	if k.cmd != nil && k.cmd.Process != nil && !k.isDead() && k.control != nil && k.connected {
		_, _ = k.send(k.control, "shutdown_request", map[string]any{"restart": false})
		select {
		case <-k.exited:
		case <-time.After(grace):
			terminateProcess(k.cmd)
			select {
			case <-k.exited:
			case <-time.After(3 * time.Second):
				killProcess(k.cmd)
				<-k.exited
			}
		}
	} else if k.cmd != nil && k.cmd.Process != nil && !k.isDead() {
		killProcess(k.cmd)
		<-k.exited
	}
	k.close()
}

// close releases the sockets and the runtime directory; it kills a still-running kernel.
func (k *kernelClient) close() {
	if k.cmd != nil && k.cmd.Process != nil && !k.isDead() {
		killProcess(k.cmd)
		<-k.exited
	}
	// What the kernel started and left behind (cells, gopls in its own process group).
	procx.KillTagged(procx.RunTagEnv, k.tag, 2*time.Second)
	k.cancel()
	for _, s := range []zmq4.Socket{k.shell, k.control, k.iopub} {
		if s != nil {
			_ = s.Close()
		}
	}
	if k.runtimeDir != "" {
		_ = os.RemoveAll(k.runtimeDir)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
