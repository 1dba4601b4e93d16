package pdu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Alphabet of the user data, from the DCS.
type Alphabet int

const (
	GSM7  Alphabet = iota // GSM 03.38 default alphabet, septets, with the extension table (ESC 0x1B)
	Data8                 // 8-bit data
	UCS2                  // UTF-16BE, including surrogate pairs (emoji)
)

func (a Alphabet) String() string {
	switch a {
	case GSM7:
		return "GSM7"
	case Data8:
		return "Data8"
	case UCS2:
		return "UCS2"
	}
	return fmt.Sprintf("Alphabet(%d)", int(a))
}

// NumberType is the type of number (TON) of an address.
type NumberType int

const (
	TypeUnknown       NumberType = iota
	TypeInternational            // TON 1: Number is "+<digits>"
	TypeNational                 // TON 2: Number is the digits as sent, e.g. "08123..."
	TypeAlphanumeric             // TON 5: Number is the decoded GSM7 text, e.g. "TELKOMSEL"
)

func (t NumberType) String() string {
	switch t {
	case TypeUnknown:
		return "unknown"
	case TypeInternational:
		return "international"
	case TypeNational:
		return "national"
	case TypeAlphanumeric:
		return "alphanumeric"
	}
	return fmt.Sprintf("NumberType(%d)", int(t))
}

// Address is a phone number or alphanumeric sender.
type Address struct {
	Number string
	Type   NumberType
}

// Concat is the concatenation header of one part (UDH IEI 0x00 8-bit ref, or 0x08 16-bit ref).
type Concat struct {
	Ref   uint16
	Total int  // parts in the message, 1..255
	Seq   int  // this part, 1-based
	Ref16 bool // the reference was 16-bit (IEI 0x08)
}

// Errors. Decoding errors are *MalformedError values, which match ErrMalformed with errors.Is and
// also any more specific sentinel below that caused them.
var (
	// ErrMalformed is matched by every error about a PDU that does not follow TS 23.040.
	ErrMalformed = errors.New("malformed PDU")
	// ErrNotDeliver is returned by DecodeDeliver for a TPDU whose MTI is not SMS-DELIVER (a stored
	// SUBMIT, a STATUS-REPORT): well-formed, just not a received message.
	ErrNotDeliver = errors.New("not an SMS-DELIVER")
	// ErrNotSubmit is returned by DecodeSubmit for a TPDU whose MTI is not SMS-SUBMIT.
	ErrNotSubmit = errors.New("not an SMS-SUBMIT")
	// ErrTooLong is returned when a text needs more than 255 parts.
	ErrTooLong = errors.New("message too long") // more than 255 parts
	// ErrBadAddress is returned for a number that cannot be encoded, and matched (with
	// ErrMalformed) by a PDU whose address cannot be decoded.
	ErrBadAddress = errors.New("bad address")
	// ErrUnsupported is returned for a well-formed PDU using a feature this package does not
	// implement: compressed user data (TS 23.042).
	ErrUnsupported = errors.New("unsupported PDU feature")
	// ErrBadOption is returned for SubmitOptions that cannot be encoded.
	ErrBadOption = errors.New("bad submit option")
)

// MalformedError says what was wrong with a PDU and where, so that a log line is enough to find
// the octet in a modem trace.
type MalformedError struct {
	// Offset is the octet, counted from the start of the whole PDU (SMSC prefix included), at
	// which decoding failed.
	Offset int
	// What describes the field and the problem.
	What string
	// Err is a more specific sentinel (ErrBadAddress), or nil.
	Err error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed PDU at octet %d: %s", e.Offset, e.What)
}

// Unwrap lets errors.Is match ErrMalformed and the specific cause.
func (e *MalformedError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformed, e.Err}
	}
	return []error{ErrMalformed}
}

// reader walks the octets of a PDU, turning every overrun into a MalformedError that names the
// field being read.
type reader struct {
	b   []byte
	off int
}

func (r *reader) errorf(at int, format string, args ...any) error {
	return &MalformedError{Offset: at, What: fmt.Sprintf(format, args...)}
}

func (r *reader) byte(what string) (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.errorf(r.off, "%s: PDU ends after %d octets", what, len(r.b))
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n int, what string) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, r.errorf(r.off, "%s: needs %d octets, %d left", what, n, len(r.b)-r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return r.errorf(r.off, "%d octets after the user data", len(r.b)-r.off)
	}
	return nil
}

// parseHex decodes a PDU as a modem prints it, tolerating case and the surrounding whitespace
// of a line read from the serial port.
func parseHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, &MalformedError{What: "empty PDU"}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		var ie hex.InvalidByteError
		if errors.As(err, &ie) {
			i := strings.IndexByte(s, byte(ie))
			return nil, &MalformedError{Offset: i / 2, What: fmt.Sprintf("not hex: %v", err)}
		}
		return nil, &MalformedError{Offset: len(s) / 2, What: fmt.Sprintf("not hex: %v", err)}
	}
	return b, nil
}

// smscPrefix reads the SMSC length and address that a modem prints before the TPDU.
func smscPrefix(r *reader) (Address, error) {
	at := r.off
	n, err := r.byte("SMSC length")
	if err != nil {
		return Address{}, err
	}
	if n == 0 {
		return Address{}, nil
	}
	if n > 12 {
		return Address{}, &MalformedError{Offset: at, What: fmt.Sprintf("SMSC length %d octets, at most 12", n), Err: ErrBadAddress}
	}
	body, err := r.bytes(int(n), "SMSC address")
	if err != nil {
		return Address{}, err
	}
	a, err := decodeAddressBody(body[0], body[1:], 2*(int(n)-1), true)
	if err != nil {
		return Address{}, &MalformedError{Offset: at + 1, What: "SMSC address: " + err.Error(), Err: ErrBadAddress}
	}
	return a, nil
}
