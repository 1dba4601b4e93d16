package pdu_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

func zone(quarters int) *time.Location { return time.FixedZone("", quarters*15*60) }

// sameTime compares instant and offset: the zone name is cosmetic.
func sameTime(a, b time.Time) bool {
	_, oa := a.Zone()
	_, ob := b.Zone()
	return a.Equal(b) && oa == ob
}

func TestDecodeDeliverVectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pdu   string
		smsc  pdu.Address
		from  pdu.Address
		dcs   byte
		alpha pdu.Alphabet
		ts    time.Time
		text  string
		more  bool
	}{
		{
			// The textbook example (dreamfabric, gsm-modem.de): subscriber-type sender,
			// SCTS 1999 +02:00.
			name:  "hellohello",
			pdu:   "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
			smsc:  pdu.Address{Number: "+27381000015", Type: pdu.TypeInternational},
			from:  pdu.Address{Number: "27838890001", Type: pdu.TypeUnknown},
			alpha: pdu.GSM7,
			ts:    time.Date(1999, 3, 29, 15, 16, 59, 0, zone(8)),
			text:  "hellohello",
		},
		{
			// oFono's unit test: a negative zone (-01:00, sign bit set in the TZ octet).
			name:  "negative zone",
			pdu:   "07911326040000F0040B911346610089F60000208062917314480CC8F71D14969741F977FD07",
			smsc:  pdu.Address{Number: "+31624000000", Type: pdu.TypeInternational},
			from:  pdu.Address{Number: "+31641600986", Type: pdu.TypeInternational},
			alpha: pdu.GSM7,
			ts:    time.Date(2002, 8, 26, 19, 37, 41, 0, zone(-4)),
			text:  "How are you?",
		},
		{
			// oFono's unit test: alphanumeric sender, 13 semi-octets for 7 septets.
			name:  "alphanumeric sender",
			pdu:   "0791447758100650040DD0F334FC1CA6970100008080312170224008D4F29CDE0EA7D9",
			smsc:  pdu.Address{Number: "+447785016005", Type: pdu.TypeInternational},
			from:  pdu.Address{Number: "sipgate", Type: pdu.TypeAlphanumeric},
			alpha: pdu.GSM7,
			ts:    time.Date(2008, 8, 13, 12, 7, 22, 0, zone(4)),
			text:  "Testmail",
		},
		{
			// A modem's AT+CMGL line (luvit lua-gsmmodem tests): 7 septets, so the last octet
			// has 7 zero fill bits that must not become '@'.
			name:  "7 septets, zero fill",
			pdu:   "07919761989901F0240B917777777777F70000514042314545210720A83C6D2FD301",
			smsc:  pdu.Address{Number: "+79168999100", Type: pdu.TypeInternational},
			from:  pdu.Address{Number: "+77777777777", Type: pdu.TypeInternational},
			alpha: pdu.GSM7,
			ts:    time.Date(2015, 4, 24, 13, 54, 54, 0, zone(12)),
			text:  " Privet",
		},
		{
			// Telkomsel-style alphanumeric sender, WIB time, Indonesian text with an emoji
			// (U+1F64F as the surrogate pair D83D DE4F); MMS clear: more messages waiting.
			name: "UCS2 emoji, alphanumeric, WIB",
			pdu: "07912618010000F0" + "00" + "10D0D42273F96C4E8B4C" + "00" + "08" + "52107121436582" +
				"12" + "0054006F006C006F006E00670020D83DDE4F",
			smsc:  pdu.Address{Number: "+62811000000", Type: pdu.TypeInternational},
			from:  pdu.Address{Number: "TELKOMSEL", Type: pdu.TypeAlphanumeric},
			dcs:   0x08,
			alpha: pdu.UCS2,
			ts:    time.Date(2025, 1, 17, 12, 34, 56, 0, zone(28)),
			text:  "Tolong 🙏",
			more:  true,
		},
		{
			// No SMSC in the prefix, national number, 8-bit data (DCS F4: class 0, 8-bit).
			name:  "8-bit data",
			pdu:   "00" + "04" + "0CA1802143658709" + "00" + "F4" + "52107121436582" + "03" + "00FF41",
			from:  pdu.Address{Number: "081234567890", Type: pdu.TypeNational},
			dcs:   0xF4,
			alpha: pdu.Data8,
			ts:    time.Date(2025, 1, 17, 12, 34, 56, 0, zone(28)),
			text:  "\x00\xffA",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := pdu.DecodeDeliver(tc.pdu)
			if err != nil {
				t.Fatal(err)
			}
			if d.SMSC != tc.smsc || d.From != tc.from {
				t.Errorf("SMSC %+v From %+v, want %+v %+v", d.SMSC, d.From, tc.smsc, tc.from)
			}
			if d.DCS != tc.dcs || d.Alphabet != tc.alpha || d.PID != 0 {
				t.Errorf("PID %d DCS %02X alphabet %s, want 0 %02X %s", d.PID, d.DCS, d.Alphabet, tc.dcs, tc.alpha)
			}
			if !sameTime(d.Timestamp, tc.ts) {
				t.Errorf("timestamp %s, want %s", d.Timestamp, tc.ts)
			}
			if d.Text != tc.text {
				t.Errorf("text %q, want %q", d.Text, tc.text)
			}
			if d.Concat != nil {
				t.Errorf("concat %+v on a single part", d.Concat)
			}
			if d.MoreMessagesToSend != tc.more {
				t.Errorf("more messages %v", d.MoreMessagesToSend)
			}
		})
	}
}

func TestDecodeDeliverZoneName(t *testing.T) {
	d, err := pdu.DecodeDeliver("07912618010000F0040B912618214365F7000052107121436582" + "0AE8329BFD4697D9EC37")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Timestamp.Format("2006-01-02 15:04:05 -0700 MST"); got != "2025-01-17 12:34:56 +0700 +0700" {
		t.Errorf("timestamp %s", got)
	}
	if d.From.Number != "+62811234567" || d.From.Type != pdu.TypeInternational {
		t.Errorf("from %+v", d.From)
	}
}

func TestDecodeDeliverConcatenated(t *testing.T) {
	// oFono's assembly test, parts 1 and 3 of three: UCS2, 8-bit reference 0x1E, DCS 19 (UCS2,
	// class 1), PID 01, SMSC and sender of unknown type.
	const p1 = "038121F340048155550119906041001222048C0500" +
		"031E0301041804420430043A002C002004100" +
		"43B0435043A04410430043D04340440002000" +
		"200441043B044304480430043B00200437043" +
		"000200434043204350440044C044E00200020" +
		"04380020002004320441043500200431043E0" +
		"43B044C044804350020043F04400435043804" +
		"41043F043E043B043D044F043B0441044F002" +
		"000200433043D0435"
	const p3 = "038121F340048155550119906041001222044A0500" +
		"031E0303043C043D043004420443002C00200" +
		"43F043E043704300431044B0432000A043404" +
		"3004360435002C002004470442043E0020002" +
		"00431044B043B0020043D04300433002E"
	d, err := pdu.DecodeDeliver(p1)
	if err != nil {
		t.Fatal(err)
	}
	if d.Concat == nil || *d.Concat != (pdu.Concat{Ref: 0x1E, Total: 3, Seq: 1}) {
		t.Fatalf("concat %+v", d.Concat)
	}
	if d.Alphabet != pdu.UCS2 || d.DCS != 0x19 || d.PID != 0x01 {
		t.Errorf("alphabet %s DCS %02X PID %02X", d.Alphabet, d.DCS, d.PID)
	}
	if d.SMSC != (pdu.Address{Number: "123"}) || d.From != (pdu.Address{Number: "5555"}) {
		t.Errorf("SMSC %+v from %+v", d.SMSC, d.From)
	}
	if !d.MoreMessagesToSend {
		t.Error("MMS bit clear means more messages are waiting")
	}
	if !strings.HasPrefix(d.Text, "Итак, Александр") || len([]rune(d.Text)) != 67 || len(d.Data) != 134 {
		t.Errorf("text %q (%d runes, %d octets)", d.Text, len([]rune(d.Text)), len(d.Data))
	}
	d3, err := pdu.DecodeDeliver(p3)
	if err != nil {
		t.Fatal(err)
	}
	if d3.Concat == nil || *d3.Concat != (pdu.Concat{Ref: 0x1E, Total: 3, Seq: 3}) {
		t.Fatalf("concat %+v", d3.Concat)
	}
	if !strings.HasSuffix(d3.Text, "был наг.") || !strings.Contains(d3.Text, "\n") {
		t.Errorf("text %q", d3.Text)
	}
}

func TestDecodeDeliverHeaders(t *testing.T) {
	const head = "00" + "44" + "0B912618214365F7" + "0000" + "52107121436582"
	for _, tc := range []struct {
		name   string
		ud     string
		concat *pdu.Concat
		text   string
	}{
		{
			// 16-bit reference: a 7-octet header is exactly 8 septets, no fill bits.
			name:   "16-bit reference",
			ud:     "12" + "06080412340201" + "E8329BFD4697D9EC37",
			concat: &pdu.Concat{Ref: 0x1234, Total: 2, Seq: 1, Ref16: true},
			text:   "hellohello",
		},
		{
			// 8-bit reference: 6 octets plus one fill bit.
			name:   "8-bit reference",
			ud:     "0C" + "050003A70302" + "D06536FB0D",
			concat: &pdu.Concat{Ref: 0xA7, Total: 3, Seq: 2},
			text:   "hello",
		},
		{
			// An application port element before the concatenation one is skipped; 12 header
			// octets take 14 septets with 2 fill bits.
			name:   "port then concat",
			ud:     "13" + "0B" + "050400000000" + "0003010201" + "A0CB6CF61B",
			concat: &pdu.Concat{Ref: 1, Total: 2, Seq: 1},
			text:   "hello",
		},
		{
			// Seq 0 is impossible: TS 23.040 says to ignore the element.
			name: "seq zero ignored",
			ud:   "0C" + "050003A70300" + "D06536FB0D",
			text: "hello",
		},
		{
			// A header saying 1 of 1 is a single message.
			name: "one of one",
			ud:   "0C" + "050003A70101" + "D06536FB0D",
			text: "hello",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := pdu.DecodeDeliver(head + tc.ud)
			if err != nil {
				t.Fatal(err)
			}
			if (d.Concat == nil) != (tc.concat == nil) || d.Concat != nil && *d.Concat != *tc.concat {
				t.Errorf("concat %+v, want %+v", d.Concat, tc.concat)
			}
			if d.Text != tc.text {
				t.Errorf("text %q, want %q", d.Text, tc.text)
			}
		})
	}
}

func TestDecodeDeliverErrors(t *testing.T) {
	// A valid PDU to cut and bend: SMSC 00, FO 04, OA +62811234567, PID, DCS, SCTS, "hellohello".
	const (
		oa   = "0B912618214365F7"
		scts = "52107121436582"
		good = "00" + "04" + oa + "0000" + scts + "0AE8329BFD4697D9EC37"
	)
	if _, err := pdu.DecodeDeliver(good); err != nil {
		t.Fatalf("base PDU: %v", err)
	}
	if _, err := pdu.DecodeDeliver(" " + strings.ToLower(good) + "\r\n"); err != nil {
		t.Fatalf("lower case with line ending: %v", err)
	}
	for _, tc := range []struct {
		name   string
		pdu    string
		want   error
		offset int // -1: not checked
	}{
		{"empty", "", pdu.ErrMalformed, 0},
		{"not hex", "00G4", pdu.ErrMalformed, 1},
		{"odd hex", good[:len(good)-1], pdu.ErrMalformed, -1},
		{"SMSC cut", "0791", pdu.ErrMalformed, 1},
		{"SMSC too long", "0D91" + strings.Repeat("11", 13), pdu.ErrBadAddress, 0},
		{"no first octet", "00", pdu.ErrMalformed, 1},
		{"no address", "0004", pdu.ErrMalformed, 2},
		{"address too long", "0004" + "16" + "91" + strings.Repeat("11", 11), pdu.ErrBadAddress, 2},
		{"filler inside number", "0004" + "0491" + "F121" + "0000" + scts + "00", pdu.ErrBadAddress, 4},
		{"address cut", "0004" + "0B91" + "2618", pdu.ErrMalformed, 4},
		{"no DCS", "0004" + oa + "00", pdu.ErrMalformed, 11},
		{"timestamp not BCD", "0004" + oa + "0000" + "5A107121436582" + "00", pdu.ErrMalformed, 12},
		{"timestamp month 13", "0004" + oa + "0000" + "52317121436582" + "00", pdu.ErrMalformed, 13},
		{"timestamp 30 February", "0004" + oa + "0000" + "52200321436582" + "00", pdu.ErrMalformed, 14},
		{"timestamp cut", "0004" + oa + "0000" + "521071", pdu.ErrMalformed, 12},
		{"no UDL", "0004" + oa + "0000" + scts, pdu.ErrMalformed, 19},
		{"user data cut", "0004" + oa + "0000" + scts + "0AE8329B", pdu.ErrMalformed, 20},
		{"UDL over 160", "0004" + oa + "0000" + scts + "A1" + strings.Repeat("00", 141), pdu.ErrMalformed, 19},
		{"UCS2 UDL over 140", "0004" + oa + "0008" + scts + "8D" + strings.Repeat("00", 141), pdu.ErrMalformed, 19},
		{"trailing octets", good + "00", pdu.ErrMalformed, 29},
		{"UDHI with no user data", "0044" + oa + "0000" + scts + "00", pdu.ErrMalformed, 20},
		{"header longer than user data", "0044" + oa + "0004" + scts + "03" + "0500AA", pdu.ErrMalformed, 20},
		{"element overruns header", "0044" + oa + "0004" + scts + "06" + "05000400AA01", pdu.ErrMalformed, 21},
		{"header septets beyond UDL", "0044" + oa + "0000" + scts + "03" + "050003AA0201", pdu.ErrMalformed, -1},
		{"submit", "0011000B916407281553F80000AA0AE8329BFD4697D9EC37", pdu.ErrNotDeliver, -1},
		{"status report", "07919761989901F006010B917777777777F7515012118383215150121134652146", pdu.ErrNotDeliver, -1},
		{"compressed", "0004" + oa + "0020" + scts + "00", pdu.ErrUnsupported, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := pdu.DecodeDeliver(tc.pdu)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %+v, %v; want %v", d, err, tc.want)
			}
			if d != nil {
				t.Errorf("a result with the error: %+v", d)
			}
			if !strings.HasPrefix(err.Error(), "decoding SMS-DELIVER: ") {
				t.Errorf("error %q does not say what was being done", err)
			}
			var me *pdu.MalformedError
			if errors.As(err, &me) != errors.Is(err, pdu.ErrMalformed) {
				t.Errorf("ErrMalformed without a *MalformedError: %v", err)
			}
			if tc.offset >= 0 {
				if me == nil {
					t.Fatalf("no *MalformedError in %v", err)
				}
				if me.Offset != tc.offset {
					t.Errorf("offset %d, want %d (%v)", me.Offset, tc.offset, err)
				}
			}
		})
	}
}

func TestDecodeDeliverLenientContent(t *testing.T) {
	const head = "00" + "04" + "0B912618214365F7" + "0008" + "52107121436582"
	for _, tc := range []struct{ name, ud, want string }{
		{"lone high surrogate", "06" + "0041D83D0042", "A\uFFFDB"},
		{"lone low surrogate", "04" + "DE4F0041", "\uFFFDA"},
		{"odd octet", "03" + "004100", "A\uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := pdu.DecodeDeliver(head + tc.ud)
			if err != nil {
				t.Fatal(err)
			}
			if d.Text != tc.want {
				t.Errorf("text %q, want %q", d.Text, tc.want)
			}
		})
	}
}

func TestDecodeDeliverEscapes(t *testing.T) {
	// Septets 1B 65 | 1B 1B | 1B 41 | 41 | 1B: the euro sign, the reserved escape-escape (a
	// space), an escape to a code the extension table lacks (its default character), and an
	// escape with nothing after it (a space).
	d, err := pdu.DecodeDeliver("00040B912618214365F7000052107121436582" + "089BF266B3090637")
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != "€ AA " {
		t.Errorf("text %q", d.Text)
	}
	if string(d.Data) != "\x1b\x65\x1b\x1b\x1b\x41\x41\x1b" {
		t.Errorf("data % X", d.Data)
	}
}
