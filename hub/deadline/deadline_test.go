package deadline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/deadline"
)

// wib builds a time in Jakarta: the tables read as the 112 centre's wall clock.
func wib(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, deadline.WIB)
	if err != nil {
		panic(err)
	}
	return t
}

// March 2026: Friday the 13th, Saturday the 14th, Monday the 16th; Thursday the 19th is Nyepi,
// configured as a holiday below, and Friday the 20th is cuti bersama.
var holidays = []string{"2026-03-19", "2026-03-20"}

func TestDeadlines(t *testing.T) {
	p, err := deadline.New(deadline.Config{Holidays: holidays})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                 string
		priority             hub.Priority
		created              string
		queued, ack, resolve string // "" for queued: not queued
	}{
		// Emergencies: five minutes to acknowledge at any hour, and the same day to resolve.
		{"emergency in the morning", hub.PriorityEmergency, "2026-03-13 10:00", "", "2026-03-13 10:05", "2026-03-14 00:00"},
		{"emergency on Saturday night", hub.PriorityEmergency, "2026-03-14 22:30", "", "2026-03-14 22:35", "2026-03-15 02:30"},
		// At 23:50 "the same day" has ten minutes left: the floor of four hours applies.
		{"emergency at 23:50", hub.PriorityEmergency, "2026-03-13 23:50", "", "2026-03-13 23:55", "2026-03-14 03:50"},
		{"emergency at 19:59", hub.PriorityEmergency, "2026-03-13 19:59", "", "2026-03-13 20:04", "2026-03-14 00:00"},
		{"emergency at 20:01", hub.PriorityEmergency, "2026-03-13 20:01", "", "2026-03-13 20:06", "2026-03-14 00:01"},
		{"emergency on a holiday", hub.PriorityEmergency, "2026-03-19 09:00", "", "2026-03-19 09:05", "2026-03-20 00:00"},

		// Non-emergencies: working hours, 08:00–16:00 Monday to Friday, holidays excepted.
		{"normal on Monday morning", hub.PriorityNormal, "2026-03-16 09:00", "", "2026-03-16 11:00", "2026-03-17 09:00"},
		{"normal at 08:00 sharp", hub.PriorityNormal, "2026-03-16 08:00", "", "2026-03-16 10:00", "2026-03-16 16:00"},
		{"normal on Friday at 15:59", hub.PriorityNormal, "2026-03-13 15:59", "", "2026-03-16 09:59", "2026-03-16 15:59"},
		{"normal on Friday at 16:00", hub.PriorityNormal, "2026-03-13 16:00", "2026-03-16 08:00", "2026-03-16 10:00", "2026-03-16 16:00"},
		{"normal at 20:00 on a Monday", hub.PriorityNormal, "2026-03-16 20:00", "2026-03-17 08:00", "2026-03-17 10:00", "2026-03-17 16:00"},
		{"normal before dawn", hub.PriorityNormal, "2026-03-17 05:30", "2026-03-17 08:00", "2026-03-17 10:00", "2026-03-17 16:00"},
		{"normal on Saturday night", hub.PriorityNormal, "2026-03-14 22:00", "2026-03-16 08:00", "2026-03-16 10:00", "2026-03-16 16:00"},
		{"normal on Sunday noon", hub.PriorityNormal, "2026-03-15 12:00", "2026-03-16 08:00", "2026-03-16 10:00", "2026-03-16 16:00"},
		// Wednesday evening before the Nyepi holiday and cuti bersama: Monday.
		{"normal before a holiday", hub.PriorityNormal, "2026-03-18 17:00", "2026-03-23 08:00", "2026-03-23 10:00", "2026-03-23 16:00"},
		{"normal on a holiday", hub.PriorityNormal, "2026-03-19 10:00", "2026-03-23 08:00", "2026-03-23 10:00", "2026-03-23 16:00"},
		// Wednesday 15:00: one working hour that day, the rest after the holidays.
		{"normal late on the day before a holiday", hub.PriorityNormal, "2026-03-18 15:00", "", "2026-03-23 09:00", "2026-03-23 15:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.For(tt.priority, wib(tt.created))
			check := func(what string, got *time.Time, want string) {
				t.Helper()
				switch {
				case want == "" && got != nil:
					t.Errorf("%s = %v, want none", what, got.In(deadline.WIB))
				case want != "" && got == nil:
					t.Errorf("%s missing, want %s", what, want)
				case want != "" && !got.Equal(wib(want)):
					t.Errorf("%s = %s, want %s", what, got.In(deadline.WIB).Format("Mon 2006-01-02 15:04"), want)
				case got != nil && got.Location() != time.UTC:
					t.Errorf("%s is in %v, want UTC as the store keeps times", what, got.Location())
				}
			}
			check("queued until", d.QueuedUntil, tt.queued)
			check("ack due", d.AckDue, tt.ack)
			check("resolve due", d.ResolveDue, tt.resolve)
		})
	}
}

// TestServerZoneDoesNotMatter: the same instant, given in any zone, has the same deadlines.
func TestServerZoneDoesNotMatter(t *testing.T) {
	p := deadline.Default()
	at := wib("2026-03-13 15:59")
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err) // time/tzdata is compiled in: this works without system zoneinfo
	}
	for _, loc := range []*time.Location{time.UTC, ny, time.FixedZone("odd", -11*3600)} {
		for _, pr := range []hub.Priority{hub.PriorityEmergency, hub.PriorityNormal} {
			got, want := p.For(pr, at.In(loc)), p.For(pr, at)
			if !got.AckDue.Equal(*want.AckDue) || !got.ResolveDue.Equal(*want.ResolveDue) {
				t.Errorf("%s in %v: %v/%v, want %v/%v", pr, loc, got.AckDue, got.ResolveDue, want.AckDue, want.ResolveDue)
			}
		}
	}
}

func TestWorkingTime(t *testing.T) {
	p, err := deadline.New(deadline.Config{WorkStart: "07:30", WorkEnd: "15:30", Holidays: []string{" 2026-03-19 "}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at      string
		working bool
	}{
		{"2026-03-16 07:29", false}, {"2026-03-16 07:30", true}, {"2026-03-16 15:29", true}, {"2026-03-16 15:30", false},
		{"2026-03-14 10:00", false}, {"2026-03-19 10:00", false}, {"2026-03-20 10:00", true},
	} {
		if got := p.Working(wib(tt.at)); got != tt.working {
			t.Errorf("Working(%s) = %v, want %v", tt.at, got, tt.working)
		}
	}
	// Twenty working hours from Friday 14:30 with 8-hour days: 1 h Friday, 8 Monday, 8 Tuesday,
	// 3 Wednesday.
	if got := p.AddWorking(wib("2026-03-13 14:30"), 20*time.Hour); !got.Equal(wib("2026-03-18 10:30")) {
		t.Errorf("AddWorking = %v", got.In(deadline.WIB))
	}
	if got := p.Holidays(); len(got) != 1 || got[0] != "2026-03-19" {
		t.Errorf("Holidays = %v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		c    deadline.Config
		want error
	}{
		{deadline.Config{WorkStart: "8 pagi"}, deadline.ErrBadClock},
		{deadline.Config{WorkEnd: "25:00"}, deadline.ErrBadClock},
		{deadline.Config{WorkStart: "16:00", WorkEnd: "08:00"}, deadline.ErrBadWorkDay},
		{deadline.Config{Holidays: []string{"2026-02-30"}}, deadline.ErrBadDate},
		{deadline.Config{Holidays: []string{"19/03/2026"}}, deadline.ErrBadDate},
		{deadline.Config{AckEmergency: -time.Minute}, deadline.ErrBadPeriod},
	} {
		if _, err := deadline.New(tt.c); !errors.Is(err, tt.want) {
			t.Errorf("New(%+v) = %v, want %v", tt.c, err, tt.want)
		}
	}
	if _, err := deadline.New(deadline.DefaultConfig()); err != nil {
		t.Errorf("default config: %v", err)
	}
}

// TestAYearOfHolidays: a list that leaves no working day (a mistake) still gives an answer.
func TestAYearOfHolidays(t *testing.T) {
	var all []string
	for d := wib("2026-01-01 00:00"); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		all = append(all, d.Format(time.DateOnly))
	}
	p, err := deadline.New(deadline.Config{Holidays: all})
	if err != nil {
		t.Fatal(err)
	}
	d := p.For(hub.PriorityNormal, wib("2026-06-01 10:00"))
	if d.AckDue == nil || d.ResolveDue == nil || d.ResolveDue.Year() != 2027 {
		t.Errorf("deadlines with every day of 2026 a holiday: %+v", d)
	}
}
