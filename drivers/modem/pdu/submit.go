package pdu

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Submit is one encoded SMS-SUBMIT part ready for AT+CMGS.
type Submit struct {
	PDU     string // hex, starting with "00" (use the SMSC stored in the SIM)
	TPDULen int    // octets after the SMSC part: the <length> argument of AT+CMGS
}

// SubmitOptions: zero value is fine.
type SubmitOptions struct {
	Ref             uint16 // concatenation reference for multi-part messages (caller picks, e.g. a counter); only the low 8 bits are sent unless Ref16
	Ref16           bool   // use the 16-bit reference IEI
	StatusReport    bool   // TP-SRR
	ValidityMinutes int    // relative validity period, rounded up to what TP-VP can say and capped at 63 weeks; 0 = none (TP-VPF 00); negative is an error
}

// Validity period formats (TP-VPF).
const (
	vpfNone     = 0
	vpfEnhanced = 1
	vpfRelative = 2
	vpfAbsolute = 3
)

// EncodeSubmit encodes text for the number `to` ("+62…" international, any other digits with an
// unknown type of number, which networks dial as written). It picks GSM7 if every rune is in the
// default alphabet or extension table, else UCS2, and splits into concatenated parts when needed
// (GSM7: 160 chars single / 153 per part, counting an extension char as 2 and never splitting an
// escape pair across parts; UCS2: 70 single / 67 per part, never splitting a surrogate pair; one
// unit less per part with Ref16). Invalid UTF-8 is sent as U+FFFD. Returns ErrTooLong beyond 255
// parts and ErrBadAddress for a number that is not digits.
func EncodeSubmit(to, text string, opt SubmitOptions) ([]Submit, error) {
	out, err := encodeSubmit(to, text, opt)
	if err != nil {
		return nil, fmt.Errorf("encoding SMS-SUBMIT to %q: %w", to, err)
	}
	return out, nil
}

func encodeSubmit(to, text string, opt SubmitOptions) ([]Submit, error) {
	da, err := destinationField(to)
	if err != nil {
		return nil, err
	}
	vpf, vp := byte(vpfNone), []byte(nil)
	if opt.ValidityMinutes < 0 {
		return nil, fmt.Errorf("%w: validity of %d minutes", ErrBadOption, opt.ValidityMinutes)
	}
	if opt.ValidityMinutes > 0 {
		vpf, vp = vpfRelative, []byte{relativeValidity(opt.ValidityMinutes)}
	}
	a, parts, err := encodeParts(text, false, opt.Ref, opt.Ref16)
	if err != nil {
		return nil, err
	}
	dcs := byte(dcsGSM7)
	if a == UCS2 {
		dcs = dcsUCS2
	}
	out := make([]Submit, len(parts))
	for i, p := range parts {
		fo := mtiSubmit | vpf<<foVPFShift
		if opt.StatusReport {
			fo |= foSRR
		}
		if p.udhi {
			fo |= foUDHI
		}
		// TP-MR 0: the modem puts its own message reference in.
		t := append([]byte{fo, 0x00}, da...)
		t = append(t, 0x00, dcs)
		t = append(t, vp...)
		t = append(t, p.udl)
		t = append(t, p.ud...)
		out[i] = Submit{PDU: "00" + strings.ToUpper(hex.EncodeToString(t)), TPDULen: len(t)}
	}
	return out, nil
}

// relativeValidity encodes a relative TP-VP (TS 23.040 9.2.3.12.1), rounding up so that the
// message lives at least as long as asked, and capping at the longest period the octet can say.
func relativeValidity(minutes int) byte {
	switch {
	case minutes <= 12*60:
		return byte((minutes+4)/5 - 1)
	case minutes <= 24*60:
		return byte(143 + (minutes-12*60+29)/30)
	case minutes <= 30*24*60:
		return byte(166 + (minutes+24*60-1)/(24*60))
	case minutes <= 63*7*24*60:
		return byte(192 + (minutes+7*24*60-1)/(7*24*60))
	}
	return 255
}

// SubmitDecoded is a decoded SMS-SUBMIT.
type SubmitDecoded struct {
	To       Address
	Alphabet Alphabet
	Concat   *Concat
	Text     string
	SRR      bool
}

// DecodeSubmit decodes a SUBMIT PDU (as EncodeSubmit produced, hex with SMSC prefix) — used by the
// simulator to read what the daemon sent. Errors are as for DecodeDeliver, with ErrNotSubmit for
// a TPDU of another type.
func DecodeSubmit(hexPDU string) (*SubmitDecoded, error) {
	s, err := decodeSubmit(hexPDU)
	if err != nil {
		return nil, fmt.Errorf("decoding SMS-SUBMIT: %w", err)
	}
	return s, nil
}

func decodeSubmit(hexPDU string) (*SubmitDecoded, error) {
	b, err := parseHex(hexPDU)
	if err != nil {
		return nil, err
	}
	r := &reader{b: b}
	if _, err := smscPrefix(r); err != nil {
		return nil, err
	}
	fo, err := r.byte("first octet")
	if err != nil {
		return nil, err
	}
	if mti := fo & mtiMask; mti != mtiSubmit {
		return nil, fmt.Errorf("%w: TP-MTI is %d", ErrNotSubmit, mti)
	}
	s := SubmitDecoded{SRR: fo&foSRR != 0}
	if _, err := r.byte("message reference"); err != nil {
		return nil, err
	}
	if s.To, err = readAddress(r, "destination address"); err != nil {
		return nil, err
	}
	if _, err := r.byte("protocol identifier"); err != nil {
		return nil, err
	}
	dcs, err := r.byte("data coding scheme")
	if err != nil {
		return nil, err
	}
	var compressed bool
	s.Alphabet, compressed = alphabetOf(dcs)
	if compressed {
		return nil, fmt.Errorf("%w: compressed user data (DCS %02X)", ErrUnsupported, dcs)
	}
	switch fo >> foVPFShift & 3 {
	case vpfRelative:
		_, err = r.byte("validity period")
	case vpfEnhanced, vpfAbsolute:
		_, err = r.bytes(7, "validity period")
	}
	if err != nil {
		return nil, err
	}
	ud, err := readUserData(r, fo&foUDHI != 0, s.Alphabet)
	if err != nil {
		return nil, err
	}
	s.Concat, s.Text = ud.concat, ud.text
	return &s, nil
}
