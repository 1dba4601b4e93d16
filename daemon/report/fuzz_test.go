package report_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/daemon/report"
)

var (
	ticketFormat = regexp.MustCompile(`^112-[0-9]{6,18}$`)
	categories   = map[string]bool{
		"": true, "fire": true, "medical": true, "crime": true, "disaster": true, "accident": true,
		"electricity": true, "water": true, "road": true, "waste": true, "administration": true,
		"social": true, "other": true,
	}
)

// FuzzParse checks what every caller relies on, whatever the text: Parse returns, with a known
// Kind and category, a detail taken from the text, and a ticket number in the hub's format.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"DARURAT KEBAKARAN rumah pak RT", "lapor, jalan rusak", "STATUS 112-000123", "BATAL #7",
		"?", "INFO", "", "DRURAT: kebakran", "Tolong ada maling", "STATUS no. 112 000123 kok lama",
		"\xff\xfeDARURAT", "DARURATKEBAKARAN", "HELP HELP HELP INFO ?",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r := report.Parse(text)
		if !r.Kind.Valid() {
			t.Fatalf("Parse(%q).Kind = %q", text, r.Kind)
		}
		if !categories[r.Category] {
			t.Fatalf("Parse(%q).Category = %q", text, r.Category)
		}
		if !strings.Contains(text, r.Detail) || r.Detail != strings.TrimSpace(r.Detail) {
			t.Fatalf("Parse(%q).Detail = %q, not a trimmed part of the text", text, r.Detail)
		}
		if r.TicketNumber != "" {
			switch r.Kind {
			case report.Status, report.Cancel, report.Confirm, report.Deny:
			default:
				t.Fatalf("Parse(%q) is %s with ticket %q", text, r.Kind, r.TicketNumber)
			}
			if !ticketFormat.MatchString(r.TicketNumber) {
				t.Fatalf("Parse(%q).TicketNumber = %q", text, r.TicketNumber)
			}
		}
		if r.Keyword != "" && report.Parse(r.Keyword).Keyword != r.Keyword {
			t.Fatalf("Parse(%q).Keyword = %q, which is not a keyword", text, r.Keyword)
		}
		switch r.Kind {
		case report.Unknown:
			if r.Detail != strings.TrimSpace(text) || r.Category != "" || r.Keyword != "" {
				t.Fatalf("Parse(%q) = %+v: an unknown text must be kept whole", text, r)
			}
		case report.NonEmergency:
			if r.Category == "" {
				t.Fatalf("Parse(%q) is a report without a category", text)
			}
		}
		if again := report.Parse(text); again != r {
			t.Fatalf("Parse(%q) gave %+v, then %+v", text, r, again)
		}
	})
}
