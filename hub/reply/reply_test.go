package reply_test

import (
	"strings"
	"testing"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
	"github.com/kentongan/kentongan/hub/reply"
)

// gsm7Len counts the septets of s in the GSM 03.38 default alphabet, extension characters
// counting two; ok is false when s has a character outside it.
func gsm7Len(s string) (n int, ok bool) { return pdu.GSM7Len(s) }

// checkSMS fails unless text is one GSM 7-bit SMS.
func checkSMS(t *testing.T, what, text string) {
	t.Helper()
	n, ok := gsm7Len(text)
	if !ok {
		t.Errorf("%s has a character outside GSM 7-bit: %q", what, text)
	}
	if n > 160 {
		t.Errorf("%s is %d septets, more than one SMS: %q", what, n, text)
	}
	if strings.TrimSpace(text) != text || strings.Contains(text, "  ") || strings.Contains(text, "..") && !strings.Contains(text, "...") {
		t.Errorf("%s is untidy: %q", what, text)
	}
}

var (
	langs      = []string{"id", "en"}
	statuses   = []string{"new", "received", "acknowledged", "dispatched", "resolved", "closed", "cancelled", "duplicate"}
	categories = []string{"", "panic", "fire", "medical", "crime", "disaster", "accident", "electricity", "water",
		"road", "waste", "administration", "social", "other"}
	// Normal-length inputs: a seven-digit ticket, a ten-character agency, a note of a sentence.
	tickets = []string{"112-000123", "112-1234567"}
	agency  = "Damkar Kab"
	notes   = []string{"", "Api sudah padam, tidak ada korban jiwa. Warga diminta menjauhi lokasi."}
)

func TestEveryReplyFitsOneSMS(t *testing.T) {
	for _, l := range langs {
		for _, tk := range tickets {
			for _, c := range categories {
				for _, em := range []bool{true, false} {
					checkSMS(t, "Receipt("+l+", "+tk+", "+c+")", reply.Receipt(l, tk, c, em))
				}
			}
			for _, s := range append(statuses, "some_new_status") {
				for _, note := range notes {
					for _, ag := range []string{"", agency} {
						checkSMS(t, "StatusUpdate("+l+", "+s+")", reply.StatusUpdate(l, tk, s, ag, note))
					}
				}
				for _, found := range []bool{true, false} {
					checkSMS(t, "StatusReply("+l+", "+s+")", reply.StatusReply(l, tk, s, found))
				}
			}
			checkSMS(t, "StatusReply without ticket", reply.StatusReply(l, "", "", false))
			for _, reason := range []string{"", reply.ReasonNotFound, reply.ReasonNotReporter, reply.ReasonTooLate,
				"Petugas sudah di lokasi."} {
				checkSMS(t, "CancelReply("+l+", "+reason+")", reply.CancelReply(l, tk, false, reason))
			}
			checkSMS(t, "CancelReply ok", reply.CancelReply(l, tk, true, ""))
			checkSMS(t, "CancelReply without ticket", reply.CancelReply(l, "", false, ""))
		}
		checkSMS(t, "Unknown("+l+")", reply.Unknown(l))
		checkSMS(t, "RateLimited("+l+")", reply.RateLimited(l))
	}
}

func TestReceipt(t *testing.T) {
	want := "Laporan diterima. No tiket 112-000123 (kebakaran, DARURAT). Petugas 112 segera menindaklanjuti. Cek: STATUS 112-000123"
	if got := reply.Receipt("id", "112-000123", "fire", true); got != want {
		t.Errorf("Receipt =\n%q, want\n%q", got, want)
	}
	if got := reply.Receipt("", "112-000123", "fire", true); got != want {
		t.Errorf("Receipt in the default language = %q, want Indonesian", got)
	}
	got := reply.Receipt("id", "112-000124", "road", false)
	for _, part := range []string{"112-000124 (jalan)", "Cek: STATUS 112-000124", "Terima kasih"} {
		if !strings.Contains(got, part) {
			t.Errorf("Receipt for a road report = %q, missing %q", got, part)
		}
	}
	if strings.Contains(got, "DARURAT") {
		t.Errorf("Receipt for a road report says DARURAT: %q", got)
	}
	if got := reply.Receipt("id", "112-000125", "", true); !strings.Contains(got, "112-000125 (DARURAT).") {
		t.Errorf("Receipt for an emergency to triage = %q", got)
	}
	if got := reply.Receipt("id", "112-000126", "", false); strings.Contains(got, "(") {
		t.Errorf("Receipt without category or urgency = %q, has an empty tag", got)
	}
	if got := reply.Receipt("en", "112-000123", "medical", true); !strings.Contains(got, "(medical, EMERGENCY)") || !strings.Contains(got, "STATUS 112-000123") {
		t.Errorf("English receipt = %q", got)
	}
}

func TestStatusUpdate(t *testing.T) {
	tests := []struct {
		lang, status, agency, note string
		want                       []string
	}{
		{"id", "acknowledged", "", "", []string{"Tiket 112-000123 sedang ditangani petugas 112."}},
		{"id", "dispatched", "Damkar", "", []string{"Tiket 112-000123 telah diteruskan ke Damkar.", "menuju lokasi"}},
		{"id", "dispatched", "", "", []string{"Tiket 112-000123: petugas sedang menuju lokasi."}},
		{"id", "resolved", "", "Api sudah padam", []string{"Tiket 112-000123 selesai: Api sudah padam. Terima kasih."}},
		{"id", "resolved", "", "Api sudah padam.", []string{"Tiket 112-000123 selesai: Api sudah padam. Terima kasih."}},
		{"id", "resolved", "", "", []string{"Tiket 112-000123 selesai ditangani. Terima kasih"}},
		{"id", "closed", "", "", []string{"Tiket 112-000123 telah ditutup."}},
		{"id", "cancelled", "", "laporan ganda", []string{"Tiket 112-000123 dibatalkan. Alasan: laporan ganda.", "telepon 112"}},
		{"id", "cancelled", "", "", []string{"Tiket 112-000123 dibatalkan. Bila masih perlu bantuan, telepon 112."}},
		{"id", "duplicate", "", "", []string{"digabung dengan laporan lain", "tetap ditangani"}},
		{"id", "acknowledged", "", "Petugas akan menelepon Anda", []string{"ditangani petugas 112. Catatan: Petugas akan menelepon Anda."}},
		{"id", "new", "", "", []string{"menunggu petugas 112"}},
		{"id", "weird", "", "", []string{"Status tiket 112-000123: weird."}},
		{"en", "acknowledged", "", "", []string{"Ticket 112-000123 is being handled by a 112 officer."}},
		{"en", "dispatched", "Damkar", "", []string{"passed to Damkar"}},
		{"en", "resolved", "", "Fire is out", []string{"Ticket 112-000123 resolved: Fire is out. Thank you."}},
		{"EN-us", "cancelled", "", "", []string{"Ticket 112-000123 has been cancelled."}},
	}
	for _, tt := range tests {
		got := reply.StatusUpdate(tt.lang, "112-000123", tt.status, tt.agency, tt.note)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("StatusUpdate(%q, %q, %q, %q) = %q, missing %q", tt.lang, tt.status, tt.agency, tt.note, got, w)
			}
		}
	}
}

func TestLongAndForeignInputsStayOneSMS(t *testing.T) {
	long := strings.Repeat("Warga sudah dievakuasi ke balai desa dan kondisi aman terkendali. ", 20)
	for _, l := range langs {
		for _, s := range statuses {
			got := reply.StatusUpdate(l, "112-000123", s, agency, long)
			checkSMS(t, "StatusUpdate with a long note", got)
			if s == "resolved" && !strings.Contains(got, "Warga sudah dievakuasi") {
				t.Errorf("a long note was dropped rather than shortened: %q", got)
			}
		}
		got := reply.CancelReply(l, "112-000123", false, long)
		checkSMS(t, "CancelReply with a long reason", got)
		if !strings.Contains(got, "...") {
			t.Errorf("a long reason was not shortened: %q", got)
		}
	}
	// A note pasted from a word processor or a chat: curly quotes, dashes, an emoji, a line break.
	note := "Api \u201csudah\u201d padam \u2013 warga aman\u2026 \U0001F64F\nTerima kasih"
	got := reply.StatusUpdate("id", "112-000123", "resolved", "Damkar\u00a0Kab", note)
	checkSMS(t, "StatusUpdate with a pasted note", got)
	if want := `Api "sudah" padam - warga aman... Terima kasih`; !strings.Contains(got, want) {
		t.Errorf("pasted note = %q, want it to contain %q", got, want)
	}
	got = reply.StatusUpdate("id", "112-000123", "dispatched", "Damkar\u00a0Kab\u2122", "")
	checkSMS(t, "StatusUpdate with a pasted agency", got)
	if !strings.Contains(got, "ke Damkar Kab.") {
		t.Errorf("pasted agency = %q", got)
	}
}

func TestStatusReply(t *testing.T) {
	if got := reply.StatusReply("id", "112-000123", "acknowledged", true); got != "Status tiket 112-000123: sedang ditangani petugas 112. Terima kasih." {
		t.Errorf("StatusReply = %q", got)
	}
	if got := reply.StatusReply("id", "112-000999", "", false); !strings.Contains(got, "112-000999 tidak ditemukan") {
		t.Errorf("StatusReply for a missing ticket = %q", got)
	}
	if got := reply.StatusReply("id", "", "", false); !strings.Contains(got, "Mohon sertakan nomor tiket") {
		t.Errorf("StatusReply without a number = %q", got)
	}
	// Every status reads differently, except "received", which is how devices name "new".
	seen := map[string]string{}
	for _, s := range statuses {
		if s == "received" {
			continue
		}
		got := reply.StatusReply("id", "112-000123", s, true)
		if other, dup := seen[got]; dup {
			t.Errorf("statuses %s and %s read the same: %q", other, s, got)
		}
		seen[got] = s
	}
}

func TestCancelReply(t *testing.T) {
	tests := []struct {
		ok     bool
		reason string
		want   string
	}{
		{true, "", "Tiket 112-000123 telah dibatalkan sesuai permintaan Anda."},
		{false, reply.ReasonNotFound, "Tiket 112-000123 tidak ditemukan."},
		{false, reply.ReasonNotReporter, "bukan laporan dari nomor ini"},
		{false, reply.ReasonTooLate, "tidak dapat dibatalkan lagi karena sudah ditangani petugas. Mohon telepon 112."},
		{false, "some_label", "Tiket 112-000123 tidak dapat dibatalkan. Informasi: telepon 112."},
		{false, "", "Tiket 112-000123 tidak dapat dibatalkan. Informasi: telepon 112."},
		{false, "Petugas sudah di lokasi.", "Tiket 112-000123 tidak dapat dibatalkan: Petugas sudah di lokasi. Informasi: telepon 112."},
	}
	// The hub's ingest passes its outcome labels as they are.
	if reply.ReasonNotFound != "not_found" || reply.ReasonNotReporter != "not_reporter" || reply.ReasonTooLate != "too_late" {
		t.Error("reason labels differ from hub/ingest's outcomes")
	}
	for _, tt := range tests {
		if got := reply.CancelReply("id", "112-000123", tt.ok, tt.reason); !strings.Contains(got, tt.want) {
			t.Errorf("CancelReply(%v, %q) = %q, missing %q", tt.ok, tt.reason, got, tt.want)
		}
	}
	if got := reply.CancelReply("id", "", false, ""); !strings.Contains(got, "BATAL 112-000123") {
		t.Errorf("CancelReply without a number = %q, want an example", got)
	}
}

func TestFixedTexts(t *testing.T) {
	for _, l := range langs {
		for name, text := range map[string]string{"Unknown": reply.Unknown(l), "RateLimited": reply.RateLimited(l)} {
			if !strings.Contains(text, "112") {
				t.Errorf("%s(%q) = %q does not point to 112", name, l, text)
			}
		}
	}
	if reply.Unknown("id") == reply.Unknown("en") || reply.RateLimited("id") == reply.RateLimited("en") {
		t.Error("fixed texts are not translated")
	}
	if reply.Unknown("xx") != reply.Unknown("id") {
		t.Error("an unknown language does not fall back to Indonesian")
	}
}

func TestCategoryName(t *testing.T) {
	tests := []struct{ lang, category, want string }{
		{"id", "fire", "kebakaran"},
		{"en", "fire", "fire"},
		{"id", "medical", "medis"},
		{"id", "accident", "kecelakaan"},
		{"id", "administration", "administrasi"},
		{"id", "other", "lainnya"},
		{"en", "panic", "panic button"},
		{"", "road", "jalan"},
		{"id", "", ""},
		{"id", "flood\u2013risk", "flood-risk"},
	}
	for _, tt := range tests {
		if got := reply.CategoryName(tt.lang, tt.category); got != tt.want {
			t.Errorf("CategoryName(%q, %q) = %q, want %q", tt.lang, tt.category, got, tt.want)
		}
	}
	for _, c := range categories[1:] {
		if reply.CategoryName("id", c) == c {
			t.Errorf("category %q has no Indonesian name", c)
		}
	}
}
