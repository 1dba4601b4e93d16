package pdu_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

var wib = time.FixedZone("WIB", 7*3600)

func TestEncodeDeliverVectors(t *testing.T) {
	for _, tc := range []struct {
		name, smsc, from, text string
		ts                     time.Time
		want                   string
	}{
		{"oFono simple_deliver", "+31624000000", "+31641600986", "How are you?",
			time.Date(2002, 8, 26, 19, 37, 41, 0, zone(-4)),
			"07911326040000F0040B911346610089F60000208062917314480CC8F71D14969741F977FD07"},
		{"oFono alnum_sender", "+447785016005", "sipgate", "Testmail",
			time.Date(2008, 8, 13, 12, 7, 22, 0, zone(4)),
			"0791447758100650040DD0F334FC1CA6970100008080312170224008D4F29CDE0EA7D9"},
		{"no SMSC, national sender, WIB", "", "081234567890", "hellohello",
			time.Date(2025, 1, 17, 12, 34, 56, 0, wib),
			"00040CA1802143658709000052107121436582" + "0AE8329BFD4697D9EC37"},
		// The instant is kept: 12:34:56 UTC is 19:34:56 WIB, but the zone written is the
		// timestamp's own, here UTC.
		{"UTC", "", "TELKOMSEL", "hi", time.Date(2025, 1, 17, 12, 34, 56, 0, time.UTC),
			"000410D0D42273F96C4E8B4C000052107121436500" + "02E834"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pdu.EncodeDeliver(tc.smsc, tc.from, tc.text, tc.ts, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("\n got %v\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEncodeDeliverErrors(t *testing.T) {
	ts := time.Date(2025, 1, 17, 12, 34, 56, 0, wib)
	for _, tc := range []struct {
		name, smsc, from string
		ts               time.Time
		want             error
	}{
		{"empty sender", "", "", ts, pdu.ErrBadAddress},
		{"long alphanumeric", "", "TELKOMSEL123", ts, pdu.ErrBadAddress},
		{"alphanumeric not GSM7", "", "Çağrı", ts, pdu.ErrBadAddress},
		{"plus letters", "", "+62abc", ts, pdu.ErrBadAddress},
		{"bad SMSC", "+62 811", "+62811", ts, pdu.ErrBadAddress},
		{"year 2100", "", "+62811", time.Date(2100, 1, 1, 0, 0, 0, 0, wib), nil},
		{"zero time", "", "+62811", time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pdu.EncodeDeliver(tc.smsc, tc.from, "tes", tc.ts, 0, false)
			if err == nil || got != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, %v; want an error (%v)", got, err, tc.want)
			}
		})
	}
	// The longest alphanumeric sender fits.
	if _, err := pdu.EncodeDeliver("", "TELKOMSEL12", "tes", ts, 0, false); err != nil {
		t.Errorf("11 characters: %v", err)
	}
}

// Texts for the round trips: lengths around the part boundaries, the extension table where a
// part ends, and what residents actually send.
func roundTripTexts() map[string]string {
	ext := strings.Repeat("a", 152) + "{" + strings.Repeat("b", 151) + "€" + strings.Repeat("c", 20)
	laporan := "Lapor! Kebakaran di RT 03/RW 05 Desa Sukamaju, Kec. Pasar Kemis 🔥🚒 " +
		"Api sudah membesar, warga butuh bantuan pemadam segera. Ada lansia & anak-anak. 🙏🙏"
	long := strings.Repeat("Banjir setinggi 1 meter di Perumahan Citra Raya blok C, air terus naik. ", 15)
	return map[string]string{
		"1":            "a",
		"160":          strings.Repeat("x", 160),
		"161":          strings.Repeat("y", 161),
		"1000+":        long,
		"ext boundary": ext,
		"ext only":     strings.Repeat("[]{}~|^\\€\f", 40),
		"indonesian":   laporan,
		"emoji long":   strings.Repeat(laporan, 5),
		"8n-1 septets": "1234567",
		"empty":        "",
		"gsm7 all":     "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
	}
}

func TestSubmitRoundTrip(t *testing.T) {
	for name, text := range roundTripTexts() {
		for _, opt := range []pdu.SubmitOptions{
			{Ref: 7},
			{Ref: 0x1234, Ref16: true, StatusReport: true, ValidityMinutes: 60},
		} {
			parts, err := pdu.EncodeSubmit("+6281234567890", text, opt)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var joined strings.Builder
			for i, p := range parts {
				s, err := pdu.DecodeSubmit(p.PDU)
				if err != nil {
					t.Fatalf("%s part %d: %v", name, i+1, err)
				}
				if s.To != (pdu.Address{Number: "+6281234567890", Type: pdu.TypeInternational}) || s.SRR != opt.StatusReport {
					t.Errorf("%s part %d: to %+v SRR %v", name, i+1, s.To, s.SRR)
				}
				if len(parts) > 1 && (s.Concat == nil || s.Concat.Seq != i+1 || s.Concat.Total != len(parts) ||
					s.Concat.Ref != opt.Ref || s.Concat.Ref16 != opt.Ref16) {
					t.Errorf("%s part %d: concat %+v", name, i+1, s.Concat)
				}
				joined.WriteString(s.Text)
			}
			if joined.String() != text {
				t.Errorf("%s (%+v): round trip gave\n%q\nwant\n%q", name, opt, joined.String(), text)
			}
		}
	}
}

func TestDeliverRoundTripThroughAssembler(t *testing.T) {
	ts := time.Date(2025, 8, 17, 10, 0, 0, 0, wib)
	for name, text := range roundTripTexts() {
		for _, forceUCS2 := range []bool{false, true} {
			hexes, err := pdu.EncodeDeliver("+62811000000", "+6281298765432", text, ts, 300, forceUCS2)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n, _ := pdu.Parts(text); !forceUCS2 && n != len(hexes) {
				t.Errorf("%s: Parts says %d, EncodeDeliver made %d", name, n, len(hexes))
			}
			asm := pdu.NewAssembler(time.Minute, nil)
			var msg *pdu.Message
			// Feed the parts last first, as a modem listing storage may.
			for i := len(hexes) - 1; i >= 0; i-- {
				d, err := pdu.DecodeDeliver(hexes[i])
				if err != nil {
					t.Fatalf("%s part %d: %v", name, i+1, err)
				}
				if forceUCS2 && d.Alphabet != pdu.UCS2 {
					t.Errorf("%s: forced UCS2 came out %s", name, d.Alphabet)
				}
				if len(hexes) > 1 && (d.Concat == nil || !d.Concat.Ref16 || d.Concat.Ref != 300) {
					t.Errorf("%s: concat %+v, want 16-bit reference 300", name, d.Concat)
				}
				if m := asm.Add(d, 100+i); m != nil {
					if msg != nil || i != 0 {
						t.Fatalf("%s: message before the last part added", name)
					}
					msg = m
				}
			}
			if msg == nil {
				t.Fatalf("%s: no message after all %d parts", name, len(hexes))
			}
			if msg.Text != text || !msg.Complete() || msg.Parts != len(hexes) {
				t.Errorf("%s: message %q complete=%v parts %d", name, msg.Text, msg.Complete(), msg.Parts)
			}
			if !sameTime(msg.Timestamp, ts) || msg.From.Number != "+6281298765432" || msg.SMSC.Number != "+62811000000" {
				t.Errorf("%s: %+v", name, msg)
			}
			if len(msg.Tags) != len(hexes) || asm.Pending() != 0 {
				t.Errorf("%s: tags %v pending %d", name, msg.Tags, asm.Pending())
			}
		}
	}
}
