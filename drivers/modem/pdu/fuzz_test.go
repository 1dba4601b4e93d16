package pdu

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeDeliver feeds arbitrary octets (as the hex a modem prints) to DecodeDeliver: it must
// never panic, must fail with one of the documented errors, and what it decodes must hang
// together. Seeds are in testdata/fuzz/FuzzDecodeDeliver.
func FuzzDecodeDeliver(f *testing.F) {
	for _, s := range []string{
		"07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
		"0791447758100650040DD0F334FC1CA6970100008080312170224008D4F29CDE0EA7D9",
		"00440B912618214365F7000052107121436582120608041234020" + "1E8329BFD4697D9EC37",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDeliver(hex.EncodeToString(b))
		if err != nil {
			if d != nil {
				t.Fatalf("result with error %v", err)
			}
			var me *MalformedError
			switch {
			case errors.As(err, &me):
				if me.Offset < 0 || me.Offset > len(b) {
					t.Fatalf("offset %d outside %d octets: %v", me.Offset, len(b), err)
				}
			case errors.Is(err, ErrNotDeliver), errors.Is(err, ErrUnsupported):
			default:
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if a, compressed := alphabetOf(d.DCS); a != d.Alphabet || compressed {
			t.Fatalf("alphabet %s from DCS %02X", d.Alphabet, d.DCS)
		}
		switch d.Alphabet {
		case GSM7:
			if len(d.Data) > maxSeptets {
				t.Fatalf("%d septets", len(d.Data))
			}
			for _, s := range d.Data {
				if s > 0x7F {
					t.Fatalf("septet %02X", s)
				}
			}
			if d.Text != decodeGSM7(d.Data) {
				t.Fatalf("text %q does not match data % X", d.Text, d.Data)
			}
		case UCS2:
			if len(d.Data) > maxOctets || d.Text != decodeUCS2(d.Data) {
				t.Fatalf("text %q does not match data % X", d.Text, d.Data)
			}
		case Data8:
			if len(d.Data) > maxOctets || d.Text != string(d.Data) {
				t.Fatalf("text %q does not match data % X", d.Text, d.Data)
			}
		default:
			t.Fatalf("alphabet %d", d.Alphabet)
		}
		if d.Alphabet != Data8 && !utf8.ValidString(d.Text) {
			t.Fatalf("invalid UTF-8 text %q", d.Text)
		}
		if c := d.Concat; c != nil && (c.Total < 2 || c.Total > maxParts || c.Seq < 1 || c.Seq > c.Total || !c.Ref16 && c.Ref > 0xFF) {
			t.Fatalf("concat %+v", c)
		}
		for _, a := range []Address{d.SMSC, d.From} {
			if a.Type < TypeUnknown || a.Type > TypeAlphanumeric || !utf8.ValidString(a.Number) {
				t.Fatalf("address %+v", a)
			}
			if a.Type == TypeInternational && !strings.HasPrefix(a.Number, "+") {
				t.Fatalf("international address %+v", a)
			}
		}
		if _, off := d.Timestamp.Zone(); off%900 != 0 || off > maxQuarters*900 || off < -maxQuarters*900 {
			t.Fatalf("zone offset %d", off)
		}
		if y := d.Timestamp.Year(); y < 1990 || y > 2089 {
			t.Fatalf("year %d", y)
		}
		// The timestamp encodes and decodes back to itself.
		enc, err := scts(d.Timestamp)
		if err != nil {
			t.Fatalf("re-encoding timestamp %s: %v", d.Timestamp, err)
		}
		if back, err := readSCTS(&reader{b: enc}); err != nil || !back.Equal(d.Timestamp) || back.Location().String() != d.Timestamp.Location().String() {
			t.Fatalf("timestamp %s came back as %s (%v)", d.Timestamp, back, err)
		}
		// Whatever text was decoded can be delivered again and reads the same.
		if d.Alphabet != Data8 {
			hexes, err := EncodeDeliver("", "+62812", d.Text, d.Timestamp, 1, false)
			if err != nil && !errors.Is(err, ErrTooLong) {
				t.Fatalf("re-encoding %q: %v", d.Text, err)
			}
			var joined strings.Builder
			for _, h := range hexes {
				p, err := DecodeDeliver(h)
				if err != nil {
					t.Fatalf("re-decoding: %v", err)
				}
				joined.WriteString(p.Text)
			}
			if err == nil && joined.String() != d.Text {
				t.Fatalf("re-delivered %q, got %q", d.Text, joined.String())
			}
		}
	})
}

// FuzzEncodeSubmitRoundTrip checks that any valid UTF-8 text comes back whole from
// EncodeSubmit and DecodeSubmit, part by part, with consistent headers. Seeds are in
// testdata/fuzz/FuzzEncodeSubmitRoundTrip.
func FuzzEncodeSubmitRoundTrip(f *testing.F) {
	f.Add("hellohello", uint16(0), false, false)
	f.Add(strings.Repeat("a", 152)+"€b", uint16(300), true, true)
	f.Add("Tolong 🙏 "+strings.Repeat("ç", 66)+"🔥", uint16(7), false, false)
	f.Fuzz(func(t *testing.T, text string, ref uint16, ref16, srr bool) {
		if !utf8.ValidString(text) {
			t.Skip()
		}
		opt := SubmitOptions{Ref: ref, Ref16: ref16, StatusReport: srr}
		n, a := PartsWith(text, opt)
		parts, err := EncodeSubmit("+6281234567890", text, opt)
		if err != nil {
			if errors.Is(err, ErrTooLong) && n > maxParts {
				return
			}
			t.Fatalf("%d parts: %v", n, err)
		}
		if len(parts) != n {
			t.Fatalf("PartsWith %d, EncodeSubmit %d", n, len(parts))
		}
		wantRef := ref
		if !ref16 {
			wantRef &= 0xFF
		}
		var joined strings.Builder
		for i, p := range parts {
			if len(p.PDU) != 2+2*p.TPDULen || p.TPDULen > 164 {
				t.Fatalf("part %d: %d hex digits, TPDULen %d", i+1, len(p.PDU), p.TPDULen)
			}
			s, err := DecodeSubmit(p.PDU)
			if err != nil {
				t.Fatalf("part %d: %v", i+1, err)
			}
			if s.Alphabet != a || s.SRR != srr {
				t.Fatalf("part %d: %s SRR %v", i+1, s.Alphabet, s.SRR)
			}
			if n == 1 && s.Concat != nil ||
				n > 1 && (s.Concat == nil || *s.Concat != Concat{Ref: wantRef, Total: n, Seq: i + 1, Ref16: ref16}) {
				t.Fatalf("part %d of %d: concat %+v", i+1, n, s.Concat)
			}
			joined.WriteString(s.Text)
		}
		if joined.String() != text {
			t.Fatalf("round trip gave %q, want %q", joined.String(), text)
		}
	})
}
