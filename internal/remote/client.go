package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// Environment variables that send work to a host.
const (
	EnvRemote    = "GONNSIGHT_REMOTE"     // http://HOST:PORT or unix:/path/to/socket
	EnvToken     = "GONNSIGHT_TOKEN"      // the host's token
	EnvTokenFile = "GONNSIGHT_TOKEN_FILE" // or a file holding it
	// EnvFallback=1 (the kernel sets it for its own host) runs work in-process when the host
	// cannot be reached, instead of failing; a host the user named is never silently skipped.
	EnvFallback = "GONNSIGHT_REMOTE_FALLBACK"
)

// Client talks to one host.
type Client struct {
	Addr  string // as given
	base  string
	token string
	http  *http.Client
}

// NewClient makes a client for addr ("unix:/path", a socket path, or http://HOST:PORT).
func NewClient(addr, token string) (*Client, error) {
	c := &Client{Addr: addr, token: strings.TrimSpace(token)}
	tr := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	switch {
	case strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "/"):
		path := strings.TrimPrefix(strings.TrimPrefix(addr, "unix:"), "//")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://gonnsight-host"
	case strings.HasPrefix(addr, "http://"):
		c.base = strings.TrimRight(addr, "/")
	default:
		return nil, fmt.Errorf("model host address %q: want http://HOST:PORT, unix:/path/to/socket or an absolute socket path", addr)
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// FromEnv makes a client from GONNSIGHT_REMOTE and GONNSIGHT_TOKEN (or GONNSIGHT_TOKEN_FILE);
// nil when GONNSIGHT_REMOTE is not set.
func FromEnv() (*Client, error) {
	addr := strings.TrimSpace(os.Getenv(EnvRemote))
	if addr == "" {
		return nil, nil
	}
	token := os.Getenv(EnvToken)
	if token == "" {
		if f := os.Getenv(EnvTokenFile); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", EnvTokenFile, err)
			}
			token = string(b)
		}
	}
	if strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("%s=%s is set but neither %s nor %s gives the host's token", EnvRemote, addr, EnvToken, EnvTokenFile)
	}
	return NewClient(addr, token)
}

// HostError is an error the host answered with.
type HostError struct {
	Status int
	Msg    string
}

func (e *HostError) Error() string { return e.Msg }

// call POSTs req (gob) to path and decodes the reply into reply.
func (c *Client) call(path string, req, reply any) error {
	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(req); err != nil {
		return fmt.Errorf("encoding the request to %s: %w", path, err)
	}
	hr, err := http.NewRequest(http.MethodPost, c.base+path, &body)
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+c.token)
	hr.Header.Set("Content-Type", "application/x-gob")
	resp, err := c.http.Do(hr)
	if err != nil {
		return fmt.Errorf("model host at %s: %w", c.Addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &HostError{Status: resp.StatusCode, Msg: fmt.Sprintf("model host at %s: %s", c.Addr, strings.TrimSpace(string(msg)))}
	}
	if err := gob.NewDecoder(resp.Body).Decode(reply); err != nil {
		return fmt.Errorf("model host at %s: reading the reply to %s: %w", c.Addr, path, err)
	}
	return nil
}

// Hello asks the host what it runs.
func (c *Client) Hello() (*Hello, error) {
	var h Hello
	return &h, c.call(PathHello, struct{}{}, &h)
}

// Open loads a model on the host (or finds it loaded).
func (c *Client) Open(source string) (*OpenReply, error) {
	var r OpenReply
	return &r, c.call(PathOpen, OpenRequest{Source: source}, &r)
}

// Run runs a program.
func (c *Client) Run(req *RunRequest) (*RunReply, error) {
	var r RunReply
	return &r, c.call(PathRun, req, &r)
}

// Weight reads a resident weight's values.
func (c *Client) Weight(ref WeightRef) (*Tensor, error) {
	var t Tensor
	return &t, c.call(PathWeight, WeightRequest{Ref: ref}, &t)
}

// Stats reads the host's counters.
func (c *Client) Stats() (*Stats, error) {
	var s Stats
	return &s, c.call(PathStats, struct{}{}, &s)
}

// Backend is a compute.Backend that runs nothing itself: graphs built on it are recorded
// (a local Go backend checks every op and infers shapes, without running anything) and
// executed on the host, which holds the weights.
type Backend struct {
	Client   *Client
	shadow   compute.Backend
	caps     compute.Capabilities
	hostName string
	hello    *Hello
	session  [16]byte

	relMu    sync.Mutex
	releases []uint64 // resident values this process dropped, told to the host with the next run

	onCompile func(*Program) // tests: sees every recorded program
}

// Dial connects to a host and asks what it runs.
func Dial(c *Client) (*Backend, error) {
	h, err := c.Hello()
	if err != nil {
		return nil, err
	}
	if h.OpsetID != opsetID {
		return nil, fmt.Errorf("model host at %s records programs with another op set (%x, here %x): run the same gonnsight version on both sides", c.Addr, h.OpsetID, opsetID)
	}
	shadow, err := gobackend.New("")
	if err != nil {
		return nil, err
	}
	caps := shadow.Capabilities().Clone()
	caps.Operations = map[compute.OpType]bool{}
	for _, name := range h.Ops {
		if ot, err := compute.OpTypeString(name); err == nil && shadow.Capabilities().Operations[ot] {
			caps.Operations[ot] = true
		}
	}
	caps.DTypes = map[dtypes.DType]bool{}
	for _, d := range h.DTypes {
		if shadow.Capabilities().DTypes[dtypes.DType(d)] {
			caps.DTypes[dtypes.DType(d)] = true
		}
	}
	caps.Functions = h.Functions && caps.Functions
	b := &Backend{Client: c, shadow: shadow, caps: caps, hostName: h.Backend, hello: h}
	if _, err := rand.Read(b.session[:]); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Backend) release(id uint64) {
	b.relMu.Lock()
	b.releases = append(b.releases, id)
	b.relMu.Unlock()
}

func (b *Backend) takeReleases() []uint64 {
	b.relMu.Lock()
	defer b.relMu.Unlock()
	r := b.releases
	b.releases = nil
	return r
}

// residentBuffer is an output the host kept: its values are fetched only if read here, and
// feeding it to another run (a generation step's cache) sends its id. When this process
// drops it (Finalize, or the garbage collector), the host is told with the next run.
type residentBuffer struct {
	b     *Backend
	id    uint64
	shape shapes.Shape
	mu    sync.Mutex
	data  []byte // fetched values, once read
	gone  bool
}

func newResident(b *Backend, id uint64, shape shapes.Shape) *residentBuffer {
	r := &residentBuffer{b: b, id: id, shape: shape}
	runtime.AddCleanup(r, func(id uint64) { b.release(id) }, id)
	return r
}

func (r *residentBuffer) Backend() compute.Backend              { return r.b }
func (r *residentBuffer) Shape() (shapes.Shape, error)          { return r.shape, nil }
func (r *residentBuffer) DeviceNum() (compute.DeviceNum, error) { return 0, nil }
func (r *residentBuffer) CopyToDevice(compute.DeviceNum) (compute.Buffer, error) {
	return r, nil
}
func (r *residentBuffer) Data() (any, error) { return nil, errors.New("not a shared buffer") }
func (r *residentBuffer) Finalize() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.gone {
		r.gone = true
		r.data = nil
	}
	return nil
}

func (r *residentBuffer) ToFlatData(flat any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return errors.New("buffer already finalized")
	}
	if r.data == nil {
		var t Tensor
		if err := r.b.Client.call(PathValue, ValueRequest{Session: r.b.session, ID: r.id}, &t); err != nil {
			return err
		}
		if err := t.Check(); err != nil || !t.Shape().Equal(r.shape) {
			return fmt.Errorf("value %d from the host: shape %s (want %s): %v", r.id, t.Shape(), r.shape, err)
		}
		r.data = t.Data
	}
	dst := dtypes.UnsafeByteSliceFromAny(flat)
	if len(dst) != len(r.data) {
		return fmt.Errorf("ToFlatData: %d bytes wanted, the value (%s) has %d", len(dst), r.shape, len(r.data))
	}
	copy(dst, r.data)
	return nil
}

// HostBackend is the host's backend configuration.
func (b *Backend) HostBackend() string { return b.hostName }

func (b *Backend) Name() string { return "remote" }

// String names the backend in results and notebooks. A Unix socket's path is private and
// differs per kernel session, so it is left out (Description has it): the same notebook prints
// the same text in every run.
func (b *Backend) String() string {
	if strings.HasPrefix(b.Client.Addr, "unix:") {
		return fmt.Sprintf("remote(%s) on the local model host", b.hostName)
	}
	return fmt.Sprintf("remote(%s) at %s", b.hostName, b.Client.Addr)
}
func (b *Backend) Description() string {
	return fmt.Sprintf("programs recorded here, run by the model host at %s on its backend %s", b.Client.Addr, b.hostName)
}
func (b *Backend) NumDevices() int                            { return 1 }
func (b *Backend) DeviceDescription(compute.DeviceNum) string { return "model host " + b.Client.Addr }
func (b *Backend) Capabilities() compute.Capabilities         { return b.caps }
func (b *Backend) Builder(name string) compute.Builder        { return newRecBuilder(b, name) }
func (b *Backend) Finalize()                                  {}
func (b *Backend) IsFinalized() bool                          { return false }
func (b *Backend) HasSharedBuffers() bool                     { return false }
func (b *Backend) NewSharedBuffer(compute.DeviceNum, shapes.Shape) (compute.Buffer, any, error) {
	return nil, nil, errors.New("a model host's client has no shared buffers")
}

// BufferFromFlatData keeps a copy of flat here; it travels with the runs that use it.
func (b *Backend) BufferFromFlatData(_ compute.DeviceNum, flat any, shape shapes.Shape) (compute.Buffer, error) {
	src := dtypes.UnsafeByteSliceFromAny(flat)
	if len(src) != int(shape.ByteSize()) {
		return nil, fmt.Errorf("BufferFromFlatData: %d bytes for shape %s", len(src), shape)
	}
	return &dataBuffer{b: b, shape: shape.Clone(), data: bytes.Clone(src)}, nil
}

// WeightBuffer is a buffer naming a weight resident on the host: feeding it to a program
// sends its name, never its values.
func (b *Backend) WeightBuffer(ref WeightRef, shape shapes.Shape) compute.Buffer {
	return &weightBuffer{b: b, ref: ref, shape: shape}
}

// DerivedWeight returns a tensor naming a weight the host derives from base's resident
// weight (name is base's name plus a suffix the host knows, such as module.TransposedSuffix),
// or false when base is not a resident weight of the host.
func (b *Backend) DerivedWeight(base *tensors.Tensor, name string, shape shapes.Shape) (*tensors.Tensor, bool) {
	buf, err := base.Buffer(b, 0)
	if err != nil {
		return nil, false
	}
	wb, ok := buf.(*weightBuffer)
	if !ok {
		return nil, false
	}
	ref := wb.ref
	ref.Name = name
	t, err := tensors.FromBuffer(b.WeightBuffer(ref, shape))
	return t, err == nil
}

// dataBuffer is a value held by the client.
type dataBuffer struct {
	b     *Backend
	shape shapes.Shape
	data  []byte
	mu    sync.Mutex
	gone  bool
}

func (d *dataBuffer) Backend() compute.Backend { return d.b }
func (d *dataBuffer) Finalize() error {
	d.mu.Lock()
	d.gone = true
	d.data = nil
	d.mu.Unlock()
	return nil
}
func (d *dataBuffer) Shape() (shapes.Shape, error)                           { return d.shape, nil }
func (d *dataBuffer) DeviceNum() (compute.DeviceNum, error)                  { return 0, nil }
func (d *dataBuffer) CopyToDevice(compute.DeviceNum) (compute.Buffer, error) { return d, nil }
func (d *dataBuffer) Data() (any, error)                                     { return nil, errors.New("not a shared buffer") }
func (d *dataBuffer) ToFlatData(flat any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return errors.New("buffer already finalized")
	}
	dst := dtypes.UnsafeByteSliceFromAny(flat)
	if len(dst) != len(d.data) {
		return fmt.Errorf("ToFlatData: %d bytes wanted, the buffer (%s) has %d", len(dst), d.shape, len(d.data))
	}
	copy(dst, d.data)
	return nil
}

func (d *dataBuffer) wire() (*Tensor, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return nil, errors.New("an input buffer was already finalized")
	}
	return &Tensor{DType: int(d.shape.DType), Dims: d.shape.Dimensions, Data: d.data}, nil
}

// weightBuffer names a weight resident on the host; its values are fetched only if read here.
type weightBuffer struct {
	b     *Backend
	ref   WeightRef
	shape shapes.Shape
}

func (w *weightBuffer) Backend() compute.Backend                               { return w.b }
func (w *weightBuffer) Finalize() error                                        { return nil }
func (w *weightBuffer) Shape() (shapes.Shape, error)                           { return w.shape, nil }
func (w *weightBuffer) DeviceNum() (compute.DeviceNum, error)                  { return 0, nil }
func (w *weightBuffer) CopyToDevice(compute.DeviceNum) (compute.Buffer, error) { return w, nil }
func (w *weightBuffer) Data() (any, error)                                     { return nil, errors.New("not a shared buffer") }
func (w *weightBuffer) ToFlatData(flat any) error {
	t, err := w.b.Client.Weight(w.ref)
	if err != nil {
		return err
	}
	dst := dtypes.UnsafeByteSliceFromAny(flat)
	if len(dst) != len(t.Data) {
		return fmt.Errorf("weight %s: %d bytes wanted, the host sent %d", w.ref.Name, len(dst), len(t.Data))
	}
	copy(dst, t.Data)
	return nil
}

// executable sends its program with each run: in full the first time, by hash afterwards.
type executable struct {
	backend *Backend
	prog    *Program
}

func (e *executable) Finalize() {}
func (e *executable) Inputs() ([]string, []shapes.Shape) {
	return e.prog.InputNames, e.prog.InputShapes
}
func (e *executable) Outputs() []shapes.Shape { return e.prog.OutputShapes }

// Program returns the recorded program (for tests and measurements).
func (e *executable) Program() *Program { return e.prog }

func (e *executable) Execute(inputs []compute.Buffer, _ []bool, _ compute.DeviceNum) ([]compute.Buffer, error) {
	if len(inputs) != len(e.prog.InputNames) {
		return nil, fmt.Errorf("the program takes %d inputs, got %d", len(e.prog.InputNames), len(inputs))
	}
	req := &RunRequest{Name: "program", Hash: e.prog.Hash, Inputs: make([]Input, len(inputs)), Session: e.backend.session,
		Release: e.backend.takeReleases()}
	for i, in := range inputs {
		switch x := in.(type) {
		case *residentBuffer:
			x.mu.Lock()
			gone := x.gone
			x.mu.Unlock()
			if gone {
				return nil, fmt.Errorf("input %q: buffer already finalized", e.prog.InputNames[i])
			}
			req.Inputs[i].Resident = x.id
		case *weightBuffer:
			ref := x.ref
			req.Inputs[i].Weight = &ref
		case *dataBuffer:
			t, err := x.wire()
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", e.prog.InputNames[i], err)
			}
			req.Inputs[i].Value = t
		default:
			return nil, fmt.Errorf("input %q is a %T, not a buffer of the model host's client", e.prog.InputNames[i], in)
		}
	}
	// The program goes by hash first: a host that compiled it for an earlier process (the
	// previous notebook cell) runs it at once; one that has not answers 409 and gets it.
	reply, err := e.backend.Client.Run(req)
	var he *HostError
	if errors.As(err, &he) && he.Status == StatusUnknownProgram {
		req.Program = e.prog.Bytes
		reply, err = e.backend.Client.Run(req)
	}
	if err != nil {
		return nil, err
	}
	if len(reply.Outputs) != len(e.prog.OutputShapes) {
		return nil, fmt.Errorf("the host returned %d outputs, the program has %d", len(reply.Outputs), len(e.prog.OutputShapes))
	}
	outs := make([]compute.Buffer, len(reply.Outputs))
	for i, t := range reply.Outputs {
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("output %d from the host: %w", i, err)
		}
		if !t.Shape().Equal(e.prog.OutputShapes[i]) {
			return nil, fmt.Errorf("output %d from the host has shape %s, the program says %s", i, t.Shape(), e.prog.OutputShapes[i])
		}
		if t.Resident != 0 {
			outs[i] = newResident(e.backend, t.Resident, t.Shape())
		} else {
			outs[i] = &dataBuffer{b: e.backend, shape: t.Shape(), data: t.Data}
		}
	}
	// The resident inputs must live until the host has used them.
	runtime.KeepAlive(inputs)
	return outs, nil
}

// Keep keeps t on the host under name: by reference when t is an output still resident there
// (nothing travels), else with its values.
func (b *Backend) Keep(name string, t *tensors.Tensor) error {
	req := KeepRequest{Name: name, Session: b.session}
	if buf, err := t.Buffer(b, 0); err == nil {
		if rb, ok := buf.(*residentBuffer); ok {
			req.Resident = rb.id
		}
	}
	if req.Resident == 0 {
		w := &Tensor{DType: int(t.DType()), Dims: t.Shape().Dimensions}
		if err := t.ConstBytes(func(data []byte) { w.Data = bytes.Clone(data) }); err != nil {
			return err
		}
		req.Value = w
	}
	var ok struct{}
	return b.Client.call(PathKeep, req, &ok)
}

// Kept reads a value kept on the host.
func (b *Backend) Kept(name string) (*tensors.Tensor, error) {
	var r KeptReply
	if err := b.Client.call(PathKept, KeptRequest{Name: name}, &r); err != nil {
		return nil, err
	}
	if r.Value == nil {
		return nil, fmt.Errorf("the host sent no value for %q", name)
	}
	if err := r.Value.Check(); err != nil {
		return nil, err
	}
	t := tensors.FromShape(r.Value.Shape())
	t.MutableBytes(func(data []byte) { copy(data, r.Value.Data) })
	return t, nil
}

// KeptNames lists the values kept on the host.
func (b *Backend) KeptNames() ([]string, error) {
	var r KeptReply
	err := b.Client.call(PathKept, KeptRequest{}, &r)
	return r.Names, err
}
