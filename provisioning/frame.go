// Package provisioning is the protocol that kentonganctl (the technician's laptop) and kentongand
// (the kiosk) speak over a USB serial line to set a kiosk up: framed messages with a CRC-32 and
// sequence numbers, a version handshake, acknowledgements, timeouts and retries.
//
// A frame on the wire:
//
//	0x7E | length (2, big-endian) | seq (2) | type (1) | header check (2) | payload | CRC-32 (4)
//
// length counts the payload bytes only. The header check is the low 16 bits of the CRC-32 of
// the five bytes before it: it lets a reader reject a false start byte in line noise before
// trusting its length, so that noise never makes it wait for a frame that is not coming. The
// CRC-32 (IEEE) covers everything after the start byte up to the payload's end. Payloads are
// JSON.
//
// The laptop asks and the device answers: each request carries a sequence number that its
// answer repeats, and a request sent again after a timeout keeps its number, so the device
// answers a repeat from its memory rather than doing the work twice. docs/provisioning.md
// describes the session step by step.
package provisioning

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// StartByte begins every frame.
const StartByte = 0x7E

// MaxPayload is the largest payload either side sends or accepts: a certificate, its CA and a
// kiosk's configuration fit several times over, and a corrupted length cannot make a reader
// buffer more.
const MaxPayload = 32 << 10

const (
	headerLen  = 8 // start, length, seq, type, header check
	trailerLen = 4
)

// Type says what a frame carries.
type Type byte

// Frame types. Requests go from the laptop to the device; each gets one answer: TypeOK,
// TypeError, or TypeNak when the request arrived damaged.
const (
	TypeHello    Type = 0x01 // version handshake and the device's identity
	TypeCSR      Type = 0x02 // the device's certificate request
	TypeInstall  Type = 0x03 // configuration and credentials to store
	TypeSelfTest Type = 0x04 // start the self-test
	TypePoll     Type = 0x05 // what the self-test has done since
	TypeBye      Type = 0x06 // the session is over

	TypeOK    Type = 0x40 // the request was carried out; payload is its answer
	TypeError Type = 0x41 // the request was refused; payload is an ErrorReply
	TypeNak   Type = 0x42 // the frame was damaged: send it again
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeCSR:
		return "csr"
	case TypeInstall:
		return "install"
	case TypeSelfTest:
		return "selftest"
	case TypePoll:
		return "poll"
	case TypeBye:
		return "bye"
	case TypeOK:
		return "ok"
	case TypeError:
		return "error"
	case TypeNak:
		return "nak"
	}
	return fmt.Sprintf("type 0x%02x", byte(t))
}

func (t Type) request() bool { return t >= TypeHello && t <= TypeBye }

// Frame is one message on the line.
type Frame struct {
	Seq     uint16
	Type    Type
	Payload []byte
}

// Errors of framing.
var (
	// ErrTooLarge: a payload beyond MaxPayload.
	ErrTooLarge = errors.New("frame payload too large")
	// ErrChecksum: a frame whose header was sound arrived with a wrong CRC-32. The reader
	// returns it with the frame's header (seq and type) so that the receiver can ask again.
	ErrChecksum = errors.New("frame checksum mismatch")
)

// AppendFrame appends f's encoding to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	if len(f.Payload) > MaxPayload {
		return b, fmt.Errorf("encode %s frame: %w: %d bytes, at most %d", f.Type, ErrTooLarge, len(f.Payload), MaxPayload)
	}
	start := len(b)
	b = append(b, StartByte, 0, 0, 0, 0, byte(f.Type), 0, 0)
	h := b[start:]
	binary.BigEndian.PutUint16(h[1:3], uint16(len(f.Payload)))
	binary.BigEndian.PutUint16(h[3:5], f.Seq)
	binary.BigEndian.PutUint16(h[6:8], uint16(crc32.ChecksumIEEE(h[1:6])))
	b = append(b, f.Payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start+1:])), nil
}

// WriteFrame writes f to w in one Write, so that frames from one writer never interleave.
func WriteFrame(w io.Writer, f Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s frame: %w", f.Type, err)
	}
	return nil
}

// Reader reads frames from a byte stream that may also carry noise: bytes before a start byte,
// false start bytes, truncated and corrupted frames are skipped. It counts what it skipped, so
// that a caller that never sees a frame can tell silence from garbage (a wrong baud rate).
type Reader struct {
	r   io.Reader
	buf []byte
	// off is where unread bytes start in buf.
	off int

	skipped int64
	read    int64
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Skipped is how many bytes were thrown away as noise so far.
func (r *Reader) Skipped() int64 { return r.skipped }

// BytesRead is how many bytes came from the underlying reader so far.
func (r *Reader) BytesRead() int64 { return r.read }

// ReadFrame returns the next sound frame. A frame with a sound header but a wrong CRC comes back
// as its header (no payload) with an error wrapping ErrChecksum; the reader then goes on after
// the false frame's start byte, so a real frame hidden in it is still found. Other errors are the
// underlying reader's: io.EOF when the line closed.
func (r *Reader) ReadFrame() (Frame, error) {
	for {
		// Drop everything before the next start byte.
		data := r.buf[r.off:]
		if i := bytes.IndexByte(data, StartByte); i < 0 {
			r.skip(len(data))
		} else {
			r.skip(i)
		}
		if err := r.fill(headerLen); err != nil {
			return Frame{}, err
		}
		h := r.buf[r.off : r.off+headerLen]
		n := int(binary.BigEndian.Uint16(h[1:3]))
		if binary.BigEndian.Uint16(h[6:8]) != uint16(crc32.ChecksumIEEE(h[1:6])) || n > MaxPayload {
			r.skip(1) // a false start byte
			continue
		}
		if err := r.fill(headerLen + n + trailerLen); err != nil {
			return Frame{}, err
		}
		whole := r.buf[r.off : r.off+headerLen+n+trailerLen]
		f := Frame{Seq: binary.BigEndian.Uint16(whole[3:5]), Type: Type(whole[5])}
		body := whole[1 : headerLen+n]
		if binary.BigEndian.Uint32(whole[headerLen+n:]) != crc32.ChecksumIEEE(body) {
			r.skip(1)
			return f, fmt.Errorf("%s frame seq %d: %w", f.Type, f.Seq, ErrChecksum)
		}
		f.Payload = bytes.Clone(whole[headerLen : headerLen+n])
		r.off += len(whole)
		return f, nil
	}
}

func (r *Reader) skip(n int) {
	r.off += n
	r.skipped += int64(n)
}

// fill reads until at least n unread bytes are buffered.
func (r *Reader) fill(n int) error {
	if r.off > 0 && len(r.buf)-r.off < n {
		// Compact, so the buffer stays about one frame long.
		r.buf = append(r.buf[:0], r.buf[r.off:]...)
		r.off = 0
	}
	for len(r.buf)-r.off < n {
		if cap(r.buf)-len(r.buf) < 512 {
			r.buf = append(r.buf, make([]byte, 4096)...)[:len(r.buf)]
		}
		m, err := r.r.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		r.read += int64(m)
		if err != nil && len(r.buf)-r.off < n {
			return err
		}
	}
	return nil
}
