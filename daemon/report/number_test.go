package report_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kentongan/kentongan/daemon/report"
)

func TestNormalizeNumber(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+6281234567890", "+6281234567890", true},
		{"6281234567890", "+6281234567890", true},
		{"081234567890", "+6281234567890", true},
		{"81234567890", "+6281234567890", true},
		{"0062 812 3456 7890", "+6281234567890", true},
		{"+62 812-3456-7890", "+6281234567890", true},
		{"0812.3456.7890", "+6281234567890", true},
		{"(0812) 3456 7890", "+6281234567890", true},
		{"+62 0812 3456 7890", "+6281234567890", true},
		{"  +628123456789  ", "+628123456789", true},
		{"+62\u00a0812\u00a03456\u00a0789", "+62812345678" + "9", true},
		{"0812345678", "+62812345678", true},         // shortest mobile
		{"+62812345678901", "+62812345678901", true}, // longest mobile
		{"021-5551234", "+62215551234", true},        // Jakarta land line
		{"+65 9123 4567", "+6591234567", true},       // Singapore
		{"0065 9123 4567", "+6591234567", true},
		{"+1 (202) 555-0143", "+12025550143", true},

		{"TELKOMSEL", "TELKOMSEL", false},
		{"  Info-XL ", "Info-XL", false},
		{"BPBD112", "BPBD112", false},
		{"", "", false},
		{"   ", "", false},
		{"+", "+", false},
		{"3636", "3636", false},               // short code
		{"6591234567x", "6591234567x", false}, // letters
		{"0812", "0812", false},               // too short
		{"08123456", "08123456", false},       // too short for a mobile
		{"0812345678901234", "0812345678901234", false},
		{"+0812345678", "+0812345678", false},
		{"+1234", "+1234", false},
		{"+1234567890123456", "+1234567890123456", false},
		{"12+34567890", "12+34567890", false},
		{"++6281234567890", "++6281234567890", false},
		{"081234567890#", "081234567890#", false},
		{"91234567", "91234567", false}, // which country?
		{"+6200812345678", "+6200812345678", false},
	}
	for _, tt := range tests {
		got, err := report.NormalizeNumber(tt.in)
		if got != tt.want {
			t.Errorf("NormalizeNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
		switch {
		case tt.ok && err != nil:
			t.Errorf("NormalizeNumber(%q): %v", tt.in, err)
		case !tt.ok && !errors.Is(err, report.ErrNotPhoneNumber):
			t.Errorf("NormalizeNumber(%q) error = %v, want ErrNotPhoneNumber", tt.in, err)
		}
	}
}

func TestAllowList(t *testing.T) {
	a, err := report.NewAllowList([]string{"0812-3456-7890", "+6281234567890", "628571112222", "+65 9123 4567"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 3 {
		t.Errorf("Len = %d, want 3 (one number was listed twice)", a.Len())
	}
	if want := []string{"+6281234567890", "+628571112222", "+6591234567"}; !slices.Equal(a.Numbers(), want) {
		t.Errorf("Numbers = %q, want %q", a.Numbers(), want)
	}
	for _, n := range []string{"+6281234567890", "081234567890", "81234567890", "62 857 111 2222", "+6591234567"} {
		if !a.Allowed(n) {
			t.Errorf("Allowed(%q) = false, want true", n)
		}
	}
	for _, n := range []string{"+6281234567891", "TELKOMSEL", "", "3636", "6591234567"} {
		if a.Allowed(n) {
			t.Errorf("Allowed(%q) = true, want false", n)
		}
	}

	if _, err := report.NewAllowList([]string{"+6281234567890", "TELKOMSEL"}); !errors.Is(err, report.ErrNotPhoneNumber) {
		t.Errorf("NewAllowList with an alphanumeric entry: error = %v, want ErrNotPhoneNumber", err)
	}
	empty, err := report.NewAllowList(nil)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Len() != 0 || empty.Allowed("+6281234567890") {
		t.Error("an empty allow-list allows someone")
	}
	var none *report.AllowList
	if none.Len() != 0 || none.Allowed("+6281234567890") {
		t.Error("a nil allow-list allows someone")
	}
}
