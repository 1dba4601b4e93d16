package pdu

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func septetsOf(t *testing.T, s string) []byte {
	t.Helper()
	b, ok := encodeGSM7(s)
	if !ok {
		t.Fatalf("%q is not GSM7", s)
	}
	return b
}

// The packing examples of TS 23.038 6.1.2.1.1 and the textbook "hellohello".
func TestPackSeptets(t *testing.T) {
	for _, tc := range []struct {
		text string
		fill int
		want string
	}{
		{"hellohello", 0, "E8329BFD4697D9EC37"},
		{"hello", 0, "E8329BFD06"},
		{"How are you?", 0, "C8F71D14969741F977FD07"},
		{"Testmail", 0, "D4F29CDE0EA7D9"},
		// After a 6-octet concatenation header one fill bit puts the text on a septet boundary.
		{"hello", 1, "D06536FB0D"},
		// 7 septets leave 7 spare bits, which carry <CR> (0x0D) rather than zeros.
		{"1234567", 0, "31D98C56B3DD1A"},
	} {
		got := packSeptets(septetsOf(t, tc.text), tc.fill, true)
		if g := strings.ToUpper(hex.EncodeToString(got)); g != tc.want {
			t.Errorf("pack(%q, fill %d) = %s, want %s", tc.text, tc.fill, g, tc.want)
		}
		back := unpackSeptets(got, tc.fill, len(tc.text))
		if s := decodeGSM7(back); s != tc.text {
			t.Errorf("unpack(pack(%q)) = %q", tc.text, s)
		}
	}
}

func TestPackCRPaddingOnlyWhenSevenBitsSpare(t *testing.T) {
	for n := 1; n <= 40; n++ {
		sept := bytes.Repeat([]byte{0x41}, n)
		got := packSeptets(sept, 0, true)
		last := got[len(got)-1]
		if n%8 == 7 {
			if last>>1 != crPad {
				t.Errorf("%d septets: last octet %02X, want <CR> in the top 7 bits", n, last)
			}
		} else if bytes.Equal(got, packSeptets(sept, 0, false)) == false {
			t.Errorf("%d septets: padding changed output with no 7 spare bits", n)
		}
		// The decoder reads by septet count: neither the <CR> nor zero padding shows up.
		for _, pad := range []bool{true, false} {
			if s := decodeGSM7(unpackSeptets(packSeptets(sept, 0, pad), 0, n)); s != strings.Repeat("A", n) {
				t.Errorf("%d septets (CR pad %v) decode to %q", n, pad, s)
			}
		}
	}
}

func TestDecodeGSM7Escapes(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte{0x1B, 0x65}, "€"},
		{[]byte{0x1B, 0x0A}, "\f"},
		{[]byte{0x1B, 0x14, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x2F, 0x1B, 0x3C, 0x1B, 0x3D, 0x1B, 0x3E, 0x1B, 0x40}, "^{}\\[~]|"},
		{[]byte{0x1B, 0x41}, "A"},  // unknown in the extension table: the default character
		{[]byte{0x1B, 0x00}, "@"},  // likewise
		{[]byte{0x1B, 0x1B}, " "},  // reserved escape-escape: a space
		{[]byte{0x41, 0x1B}, "A "}, // dangling escape at the end
		{[]byte{0x00, 0x02, 0x7F}, "@$à"},
	} {
		if got := decodeGSM7(tc.in); got != tc.want {
			t.Errorf("decode % X = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGSM7TablesAgree(t *testing.T) {
	for i, r := range gsm7Base {
		if i == esc {
			continue
		}
		if c := gsm7Code[r]; len(c) != 1 || int(c[0]) != i {
			t.Errorf("%q: code % X, want %02X", r, c, i)
		}
	}
	for c, r := range gsm7Ext {
		if got := gsm7Code[r]; !bytes.Equal(got, []byte{esc, c}) {
			t.Errorf("%q: code % X, want 1B %02X", r, got, c)
		}
	}
	for _, r := range "çÇ`\x1bá" {
		if r == 'Ç' {
			continue
		}
		if gsm7Septets(r) != 0 {
			t.Errorf("%q must not be GSM7", r)
		}
	}
}

func TestRelativeValidity(t *testing.T) {
	for _, tc := range []struct {
		minutes int
		want    byte
	}{
		{1, 0}, {5, 0}, {6, 1}, {60, 11}, {12 * 60, 143},
		{12*60 + 1, 144}, {24 * 60, 167},
		{24*60 + 1, 168}, {4 * 24 * 60, 170}, {30 * 24 * 60, 196},
		{30*24*60 + 1, 197}, {63 * 7 * 24 * 60, 255}, {1 << 30, 255},
	} {
		if got := relativeValidity(tc.minutes); got != tc.want {
			t.Errorf("relativeValidity(%d) = %d, want %d", tc.minutes, got, tc.want)
		}
	}
}

func TestGSM7Len(t *testing.T) {
	for _, tc := range []struct {
		s  string
		n  int
		ok bool
	}{
		{"", 0, true},
		{"Laporan diterima. No tiket 112-000123", 37, true},
		{"{€}", 6, true},      // extension characters take two septets
		{"é@£", 3, true},      // in the default alphabet, not ASCII
		{"jalan 🚧", 6, false}, // an emoji sends the message as UCS-2
		{"“kutip”", 5, false},
	} {
		n, ok := GSM7Len(tc.s)
		if n != tc.n || ok != tc.ok {
			t.Errorf("GSM7Len(%q) = %d, %v; want %d, %v", tc.s, n, ok, tc.n, tc.ok)
		}
	}
}
