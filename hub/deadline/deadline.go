// Package deadline computes when a ticket must be acknowledged and resolved: the 112 service's
// promise that emergencies are handled the same day, and that non-emergencies are served in
// working hours (08:00–16:00 WIB, Monday to Friday, except holidays).
//
// Everything is computed in Asia/Jakarta (WIB, UTC+7, no daylight saving), whatever the zone of
// the server, from a time the caller passes in: the functions are pure, so the hub's injected
// clock decides what "now" is. The time zone database is compiled in (time/tzdata), so a server
// without /usr/share/zoneinfo computes the same deadlines.
//
// The rules:
//
//   - An emergency must be acknowledged within AckEmergency (default 5 minutes), at any hour.
//     It must be resolved the same day: by midnight WIB at the end of the day it arrived, but
//     never sooner than MinSameDay (default 4 hours) after it arrived. So one that arrives at
//     23:50 is due at 03:50 the next morning, not in ten minutes; one at 10:00 is due at 24:00.
//   - A non-emergency is served in working hours only. One that arrives outside them is queued
//     (Deadlines.QueuedUntil) until the next working hours begin: at 20:00 on a Monday it waits
//     for 08:00 on Tuesday; on a Friday evening, or before a holiday, for the next working day.
//     From then it must be acknowledged within AckNormal working time (default 2 hours) and
//     resolved within ResolveNormal working time (default 8 hours, one working day). Working
//     time stops at 16:00 and resumes at the next working day's 08:00: a report at 15:59 on a
//     Friday is due to be resolved at 15:59 on Monday.
package deadline

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // the deadlines must not depend on the server's zoneinfo

	"github.com/kentongan/kentongan/hub"
)

// Config is the "deadlines" section of the hub's configuration. Zero fields take the defaults
// of DefaultConfig.
type Config struct {
	AckEmergency  time.Duration `yaml:"ack_emergency"`
	MinSameDay    time.Duration `yaml:"min_same_day"`
	AckNormal     time.Duration `yaml:"ack_normal"`     // working time
	ResolveNormal time.Duration `yaml:"resolve_normal"` // working time
	WorkStart     string        `yaml:"work_start"`     // "08:00", WIB
	WorkEnd       string        `yaml:"work_end"`       // "16:00", WIB
	// Holidays are the days without working hours besides Saturdays and Sundays: national
	// holidays and cuti bersama, which change every year ("2026-03-20").
	Holidays []string `yaml:"holidays"`
}

// DefaultConfig is the policy of Kabupaten Tangerang's 112 service.
func DefaultConfig() Config {
	return Config{
		AckEmergency:  5 * time.Minute,
		MinSameDay:    4 * time.Hour,
		AckNormal:     2 * time.Hour,
		ResolveNormal: 8 * time.Hour,
		WorkStart:     "08:00",
		WorkEnd:       "16:00",
	}
}

// Policy computes deadlines. Build it with New; it is immutable and safe for concurrent use.
type Policy struct {
	ackEmergency, minSameDay time.Duration
	ackNormal, resolveNormal time.Duration
	start, end               time.Duration // since local midnight
	holidays                 map[civilDate]bool
}

type civilDate struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) civilDate {
	y, m, d := t.Date()
	return civilDate{y, m, d}
}

// WIB is the zone of every deadline.
var WIB = mustZone()

func mustZone() *time.Location {
	loc, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		// Unreachable with time/tzdata compiled in; WIB has had no DST since 1964.
		return time.FixedZone("WIB", 7*60*60)
	}
	return loc
}

// Errors of New.
var (
	ErrBadClock   = errors.New("not a time of day HH:MM")
	ErrBadDate    = errors.New("not a date YYYY-MM-DD")
	ErrBadPeriod  = errors.New("must be positive")
	ErrBadWorkDay = errors.New("working hours must start before they end")
)

// New checks c, filling zero fields from DefaultConfig, and returns its Policy. An error names
// the setting at fault.
func New(c Config) (*Policy, error) {
	d := DefaultConfig()
	p := &Policy{holidays: map[civilDate]bool{}}
	for _, f := range []struct {
		name   string
		v, def time.Duration
		dst    *time.Duration
	}{
		{"ack_emergency", c.AckEmergency, d.AckEmergency, &p.ackEmergency},
		{"min_same_day", c.MinSameDay, d.MinSameDay, &p.minSameDay},
		{"ack_normal", c.AckNormal, d.AckNormal, &p.ackNormal},
		{"resolve_normal", c.ResolveNormal, d.ResolveNormal, &p.resolveNormal},
	} {
		switch {
		case f.v < 0:
			return nil, fmt.Errorf("%s: %v %w", f.name, f.v, ErrBadPeriod)
		case f.v == 0:
			*f.dst = f.def
		default:
			*f.dst = f.v
		}
	}
	var err error
	if p.start, err = parseClock(cmp.Or(c.WorkStart, d.WorkStart)); err != nil {
		return nil, fmt.Errorf("work_start: %w", err)
	}
	if p.end, err = parseClock(cmp.Or(c.WorkEnd, d.WorkEnd)); err != nil {
		return nil, fmt.Errorf("work_end: %w", err)
	}
	if p.start >= p.end {
		return nil, fmt.Errorf("work_start %s, work_end %s: %w", cmp.Or(c.WorkStart, d.WorkStart), cmp.Or(c.WorkEnd, d.WorkEnd), ErrBadWorkDay)
	}
	for i, h := range c.Holidays {
		t, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(h), WIB)
		if err != nil {
			return nil, fmt.Errorf("holidays[%d]: %q %w", i, h, ErrBadDate)
		}
		p.holidays[dateOf(t)] = true
	}
	return p, nil
}

// Default is the policy of DefaultConfig, without holidays.
func Default() *Policy {
	p, err := New(DefaultConfig())
	if err != nil {
		panic(err) // DefaultConfig is valid; a test pins it
	}
	return p
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, ErrBadClock)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// For returns the deadlines of a ticket of priority p that arrived at created.
func (p *Policy) For(priority hub.Priority, created time.Time) hub.Deadlines {
	if priority == hub.PriorityEmergency {
		ack := created.Add(p.ackEmergency)
		resolve := midnightAfter(created)
		if floor := created.Add(p.minSameDay); resolve.Before(floor) {
			resolve = floor
		}
		return hub.Deadlines{AckDue: utc(ack), ResolveDue: utc(resolve)}
	}
	start := p.NextWorkingTime(created)
	d := hub.Deadlines{
		AckDue:     utc(p.AddWorking(start, p.ackNormal)),
		ResolveDue: utc(p.AddWorking(start, p.resolveNormal)),
	}
	if start.After(created) {
		d.QueuedUntil = utc(start)
	}
	return d
}

func utc(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// midnightAfter is the end of t's day in WIB.
func midnightAfter(t time.Time) time.Time {
	l := t.In(WIB)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, WIB)
}

// WorkingDay reports whether t falls on a working day in WIB: Monday to Friday, not a holiday.
func (p *Policy) WorkingDay(t time.Time) bool {
	l := t.In(WIB)
	if wd := l.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !p.holidays[dateOf(l)]
}

// Working reports whether t is within working hours: [start, end) of a working day.
func (p *Policy) Working(t time.Time) bool {
	if !p.WorkingDay(t) {
		return false
	}
	since := sinceMidnight(t.In(WIB))
	return since >= p.start && since < p.end
}

func sinceMidnight(l time.Time) time.Duration {
	return time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute +
		time.Duration(l.Second())*time.Second + time.Duration(l.Nanosecond())
}

func dayAt(l time.Time, offset time.Duration) time.Time {
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, WIB).Add(offset)
}

// NextWorkingTime returns t if it is within working hours, or else when they next begin.
func (p *Policy) NextWorkingTime(t time.Time) time.Time {
	if p.Working(t) {
		return t
	}
	l := t.In(WIB)
	day := l
	if sinceMidnight(l) >= p.start {
		day = dayAt(l, 0).AddDate(0, 0, 1)
	}
	// A year of holidays back to back is a configuration error, not a reason to loop for ever.
	for range 400 {
		if p.WorkingDay(day) {
			return dayAt(day, p.start)
		}
		day = dayAt(day, 0).AddDate(0, 0, 1)
	}
	return dayAt(day, p.start)
}

// AddWorking returns the time at which d of working time has passed after t.
func (p *Policy) AddWorking(t time.Time, d time.Duration) time.Time {
	t = p.NextWorkingTime(t)
	for range 4000 {
		l := t.In(WIB)
		left := dayAt(l, p.end).Sub(l)
		if d <= left {
			return t.Add(d)
		}
		d -= left
		t = p.NextWorkingTime(dayAt(l, p.end))
	}
	return t.Add(d)
}

// Holidays returns the configured holidays, sorted, as YYYY-MM-DD.
func (p *Policy) Holidays() []string {
	out := make([]string, 0, len(p.holidays))
	for d := range p.holidays {
		out = append(out, time.Date(d.y, d.m, d.d, 0, 0, 0, 0, WIB).Format(time.DateOnly))
	}
	slices.Sort(out)
	return out
}
