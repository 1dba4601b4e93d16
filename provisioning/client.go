package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Client is the laptop's side of a session: it sends requests and waits for their answers,
// sending again after a timeout or a NAK. It is not safe for concurrent calls; a session is one
// conversation.
type Client struct {
	w        io.Writer
	timeout  time.Duration
	attempts int

	frames chan readResult
	done   chan struct{} // closed when the reader stops
	errMu  sync.Mutex
	rerr   error // why the reader stopped

	received atomic.Int64
	decoded  atomic.Int64 // frames, sound or with a bad checksum
	seq      uint16
}

type readResult struct {
	f   Frame
	err error // nil or ErrChecksum
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithTimeout sets how long to wait for each answer before sending again (default
// DefaultTimeout).
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithAttempts sets how often a request is sent before giving up (default DefaultAttempts).
func WithAttempts(n int) ClientOption { return func(c *Client) { c.attempts = max(n, 1) } }

// NewClient starts a session over rw, reading from it until it fails or is closed: close rw
// to end the session.
func NewClient(rw io.ReadWriter, opts ...ClientOption) *Client {
	c := &Client{w: rw, timeout: DefaultTimeout, attempts: DefaultAttempts,
		frames: make(chan readResult, 16), done: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	go c.read(NewReader(countingReader{rw, &c.received}))
	return c
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *Client) read(r *Reader) {
	defer close(c.done)
	for {
		f, err := r.ReadFrame()
		if err != nil && !errors.Is(err, ErrChecksum) {
			c.errMu.Lock()
			c.rerr = err
			c.errMu.Unlock()
			return
		}
		c.decoded.Add(1)
		select {
		case c.frames <- readResult{f, err}:
		default:
			// Nobody is waiting for this many frames: a stale answer; drop the oldest.
			select {
			case <-c.frames:
			default:
			}
			c.frames <- readResult{f, err}
		}
	}
}

func (c *Client) readErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.rerr
}

// Call sends a request of type t with req as its JSON payload (nil for none), and decodes the
// answer into reply (nil to ignore it). A refusal is a *RemoteError; no answer is a *LineError.
func (c *Client) Call(ctx context.Context, t Type, req, reply any) error {
	var payload []byte
	if req != nil {
		var err error
		if payload, err = json.Marshal(req); err != nil {
			return fmt.Errorf("encode %s request: %w", t, err)
		}
	}
	c.seq++
	f := Frame{Seq: c.seq, Type: t, Payload: payload}
	recvBefore, decodedBefore := c.received.Load(), c.decoded.Load()
	lineErr := func(attempts int, err error) error {
		return &LineError{Request: t, Attempts: attempts, Received: c.received.Load() - recvBefore, Err: err}
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	for attempt := 1; attempt <= c.attempts; attempt++ {
		if err := WriteFrame(c.w, f); err != nil {
			return lineErr(attempt, fmt.Errorf("%w: %w", ErrClosed, err))
		}
		timer.Reset(c.timeout)
	wait:
		for {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", t, ctx.Err())
			case <-c.done:
				// Answers read before the line closed still count.
				select {
				case r := <-c.frames:
					if done, err := c.answer(t, f.Seq, r, reply); done {
						return err
					}
					continue
				default:
				}
				return lineErr(attempt, fmt.Errorf("%w: %w", ErrClosed, c.readErr()))
			case <-timer.C:
				break wait
			case r := <-c.frames:
				done, err := c.answer(t, f.Seq, r, reply)
				if done {
					return err
				}
				if errors.Is(err, errResend) {
					break wait
				}
			}
		}
	}
	switch {
	case c.received.Load() == recvBefore:
		return lineErr(c.attempts, ErrNoAnswer)
	case c.decoded.Load() == decodedBefore:
		return lineErr(c.attempts, ErrGarbage)
	}
	// Frames came, but none answered this request: as good as none.
	return lineErr(c.attempts, ErrNoAnswer)
}

var errResend = errors.New("resend")

// answer handles one frame read while waiting for the answer to request seq. done is true when
// it is the answer, and err then what Call returns; errResend asks for the request again.
func (c *Client) answer(t Type, seq uint16, r readResult, reply any) (done bool, err error) {
	if r.f.Seq != seq {
		return false, nil // an answer to an earlier attempt of an earlier request
	}
	if r.err != nil {
		return false, errResend // our answer, damaged: ask again
	}
	switch r.f.Type {
	case TypeNak:
		return false, errResend
	case TypeOK:
		if reply == nil {
			return true, nil
		}
		if err := json.Unmarshal(r.f.Payload, reply); err != nil {
			return true, fmt.Errorf("decode answer to %s: %w", t, err)
		}
		return true, nil
	case TypeError:
		re := &RemoteError{Request: t}
		if err := json.Unmarshal(r.f.Payload, &re.ErrorReply); err != nil {
			return true, fmt.Errorf("decode refusal of %s: %w", t, err)
		}
		return true, re
	}
	return false, nil
}

// VersionError: the two sides have no protocol version in common.
type VersionError struct {
	OursMin, OursMax     int
	TheirsMin, TheirsMax int
}

func (e *VersionError) Error() string {
	older := "the device's kentongand is newer: update kentonganctl"
	if e.TheirsMax < e.OursMin {
		older = "the device's kentongand is older: update it, or use an older kentonganctl"
	}
	return fmt.Sprintf("no common protocol version: this side speaks %d..%d, the device %d..%d; %s",
		e.OursMin, e.OursMax, e.TheirsMin, e.TheirsMax, older)
}

// Hello opens the session: the handshake settles the version, and the device says who it is.
func (c *Client) Hello(ctx context.Context, client string) (HelloReply, error) {
	return c.hello(ctx, Hello{MinVersion: MinVersion, MaxVersion: Version, Client: client})
}

func (c *Client) hello(ctx context.Context, h Hello) (HelloReply, error) {
	var r HelloReply
	err := c.Call(ctx, TypeHello, h, &r)
	var re *RemoteError
	if errors.As(err, &re) && re.Code == CodeVersion {
		return r, &VersionError{OursMin: h.MinVersion, OursMax: h.MaxVersion, TheirsMin: re.Min, TheirsMax: re.Max}
	}
	if err == nil && (r.Version < h.MinVersion || r.Version > h.MaxVersion) {
		return r, &VersionError{OursMin: h.MinVersion, OursMax: h.MaxVersion, TheirsMin: r.Version, TheirsMax: r.Version}
	}
	return r, err
}

// CSR asks for the device's certificate request.
func (c *Client) CSR(ctx context.Context) (CSRReply, error) {
	var r CSRReply
	return r, c.Call(ctx, TypeCSR, nil, &r)
}

// Install hands the device its configuration and credentials.
func (c *Client) Install(ctx context.Context, in Install) (InstallReply, error) {
	var r InstallReply
	return r, c.Call(ctx, TypeInstall, in, &r)
}

// SelfTest starts the device's self-test; Poll follows it.
func (c *Client) SelfTest(ctx context.Context, st SelfTest) error {
	return c.Call(ctx, TypeSelfTest, st, nil)
}

// Poll returns the self-test's events from index after on.
func (c *Client) Poll(ctx context.Context, after int) (PollReply, error) {
	var r PollReply
	return r, c.Call(ctx, TypePoll, Poll{After: after}, &r)
}

// Bye ends the session.
func (c *Client) Bye(ctx context.Context) error { return c.Call(ctx, TypeBye, nil, nil) }
