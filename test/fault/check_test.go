package fault

import (
	"strings"
	"testing"
)

// The checker must see a lost report, a duplicated one and a stray ticket, or every run of the
// suite would look perfect.
func TestCheckFindsLossAndDuplicates(t *testing.T) {
	var l Ledger
	l.Add(Report{Key: "inc-1", Kind: KindButton, Device: "a"})
	l.Add(Report{Key: "inc-2", Kind: KindButton, Device: "a"})
	l.Add(Report{Key: "inc-2", Kind: KindButton, Device: "a"}) // learnt twice: one report
	l.Add(Report{Key: "kode7", Kind: KindSMS, Device: "b", Reporter: "+62811"})
	l.Add(Report{Key: "kode8", Kind: KindSMS, Device: "b", Reporter: "+62811"})
	if n := l.Count(""); n != 4 {
		t.Fatalf("ledger holds %d reports, want 4", n)
	}

	perfect := []Ticket{
		{IncidentID: "inc-1", Number: "1", Source: KindButton},
		{IncidentID: "inc-2", Number: "2", Source: KindButton},
		{IncidentID: "sms-x", Number: "3", Source: KindSMS, Text: "DARURAT kode7"},
		{IncidentID: "sms-y", Number: "4", Source: KindSMS, Text: "DARURAT kode8"},
	}
	if res := Check(l.Reports(), perfect); !res.OK() || res.Created != 4 || res.Tickets != 4 {
		t.Fatalf("perfect run checked as %+v", res)
	}

	broken := []Ticket{
		{IncidentID: "inc-1", Number: "1", Source: KindButton},
		// inc-2 lost
		{IncidentID: "sms-x", Number: "3", Source: KindSMS, Text: "DARURAT kode7"},
		{IncidentID: "sms-z", Number: "5", Source: KindSMS, Text: "DARURAT kode7"}, // SMS raised twice
		{IncidentID: "sms-y", Number: "4", Source: KindSMS, Text: "DARURAT kode8"},
		{IncidentID: "inc-9", Number: "6", Source: KindButton}, // nobody pressed this
	}
	res := Check(l.Reports(), broken)
	if res.Lost != 1 || res.Duplicated != 2 || res.OK() {
		t.Fatalf("broken run checked as lost=%d duplicated=%d; want 1 lost, 2 duplicated:\n%s", res.Lost, res.Duplicated, strings.Join(res.Problems, "\n"))
	}
	text := strings.Join(res.Problems, "\n")
	for _, want := range []string{"lost: button report inc-2", "kode7 from b is tickets 3, 5", "stray: ticket 6"} {
		if !strings.Contains(text, want) {
			t.Errorf("problems do not say %q:\n%s", want, text)
		}
	}

	table := Table([]Row{{Scenario: "x", Trials: 3, Result: res, Seed: 42, Command: "go test"}})
	if !strings.Contains(table, "| x | 3 | 4 | 5 | 1 | 2 | 42 | `go test` |") {
		t.Errorf("table row missing:\n%s", table)
	}
}
