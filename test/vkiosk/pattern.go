package vkiosk

import (
	"fmt"
	"slices"
	"time"

	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

// Pattern is what an LED line did over a sampling window, by the names of docs/config.md.
type Pattern string

const (
	PatternOff       Pattern = "off"
	PatternSolid     Pattern = "solid"
	PatternSlowBlink Pattern = "slow_blink" // 500 ms on, 500 ms off
	PatternFastBlink Pattern = "fast_blink" // 125 ms on, 125 ms off
	PatternHeartbeat Pattern = "heartbeat"  // a 100 ms flash every 2 s
	// PatternUnknown is a window that fits none of the above, e.g. one in which the LED went
	// from one pattern to another, or too short to see a whole period.
	PatternUnknown Pattern = "unknown"
)

// Classify names the pattern an LED showed in samples. Only whole on and off phases (bounded by
// two changes) are measured, and the bounds are wide: the daemon's timers and the sampling run
// in an emulated guest on a loaded machine. A window must hold at least two whole phases of a
// blink to be named; a steady level is off or solid.
func Classify(s guestapi.Samples) Pattern {
	if len(s.Changes) == 0 {
		if s.Initial {
			return PatternSolid
		}
		return PatternOff
	}
	var on, off []time.Duration
	for i := 1; i < len(s.Changes); i++ {
		d := s.Changes[i].At - s.Changes[i-1].At
		if s.Changes[i-1].Value {
			on = append(on, d)
		} else {
			off = append(off, d)
		}
	}
	// The partial phases at both ends bound what a whole phase may be: a 1 s stretch of dark
	// before the first flash rules out a fast blink.
	leadOn, leadOff := partials(s)
	within := func(ds []time.Duration, lo, hi time.Duration) bool {
		for _, d := range ds {
			if d < lo || d > hi {
				return false
			}
		}
		return true
	}
	atMost := func(ds []time.Duration, hi time.Duration) bool { return within(ds, 0, hi) }
	ms := time.Millisecond
	switch {
	case len(on) >= 1 && len(off) >= 1 &&
		within(on, 40*ms, 300*ms) && within(off, 40*ms, 300*ms) &&
		atMost(leadOn, 300*ms) && atMost(leadOff, 300*ms):
		return PatternFastBlink
	case len(on) >= 1 && len(off) >= 1 &&
		within(on, 330*ms, 800*ms) && within(off, 330*ms, 800*ms) &&
		atMost(leadOn, 800*ms) && atMost(leadOff, 800*ms):
		return PatternSlowBlink
	case len(on) >= 1 && len(off) >= 1 &&
		within(on, 30*ms, 300*ms) && within(off, 1400*ms, 2600*ms) &&
		atMost(leadOn, 300*ms) && atMost(leadOff, 2600*ms):
		return PatternHeartbeat
	}
	return PatternUnknown
}

// partials are the phases cut off by the window's start and end, by level.
func partials(s guestapi.Samples) (on, off []time.Duration) {
	add := func(level bool, d time.Duration) {
		if level {
			on = append(on, d)
		} else {
			off = append(off, d)
		}
	}
	add(s.Initial, s.Changes[0].At)
	last := s.Changes[len(s.Changes)-1]
	if s.Duration > last.At {
		add(last.Value, s.Duration-last.At)
	}
	return on, off
}

// Describe is a short account of samples for a failure message: the level at the start and the
// length of each phase after it.
func Describe(s guestapi.Samples) string {
	var phases []string
	prev := time.Duration(0)
	level := s.Initial
	for _, c := range s.Changes {
		phases = append(phases, fmt.Sprintf("%s %v", onOff(level), (c.At-prev).Round(time.Millisecond)))
		prev, level = c.At, c.Value
	}
	phases = append(phases, fmt.Sprintf("%s %v", onOff(level), (s.Duration-prev).Round(time.Millisecond)))
	if len(phases) > 24 {
		phases = append(slices.Clip(phases[:12]), append([]string{"…"}, phases[len(phases)-12:]...)...)
	}
	return fmt.Sprintf("%d reads over %v: %v", s.Reads, s.Duration.Round(time.Millisecond), phases)
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}
