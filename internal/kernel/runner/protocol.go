package runner

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"
)

// protocolVersion is the Jupyter messaging protocol version the runner speaks.
const protocolVersion = "5.3"

// delimiter separates ZeroMQ routing identities from the signed message parts.
var delimiter = []byte("<IDS|MSG>")

// ErrBadSignature is returned by decode when a message's HMAC signature does not match.
var ErrBadSignature = errors.New("jupyter message has a bad HMAC signature")

// header is a Jupyter message header.
type header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// message is a decoded Jupyter message.
type message struct {
	Identities [][]byte
	Header     header
	Parent     header
	Metadata   map[string]any
	Content    map[string]any
	Buffers    [][]byte
}

// session signs, encodes and decodes messages with one HMAC key.
type session struct {
	id       string
	username string
	key      []byte
	scheme   string
}

func newSession(key []byte, scheme string) (*session, error) {
	if scheme == "" {
		scheme = "hmac-sha256"
	}
	if scheme != "hmac-sha256" {
		return nil, fmt.Errorf("unsupported signature_scheme %q (only hmac-sha256)", scheme)
	}
	return &session{id: newID(), username: "gonnsight", key: key, scheme: scheme}, nil
}

// newID returns a random UUID-v4-formatted identifier.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (s *session) mac() hash.Hash {
	if len(s.key) == 0 {
		return nil
	}
	return hmac.New(sha256.New, s.key)
}

// sign returns the hex HMAC of the four signed parts; "" when the key is empty (no signing).
func (s *session) sign(parts ...[]byte) string {
	m := s.mac()
	if m == nil {
		return ""
	}
	for _, p := range parts {
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// newHeader returns a fresh header for a message of the given type.
func (s *session) newHeader(msgType string) header {
	return header{
		MsgID:    newID(),
		Session:  s.id,
		Username: s.username,
		Date:     time.Now().UTC().Format(time.RFC3339Nano),
		MsgType:  msgType,
		Version:  protocolVersion,
	}
}

// encode returns the wire frames of a request with the given header and content.
func (s *session) encode(h header, content any) ([][]byte, error) {
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding %s header: %w", h.MsgType, err)
	}
	if content == nil {
		content = map[string]any{}
	}
	cb, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("encoding %s content: %w", h.MsgType, err)
	}
	parent, meta := []byte("{}"), []byte("{}")
	sig := s.sign(hb, parent, meta, cb)
	return [][]byte{delimiter, []byte(sig), hb, parent, meta, cb}, nil
}

// decode parses wire frames and verifies their signature. A message whose signature does not
// match is rejected with ErrBadSignature and its content is never parsed.
func (s *session) decode(frames [][]byte) (*message, error) {
	i := 0
	for i < len(frames) && !bytes.Equal(frames[i], delimiter) {
		i++
	}
	if i == len(frames) {
		return nil, fmt.Errorf("jupyter message without %q delimiter (%d frames)", delimiter, len(frames))
	}
	if len(frames)-i < 6 {
		return nil, fmt.Errorf("jupyter message with %d frames after the delimiter, want at least 5", len(frames)-i-1)
	}
	ids, sig, parts := frames[:i], frames[i+1], frames[i+2:i+6]
	if m := s.mac(); m != nil {
		for _, p := range parts {
			m.Write(p)
		}
		want := m.Sum(nil)
		got, err := hex.DecodeString(string(sig))
		if err != nil || !hmac.Equal(got, want) {
			return nil, ErrBadSignature
		}
	}
	msg := &message{Identities: ids, Buffers: frames[i+6:]}
	if err := json.Unmarshal(parts[0], &msg.Header); err != nil {
		return nil, fmt.Errorf("decoding message header: %w", err)
	}
	if err := json.Unmarshal(parts[1], &msg.Parent); err != nil {
		return nil, fmt.Errorf("decoding %s parent header: %w", msg.Header.MsgType, err)
	}
	if err := json.Unmarshal(parts[2], &msg.Metadata); err != nil {
		return nil, fmt.Errorf("decoding %s metadata: %w", msg.Header.MsgType, err)
	}
	dec := json.NewDecoder(bytes.NewReader(parts[3]))
	dec.UseNumber()
	if err := dec.Decode(&msg.Content); err != nil {
		return nil, fmt.Errorf("decoding %s content: %w", msg.Header.MsgType, err)
	}
	return msg, nil
}
