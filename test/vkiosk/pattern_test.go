package vkiosk

import (
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

const ms = time.Millisecond

// blink is what a sampler sees of an LED that is on for on and off for off, starting phase
// into its cycle (lit first), over window; jitter stretches every other phase, as a loaded
// guest does.
func blink(on, off, phase, window, jitter time.Duration) guestapi.Samples {
	s := guestapi.Samples{Duration: window, Reads: int(window / ms)}
	period := on + off
	phase %= period
	level := phase < on
	s.Initial = level
	var next time.Duration
	if level {
		next = on - phase
	} else {
		next = period - phase
	}
	for i := 0; next < window; i++ {
		level = !level
		s.Changes = append(s.Changes, guestapi.Change{At: next, Value: level})
		d := off
		if level {
			d = on
		}
		if i%2 == 1 {
			d += jitter
		}
		next += d
	}
	return s
}

func TestClassifyNamesTheDaemonsPatterns(t *testing.T) {
	for _, c := range []struct {
		name string
		s    guestapi.Samples
		want Pattern
	}{
		{"dark", guestapi.Samples{Duration: 2500 * ms}, PatternOff},
		{"lit", guestapi.Samples{Duration: 2500 * ms, Initial: true}, PatternSolid},
		{"slow blink", blink(500*ms, 500*ms, 0, 2500*ms, 0), PatternSlowBlink},
		{"slow blink, mid-phase, jittery", blink(500*ms, 500*ms, 730*ms, 2500*ms, 120*ms), PatternSlowBlink},
		{"fast blink", blink(125*ms, 125*ms, 60*ms, 2500*ms, 30*ms), PatternFastBlink},
		{"heartbeat", blink(100*ms, 1900*ms, 1500*ms, 4500*ms, 50*ms), PatternHeartbeat},
		// One flash only: the off phase between flashes was never seen whole.
		{"one flash", blink(100*ms, 1900*ms, 1500*ms, 2500*ms, 0), PatternUnknown},
		// Two blinks then dark for long: neither blink nor heartbeat.
		{"changing pattern", guestapi.Samples{Duration: 2500 * ms, Initial: true, Changes: []guestapi.Change{
			{At: 125 * ms, Value: false}, {At: 250 * ms, Value: true}, {At: 375 * ms, Value: false},
			{At: 875 * ms, Value: true}, {At: 1375 * ms, Value: false}}}, PatternUnknown},
		// A fast blink's flash after 1 s of dark is not a fast blink.
		{"fast after dark", guestapi.Samples{Duration: 1600 * ms, Changes: []guestapi.Change{
			{At: 1000 * ms, Value: true}, {At: 1125 * ms, Value: false}, {At: 1250 * ms, Value: true},
			{At: 1375 * ms, Value: false}}}, PatternUnknown},
	} {
		if got := Classify(c.s); got != c.want {
			t.Errorf("%s: %s, want %s (%s)", c.name, got, c.want, Describe(c.s))
		}
	}
}

func TestDescribeListsPhases(t *testing.T) {
	got := Describe(blink(500*ms, 500*ms, 0, 1200*ms, 0))
	if !strings.Contains(got, "[on 500ms off 500ms on 200ms]") {
		t.Fatalf("Describe = %q", got)
	}
}
