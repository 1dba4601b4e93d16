package report_test

import (
	"testing"

	"github.com/kentongan/kentongan/daemon/report"
)

// TestParseAnswers: an RT/RW head's YA or TIDAK to the hub's question about a panic-button press,
// with or without the ticket number; and the texts starting with those words that are reports.
func TestParseAnswers(t *testing.T) {
	type R = report.Report
	tests := []struct {
		text string
		want R
	}{
		{"YA 112-000123", R{Kind: report.Confirm, TicketNumber: "112-000123", Keyword: "YA"}},
		{"ya 112-000123", R{Kind: report.Confirm, TicketNumber: "112-000123", Keyword: "YA"}},
		{"Ya, 112 000123.", R{Kind: report.Confirm, TicketNumber: "112-000123", Keyword: "YA"}},
		{"IYA 112-000123 benar darurat", R{Kind: report.Confirm, TicketNumber: "112-000123", Detail: "benar darurat", Keyword: "IYA"}},
		{"YA 123", R{Kind: report.Confirm, TicketNumber: "112-000123", Keyword: "YA"}},
		{"YA #123 betul", R{Kind: report.Confirm, TicketNumber: "112-000123", Detail: "betul", Keyword: "YA"}},
		{"YA", R{Kind: report.Confirm, Keyword: "YA"}},
		{"ya.", R{Kind: report.Confirm, Keyword: "YA"}},
		{"TIDAK 112-000123", R{Kind: report.Deny, TicketNumber: "112-000123", Keyword: "TIDAK"}},
		{"tidak 112-000123 anak-anak main", R{Kind: report.Deny, TicketNumber: "112-000123", Detail: "anak-anak main", Keyword: "TIDAK"}},
		{"TIDK 112-000123", R{Kind: report.Deny, TicketNumber: "112-000123", Keyword: "TIDAK"}},
		{"Tidak", R{Kind: report.Deny, Keyword: "TIDAK"}},
		// Reports that start with the same words.
		{"Tidak ada air sejak pagi", R{Kind: report.Unknown, Detail: "Tidak ada air sejak pagi"}},
		{"Tidak 3 hari listrik mati", R{Kind: report.Unknown, Detail: "Tidak 3 hari listrik mati"}},
		{"Ya Allah kebakaran di RT 03", R{Kind: report.Unknown, Detail: "Ya Allah kebakaran di RT 03"}},
	}
	for _, tt := range tests {
		if got := report.Parse(tt.text); got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
		if !tt.want.Kind.Valid() {
			t.Errorf("kind %q is not Valid", tt.want.Kind)
		}
	}
}
