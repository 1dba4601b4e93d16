package pdu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

func TestEncodeSubmitVectors(t *testing.T) {
	hello70 := strings.Repeat("hello", 70)
	for _, tc := range []struct {
		name string
		to   string
		text string
		opt  pdu.SubmitOptions
		want []string // TPDUs, without the "00" SMSC prefix
	}{
		{
			// The textbook SUBMIT (dreamfabric, also oFono's simple_submit): TP-VP AA, 4 days.
			name: "hellohello, 4 days",
			to:   "+46708251358", text: "hellohello",
			opt:  pdu.SubmitOptions{ValidityMinutes: 4 * 24 * 60},
			want: []string{"11000B916407281553F80000AA0AE8329BFD4697D9EC37"},
		},
		{
			name: "hellohello, no validity",
			to:   "+46708251358", text: "hellohello",
			want: []string{"01000B916407281553F800000AE8329BFD4697D9EC37"},
		},
		{
			// oFono's test_prepare_7bit, 24 hours (A7).
			name: "This is testing !",
			to:   "+358478400241", text: "This is testing !",
			opt:  pdu.SubmitOptions{ValidityMinutes: 24 * 60},
			want: []string{"11000C915348870420140000A71154747A0E4ACF41F4F29C9E769F4121"},
		},
		{
			// oFono's default-alphabet extension vector: every extension character.
			name: "extension table",
			to:   "+35010101010", text: "\f^ {}\\[~]|€",
			want: []string{"01000B915310101010F00000151BC58602DAA036A9CD6BC3DBF436BE0D705306"},
		},
		{
			// "hello" x 70 from luvit's lua-gsmmodem tests (there with TP-MR 01, here 00):
			// 153 + 153 + 44 septets, 8-bit reference 1, status report requested.
			name: "three parts, status report",
			to:   "+77777777777", text: hello70,
			opt: pdu.SubmitOptions{Ref: 1, StatusReport: true},
			want: []string{
				"61000B917777777777F70000A0050003010301D06536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9",
				"61000B917777777777F70000A0050003010302D86F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD1",
				"61000B917777777777F7000033050003010303CA6CF61B5D66B3DFE8329BFD4697D9EC37BACC66BFD16536FB8D2EB3D96F7499CD7EA3CB6CF61B",
			},
		},
		{
			// UCS2 with an emoji as a surrogate pair; a national number goes out with an
			// unknown type of number (81).
			name: "UCS2 emoji, national number",
			to:   "081234567890", text: "Tolong 🙏",
			want: []string{"01000C8180214365870900081200540" + "06F006C006F006E00670020D83DDE4F"},
		},
		{
			// 16-bit reference: the 7-octet header is 8 septets, so the text starts on an octet.
			name: "16-bit reference",
			to:   "112", text: strings.Repeat("hellohello", 17),
			opt:  pdu.SubmitOptions{Ref: 0x1234, Ref16: true},
			want: nil, // checked structurally below
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := pdu.EncodeSubmit(tc.to, tc.text, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && len(parts) != len(tc.want) {
				t.Fatalf("%d parts, want %d", len(parts), len(tc.want))
			}
			for i, p := range parts {
				if !strings.HasPrefix(p.PDU, "00") || len(p.PDU) != 2+2*p.TPDULen {
					t.Errorf("part %d: PDU %d hex digits with TPDULen %d", i+1, len(p.PDU), p.TPDULen)
				}
				if tc.want != nil && p.PDU[2:] != tc.want[i] {
					t.Errorf("part %d:\n got %s\nwant %s", i+1, p.PDU[2:], tc.want[i])
				}
			}
			if tc.name == "16-bit reference" {
				if len(parts) != 2 || !strings.HasPrefix(parts[0].PDU, "0041000381"+"11F2"+"0000"+"A0"+"06080412340201"+"E8329BFD4697D9EC37") {
					t.Errorf("parts %+v", parts)
				}
			}
		})
	}
}

func TestEncodeSubmitSplitting(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	c := func(n int) string { return strings.Repeat("ç", n) } // not GSM7: UCS2
	for _, tc := range []struct {
		name  string
		text  string
		ref16 bool
		alpha pdu.Alphabet
		sizes []int // runes per part
	}{
		{"empty", "", false, pdu.GSM7, []int{0}},
		{"160", a(160), false, pdu.GSM7, []int{160}},
		{"161", a(161), false, pdu.GSM7, []int{153, 8}},
		{"306", a(306), false, pdu.GSM7, []int{153, 153}},
		{"307", a(307), false, pdu.GSM7, []int{153, 153, 1}},
		{"161 ref16", a(161), true, pdu.GSM7, []int{152, 9}},
		{"80 euro fit", strings.Repeat("€", 80), false, pdu.GSM7, []int{80}},
		{"81 euro", strings.Repeat("€", 81), false, pdu.GSM7, []int{76, 5}},
		// An escape pair never straddles two parts: 152 + 2 > 153 moves the € on.
		{"euro at boundary", a(152) + "€" + a(10), false, pdu.GSM7, []int{152, 11}},
		{"euro just fits", a(151) + "€" + a(10), false, pdu.GSM7, []int{152, 10}},
		{"70 UCS2", c(70), false, pdu.UCS2, []int{70}},
		{"71 UCS2", c(71), false, pdu.UCS2, []int{67, 4}},
		{"71 UCS2 ref16", c(71), true, pdu.UCS2, []int{66, 5}},
		// A surrogate pair never straddles two parts.
		{"emoji at boundary", c(66) + "🙏" + c(5), false, pdu.UCS2, []int{66, 6}},
		{"emoji just fits", c(65) + "🙏" + c(5), false, pdu.UCS2, []int{66, 5}},
		{"35 emoji fit", strings.Repeat("🙏", 35), false, pdu.UCS2, []int{35}},
		{"one non-GSM7 rune makes all UCS2", a(100) + "ç", false, pdu.UCS2, []int{67, 34}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := pdu.SubmitOptions{Ref: 200, Ref16: tc.ref16}
			n, alpha := pdu.PartsWith(tc.text, opt)
			if n != len(tc.sizes) || alpha != tc.alpha {
				t.Errorf("PartsWith = %d, %s; want %d, %s", n, alpha, len(tc.sizes), tc.alpha)
			}
			if !tc.ref16 {
				if n2, a2 := pdu.Parts(tc.text); n2 != n || a2 != alpha {
					t.Errorf("Parts = %d, %s; PartsWith = %d, %s", n2, a2, n, alpha)
				}
			}
			parts, err := pdu.EncodeSubmit("+6281234567890", tc.text, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != len(tc.sizes) {
				t.Fatalf("%d parts, want %d", len(parts), len(tc.sizes))
			}
			var joined strings.Builder
			for i, p := range parts {
				s, err := pdu.DecodeSubmit(p.PDU)
				if err != nil {
					t.Fatalf("part %d: %v", i+1, err)
				}
				if got := len([]rune(s.Text)); got != tc.sizes[i] {
					t.Errorf("part %d: %d runes, want %d", i+1, got, tc.sizes[i])
				}
				if s.Alphabet != tc.alpha {
					t.Errorf("part %d: %s", i+1, s.Alphabet)
				}
				if len(parts) == 1 {
					if s.Concat != nil {
						t.Errorf("single part with %+v", s.Concat)
					}
				} else if s.Concat == nil || *s.Concat != (pdu.Concat{Ref: 200, Total: len(parts), Seq: i + 1, Ref16: tc.ref16}) {
					t.Errorf("part %d: concat %+v", i+1, s.Concat)
				}
				joined.WriteString(s.Text)
			}
			if joined.String() != tc.text {
				t.Errorf("joined text differs")
			}
		})
	}
}

func TestEncodeSubmitTooLong(t *testing.T) {
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{strings.Repeat("a", 153*255), true},
		{strings.Repeat("a", 153*255+1), false},
		{strings.Repeat("ç", 67*255), true},
		{strings.Repeat("ç", 67*255+1), false},
	} {
		n, _ := pdu.Parts(tc.text)
		parts, err := pdu.EncodeSubmit("+62812", tc.text, pdu.SubmitOptions{})
		if tc.ok {
			if err != nil || len(parts) != 255 || n != 255 {
				t.Errorf("%d runes: %d parts (Parts %d), %v", len([]rune(tc.text)), len(parts), n, err)
			}
			continue
		}
		if !errors.Is(err, pdu.ErrTooLong) || parts != nil || n != 256 {
			t.Errorf("%d runes: %d parts (Parts %d), %v; want ErrTooLong", len([]rune(tc.text)), len(parts), n, err)
		}
	}
}

func TestEncodeSubmitErrors(t *testing.T) {
	for _, tc := range []struct {
		to   string
		opt  pdu.SubmitOptions
		want error
	}{
		{"", pdu.SubmitOptions{}, pdu.ErrBadAddress},
		{"+", pdu.SubmitOptions{}, pdu.ErrBadAddress},
		{"+62 812 3456", pdu.SubmitOptions{}, pdu.ErrBadAddress},
		{"TELKOMSEL", pdu.SubmitOptions{}, pdu.ErrBadAddress},
		{"+" + strings.Repeat("1", 21), pdu.SubmitOptions{}, pdu.ErrBadAddress},
		{"08123", pdu.SubmitOptions{ValidityMinutes: -1}, pdu.ErrBadOption},
	} {
		parts, err := pdu.EncodeSubmit(tc.to, "tes", tc.opt)
		if !errors.Is(err, tc.want) || parts != nil {
			t.Errorf("EncodeSubmit(%q, %+v) = %v, %v; want %v", tc.to, tc.opt, parts, err, tc.want)
		}
	}
	// The longest number fits.
	if _, err := pdu.EncodeSubmit("+"+strings.Repeat("1", 20), "tes", pdu.SubmitOptions{}); err != nil {
		t.Errorf("20 digits: %v", err)
	}
}

func TestEncodeSubmitInvalidUTF8(t *testing.T) {
	parts, err := pdu.EncodeSubmit("08123", "ok\xff", pdu.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pdu.DecodeSubmit(parts[0].PDU)
	if err != nil {
		t.Fatal(err)
	}
	if s.Text != "ok\uFFFD" || s.Alphabet != pdu.UCS2 {
		t.Errorf("text %q in %s", s.Text, s.Alphabet)
	}
}

func TestDecodeSubmit(t *testing.T) {
	const da = "0B916407281553F8"
	for _, tc := range []struct {
		name string
		pdu  string
		want pdu.SubmitDecoded
	}{
		{"relative VP", "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
			pdu.SubmitDecoded{To: pdu.Address{Number: "+46708251358", Type: pdu.TypeInternational}, Text: "hellohello"}},
		{"absolute VP, SRR", "00" + "39" + "00" + da + "0000" + "52107121436582" + "0AE8329BFD4697D9EC37",
			pdu.SubmitDecoded{To: pdu.Address{Number: "+46708251358", Type: pdu.TypeInternational}, Text: "hellohello", SRR: true}},
		{"enhanced VP", "00" + "09" + "00" + da + "0000" + "01020000000000" + "0AE8329BFD4697D9EC37",
			pdu.SubmitDecoded{To: pdu.Address{Number: "+46708251358", Type: pdu.TypeInternational}, Text: "hellohello"}},
		{"SMSC prefix, national", "07912618010000F0" + "01" + "00" + "0CA1802143658709" + "0008" + "04" + "00410042",
			pdu.SubmitDecoded{To: pdu.Address{Number: "081234567890", Type: pdu.TypeNational}, Alphabet: pdu.UCS2, Text: "AB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pdu.DecodeSubmit(tc.pdu)
			if err != nil {
				t.Fatal(err)
			}
			if *s != tc.want {
				t.Errorf("got %+v, want %+v", *s, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		pdu  string
		want error
	}{
		{"deliver", "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37", pdu.ErrNotSubmit},
		{"VP cut", "0011000B916407281553F80000", pdu.ErrMalformed},
		{"absolute VP cut", "0019000B916407281553F80000521071", pdu.ErrMalformed},
		{"no MR", "0011", pdu.ErrMalformed},
		{"compressed", "0001000B916407281553F80024" + "00", pdu.ErrUnsupported},
		{"not hex", "zz", pdu.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pdu.DecodeSubmit(tc.pdu)
			if !errors.Is(err, tc.want) || s != nil {
				t.Errorf("got %+v, %v; want %v", s, err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "decoding SMS-SUBMIT: ") {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}
