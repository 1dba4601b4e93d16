package gpiocdev

import (
	"testing"
	"time"
)

func TestEventTimeConvertsMonotonicStamps(t *testing.T) {
	now := time.Now()
	mono := 5000 * time.Second
	got := eventTime(now, mono, mono-3*time.Millisecond)
	if d := now.Sub(got); d != 3*time.Millisecond {
		t.Fatalf("event 3ms old placed %v before now", d)
	}
	// The result keeps Go's monotonic reading, so it measures against later time.Now() calls
	// without the wall clock's steps.
	if got.Round(0) == got {
		t.Fatal("converted time lost its monotonic reading")
	}
}

func TestEventTimeFallsBackOnAnotherClock(t *testing.T) {
	now := time.Now()
	mono := 100 * time.Second
	// A pre-5.7 kernel stamps with CLOCK_REALTIME: far "in the future" of CLOCK_MONOTONIC.
	realtime := time.Duration(now.UnixNano())
	if got := eventTime(now, mono, realtime); !got.Equal(now) {
		t.Fatalf("realtime stamp: got %v, want now", got)
	}
	// And a stamp far in the past cannot be an edge that was just read.
	if got := eventTime(now, mono, mono-time.Hour); !got.Equal(now) {
		t.Fatalf("hour-old stamp: got %v, want now", got)
	}
}

func TestWithCheckInterval(t *testing.T) {
	c := config{check: CheckInterval}
	WithCheckInterval(0)(&c)
	if c.check != CheckInterval {
		t.Fatalf("zero interval changed the default to %v", c.check)
	}
	WithCheckInterval(20 * time.Millisecond)(&c)
	if c.check != 20*time.Millisecond {
		t.Fatalf("interval %v", c.check)
	}
}
