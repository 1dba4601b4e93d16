package report_test

import (
	"testing"

	"github.com/kentongan/kentongan/daemon/report"
)

func TestParseTicketNumber(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"112-000123", "112-000123", true},
		{"112-123", "112-000123", true},
		{"112000123", "112-000123", true},
		{"000123", "112-000123", true},
		{"123", "112-000123", true},
		{"#123", "112-000123", true},
		{"# 123", "112-000123", true},
		{"no 123", "112-000123", true},
		{"No. 123", "112-000123", true},
		{"nomor tiket 112-000123", "112-000123", true},
		{" 112.000123 ", "112-000123", true},
		{"112 000123", "112-000123", true},
		{"112-1234567", "112-1234567", true},
		{"1121234567", "112-1234567", true},
		{"112", "112-000112", true},
		{"112123", "112-112123", true}, // six digits are a sequence, not a prefix
		{"999999999999999999", "112-999999999999999999", true},
		{"", "", false},
		{"abc", "", false},
		{"0", "", false},
		{"112-000000", "", false},
		{"-5", "112-000005", true}, // the dash is punctuation, as in "STATUS - 5"
		{"12a", "", false},
		{"123 456", "", false},
		{"1234567890123456789", "", false}, // longer than a sequence can be
		{"tiket", "", false},
		{"١٢٣", "", false}, // only ASCII digits
	}
	for _, tt := range tests {
		got, ok := report.ParseTicketNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseTicketNumber(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
