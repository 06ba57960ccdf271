package runner

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

func TestDecodeVerifiesSignature(t *testing.T) {
	s, err := newSession([]byte("secret-key"), "hmac-sha256")
	if err != nil {
		t.Fatal(err)
	}
	h := s.newHeader("execute_reply")
	frames, err := s.encode(h, map[string]any{"status": "ok"})
	if err != nil {
		t.Fatal(err)
	}
	frames = append([][]byte{[]byte("routing-id")}, frames...)
	msg, err := s.decode(frames)
	if err != nil {
		t.Fatalf("a correctly signed message is rejected: %v", err)
	}
	if msg.Header.MsgID != h.MsgID || msg.Content["status"] != "ok" || len(msg.Identities) != 1 {
		t.Fatalf("decoded %+v", msg)
	}

	tampered := append([][]byte(nil), frames...)
	tampered[len(tampered)-1] = []byte(`{"status":"error"}`)
	if _, err := s.decode(tampered); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered content: want ErrBadSignature, got %v", err)
	}
	badSig := append([][]byte(nil), frames...)
	badSig[2] = []byte("not-hex")
	if _, err := s.decode(badSig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("non-hex signature: want ErrBadSignature, got %v", err)
	}
	other, _ := newSession([]byte("another-key"), "")
	if _, err := other.decode(frames); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key: want ErrBadSignature, got %v", err)
	}
	if _, err := s.decode(frames[:4]); err == nil {
		t.Fatal("truncated message accepted")
	}
	if _, err := newSession(nil, "hmac-md5"); err == nil {
		t.Fatal("unsupported scheme accepted")
	}
}

// TestReadLoopDropsBadSignatures sends a forged and a genuine message over a real ZeroMQ
// socket pair: only the genuine one reaches the runner, the forged one is logged.
func TestReadLoopDropsBadSignatures(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	router := zmq4.NewRouter(ctx, zmq4.WithLogger(nullLogger()))
	defer router.Close()
	if err := router.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	sess, _ := newSession([]byte("k"), "")
	log := &syncBuffer{}
	k := &kernelClient{sess: sess, log: log, ctx: ctx, shellCh: make(chan *message, 4)}
	dealer := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("client")), zmq4.WithLogger(nullLogger()))
	defer dealer.Close()
	if err := dealer.Dial("tcp://" + router.Addr().String()); err != nil {
		t.Fatal(err)
	}
	k.readers.Add(1)
	go k.readLoop("shell", dealer, k.shellCh, true)

	// The router needs to know the dealer before it can route to it.
	_ = dealer.Send(zmq4.NewMsg([]byte("hello")))
	if _, err := router.Recv(); err != nil {
		t.Fatal(err)
	}
	forgedHeader := sess.newHeader("execute_reply")
	forged, _ := sess.encode(forgedHeader, map[string]any{"status": "ok"})
	forged[1] = bytes.Repeat([]byte("0"), 64)
	good := sess.newHeader("execute_reply")
	genuine, _ := sess.encode(good, map[string]any{"status": "ok"})
	for _, f := range [][][]byte{forged, genuine} {
		if err := router.SendMulti(zmq4.NewMsgFrom(append([][]byte{[]byte("client")}, f...)...)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-k.shellCh:
		if m.Header.MsgID != good.MsgID {
			t.Fatalf("the forged message got through: %+v", m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the genuine message did not arrive")
	}
	if !strings.Contains(log.String(), "rejected a message on the shell channel") || !strings.Contains(log.String(), "bad HMAC signature") {
		t.Errorf("the rejection was not logged: %q", log.String())
	}
}
