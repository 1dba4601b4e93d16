// Package fault is the fault-injection and crash suite: its tests start the real hub and kiosk
// binaries, inject faults (SIGKILL, cut networks, broken modems, full disks, a locked database,
// skewed clocks) while residents press buttons and text reports, and then count, from the hub's
// database and every kiosk's outbox, how many reports were lost or became more than one ticket.
//
// This file holds what the tests count with, kept apart so that the counting itself is tested:
// a checker that cannot see a loss would make every run look perfect.
package fault

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Report kinds.
const (
	KindButton = "button"
	KindSMS    = "sms"
)

// Report is something a resident did that must become exactly one ticket.
type Report struct {
	// Key identifies the report: the incident ID of a button press, or the unique token written
	// into the text of an SMS (an SMS's incident ID is made on the kiosk and not known to the
	// sender, and a duplicate would carry a new one).
	Key      string
	Kind     string
	Device   string
	Reporter string // the sender of an SMS, who must get a receipt
}

// Ticket is a ticket as read from the hub's database.
type Ticket struct {
	IncidentID string
	Number     string
	DeviceID   string
	Source     string
	Text       string
	Reporter   string
}

// Ledger collects the reports made during a scenario. It is safe for concurrent use; adding a
// key twice keeps one report, because a press is learnt both from the admin API and from the
// kiosk's outbox.
type Ledger struct {
	mu      sync.Mutex
	reports map[string]Report
}

// Add records r.
func (l *Ledger) Add(r Report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reports == nil {
		l.reports = make(map[string]Report)
	}
	if _, ok := l.reports[r.Key]; !ok {
		l.reports[r.Key] = r
	}
}

// Reports returns the reports, ordered by key.
func (l *Ledger) Reports() []Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Report, 0, len(l.reports))
	for _, r := range l.reports {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Report) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// Count returns how many reports of kind (all kinds when empty) were made.
func (l *Ledger) Count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reports {
		if kind == "" || r.Kind == kind {
			n++
		}
	}
	return n
}

// Result is what Check found.
type Result struct {
	Created int // reports made
	Tickets int // tickets in the hub's database
	Lost    int // reports with no ticket
	// Duplicated counts the tickets beyond the first for a report, and tickets that match no
	// report at all (a report raised twice under a new ID looks like that).
	Duplicated int
	// Problems names each lost, duplicated or stray report, for the failure message.
	Problems []string
}

// OK reports whether every report became exactly one ticket.
func (r Result) OK() bool { return r.Lost == 0 && r.Duplicated == 0 }

// Check matches reports to tickets: a button report by incident ID, an SMS report by the token
// in its text.
func Check(reports []Report, tickets []Ticket) Result {
	res := Result{Created: len(reports), Tickets: len(tickets)}
	matched := make([]bool, len(tickets))
	var smsKeys []string
	byIncident := make(map[string][]int)
	for i, t := range tickets {
		byIncident[t.IncidentID] = append(byIncident[t.IncidentID], i)
	}
	for _, r := range reports {
		var hits []int
		switch r.Kind {
		case KindSMS:
			smsKeys = append(smsKeys, r.Key)
			for i, t := range tickets {
				if t.Source == KindSMS && strings.Contains(t.Text, r.Key) {
					hits = append(hits, i)
				}
			}
		default:
			hits = byIncident[r.Key]
		}
		for _, i := range hits {
			matched[i] = true
		}
		switch {
		case len(hits) == 0:
			res.Lost++
			res.Problems = append(res.Problems, fmt.Sprintf("lost: %s report %s from %s", r.Kind, r.Key, r.Device))
		case len(hits) > 1:
			res.Duplicated += len(hits) - 1
			var nums []string
			for _, i := range hits {
				nums = append(nums, tickets[i].Number)
			}
			res.Problems = append(res.Problems, fmt.Sprintf("duplicated: %s report %s from %s is tickets %s", r.Kind, r.Key, r.Device, strings.Join(nums, ", ")))
		}
	}
	for i, t := range tickets {
		if !matched[i] {
			res.Duplicated++
			res.Problems = append(res.Problems, fmt.Sprintf("stray: ticket %s (incident %s, %s from %s, text %q) matches no report", t.Number, t.IncidentID, t.Source, t.DeviceID, t.Text))
		}
	}
	return res
}

// Row is one line of the suite's table.
type Row struct {
	Scenario string
	Trials   int
	Result   Result
	Seed     int64
	Command  string
}

// Table renders rows as a markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| Scenario | Trials | Incidents created | Tickets found | Lost | Duplicated | Seed | Command |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	var tot Row
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | `%s` |\n", r.Scenario, r.Trials, r.Result.Created, r.Result.Tickets, r.Result.Lost, r.Result.Duplicated, r.Seed, r.Command)
		tot.Trials += r.Trials
		tot.Result.Created += r.Result.Created
		tot.Result.Tickets += r.Result.Tickets
		tot.Result.Lost += r.Result.Lost
		tot.Result.Duplicated += r.Result.Duplicated
	}
	fmt.Fprintf(&b, "| **total** | %d | %d | %d | %d | %d | | |\n", tot.Trials, tot.Result.Created, tot.Result.Tickets, tot.Result.Lost, tot.Result.Duplicated)
	return b.String()
}
