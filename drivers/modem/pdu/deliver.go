package pdu

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// First-octet bits (TS 23.040 9.2.3).
const (
	mtiMask    = 0x03
	mtiDeliver = 0x00
	mtiSubmit  = 0x01
	foMMS      = 0x04 // DELIVER: set when no more messages are waiting
	foVPFShift = 3    // SUBMIT: validity period format, bits 3-4
	foSRR      = 0x20 // SUBMIT: status report requested
	foUDHI     = 0x40
)

// DCS values the encoders write: general data coding, no class.
const (
	dcsGSM7 = 0x00
	dcsUCS2 = 0x08
)

// Deliver is one decoded SMS-DELIVER TPDU (what a modem returns for a received message).
type Deliver struct {
	SMSC               Address // from the SMSC prefix; zero if length 0
	From               Address // TP-OA
	PID                byte
	DCS                byte
	Alphabet           Alphabet
	Timestamp          time.Time // TP-SCTS, in its own zone (time.FixedZone with the quarter-hour offset)
	Concat             *Concat   // nil for a single-part message
	Text               string    // decoded text (for Data8: the bytes as-is in a string)
	Data               []byte    // raw user data after the UDH (septets unpacked to one byte each for GSM7)
	MoreMessagesToSend bool
}

// DecodeDeliver decodes a hex PDU as AT+CMGL / AT+CMGR / +CMT print it in PDU mode (AT+CMGF=0):
// SMSC length+address first, then the TPDU. Malformed input returns an error wrapping ErrMalformed
// (a *MalformedError with what and at which octet), never panics. A PDU that is a
// SUBMIT/STATUS-REPORT (MTI != 0) returns ErrNotDeliver; compressed user data returns
// ErrUnsupported.
func DecodeDeliver(hexPDU string) (*Deliver, error) {
	d, err := decodeDeliver(hexPDU)
	if err != nil {
		return nil, fmt.Errorf("decoding SMS-DELIVER: %w", err)
	}
	return d, nil
}

func decodeDeliver(hexPDU string) (*Deliver, error) {
	b, err := parseHex(hexPDU)
	if err != nil {
		return nil, err
	}
	r := &reader{b: b}
	var d Deliver
	if d.SMSC, err = smscPrefix(r); err != nil {
		return nil, err
	}
	fo, err := r.byte("first octet")
	if err != nil {
		return nil, err
	}
	if mti := fo & mtiMask; mti != mtiDeliver {
		return nil, fmt.Errorf("%w: TP-MTI is %d", ErrNotDeliver, mti)
	}
	d.MoreMessagesToSend = fo&foMMS == 0
	if d.From, err = readAddress(r, "originator address"); err != nil {
		return nil, err
	}
	if d.PID, err = r.byte("protocol identifier"); err != nil {
		return nil, err
	}
	if d.DCS, err = r.byte("data coding scheme"); err != nil {
		return nil, err
	}
	var compressed bool
	d.Alphabet, compressed = alphabetOf(d.DCS)
	if compressed {
		return nil, fmt.Errorf("%w: compressed user data (DCS %02X)", ErrUnsupported, d.DCS)
	}
	if d.Timestamp, err = readSCTS(r); err != nil {
		return nil, err
	}
	ud, err := readUserData(r, fo&foUDHI != 0, d.Alphabet)
	if err != nil {
		return nil, err
	}
	d.Concat, d.Data, d.Text = ud.concat, ud.data, ud.text
	return &d, nil
}

// EncodeDeliver builds SMS-DELIVER PDUs (hex, with an SMSC prefix) the way a network would deliver
// the text — used by the modem simulator in tests. from may be "+62…" (international), digits
// (national) or letters (alphanumeric, at most 11 GSM7 septets). smsc is "+62…", digits or ""
// for a zero-length prefix. Multi-part when needed, with concatenation reference ref (the 16-bit
// element when ref does not fit in 8 bits). ts is written in its own zone, truncated to the
// quarter hour, and must fall in 1990..2089 (two year digits).
func EncodeDeliver(smsc, from, text string, ts time.Time, ref uint16, forceUCS2 bool) ([]string, error) {
	out, err := encodeDeliver(smsc, from, text, ts, ref, forceUCS2)
	if err != nil {
		return nil, fmt.Errorf("encoding SMS-DELIVER from %q: %w", from, err)
	}
	return out, nil
}

func encodeDeliver(smsc, from, text string, ts time.Time, ref uint16, forceUCS2 bool) ([]string, error) {
	sc, err := smscField(smsc)
	if err != nil {
		return nil, err
	}
	oa, err := originatorField(from)
	if err != nil {
		return nil, err
	}
	st, err := scts(ts)
	if err != nil {
		return nil, err
	}
	a, parts, err := encodeParts(text, forceUCS2, ref, ref > 0xFF)
	if err != nil {
		return nil, err
	}
	dcs := byte(dcsGSM7)
	if a == UCS2 {
		dcs = dcsUCS2
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		fo := byte(mtiDeliver | foMMS)
		if p.udhi {
			fo |= foUDHI
		}
		b := append([]byte{}, sc...)
		b = append(b, fo)
		b = append(b, oa...)
		b = append(b, 0x00, dcs) // PID: plain short message
		b = append(b, st...)
		b = append(b, p.udl)
		b = append(b, p.ud...)
		out[i] = strings.ToUpper(hex.EncodeToString(b))
	}
	return out, nil
}
