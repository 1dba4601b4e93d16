package report_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon/report"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// allowN counts how many of n texts in a row sender may send.
func allowN(l *report.Limiter, sender string, n int) int {
	allowed := 0
	for range n {
		if l.Allow(sender) {
			allowed++
		}
	}
	return allowed
}

func TestLimiterBurstAndRefill(t *testing.T) {
	c := newClock()
	l := report.NewLimiter(3, time.Minute, c.Now)
	const rt = "+6281234567890"

	if got := allowN(l, rt, 10); got != 3 {
		t.Fatalf("a burst of 10 at once: %d allowed, want the burst of 3", got)
	}
	c.Advance(59 * time.Second)
	if l.Allow(rt) {
		t.Fatal("allowed before a token was back")
	}
	c.Advance(time.Second)
	if !l.Allow(rt) {
		t.Fatal("not allowed once a minute had passed")
	}
	if l.Allow(rt) {
		t.Fatal("one minute gave more than one token")
	}
	c.Advance(150 * time.Second)
	if got := allowN(l, rt, 10); got != 2 {
		t.Fatalf("after 2.5 minutes: %d allowed, want 2", got)
	}
	c.Advance(time.Hour)
	if got := allowN(l, rt, 10); got != 3 {
		t.Fatalf("after an hour: %d allowed, want no more than the burst of 3", got)
	}
}

func TestLimiterPerSender(t *testing.T) {
	c := newClock()
	l := report.NewLimiter(2, time.Minute, c.Now)
	if got := allowN(l, "+6281234567890", 5); got != 2 {
		t.Fatalf("first sender: %d allowed, want 2", got)
	}
	if got := allowN(l, "+6285711112222", 5); got != 2 {
		t.Fatalf("second sender: %d allowed, want 2; one sender's flood limited another", got)
	}
	// One phone, however its number is written, has one bucket.
	if l.Allow("0812-3456-7890") || l.Allow("6281234567890") {
		t.Fatal("a number written another way got a bucket of its own")
	}
	if got := allowN(l, "TELKOMSEL", 5); got != 2 {
		t.Fatalf("alphanumeric sender: %d allowed, want 2", got)
	}
}

func TestLimiterForgetsIdleSenders(t *testing.T) {
	c := newClock()
	l := report.NewLimiter(2, time.Minute, c.Now)
	for i := range 100 {
		l.Allow(fmt.Sprintf("+62812000%05d", i))
	}
	if l.Len() != 100 {
		t.Fatalf("Len = %d, want 100", l.Len())
	}
	// A sender with one token used is full again after a minute, and then nothing is lost by
	// forgetting it.
	c.Advance(time.Minute)
	l.Allow("+6285711112222")
	if l.Len() != 1 {
		t.Fatalf("Len = %d after every other sender had been idle long enough, want 1", l.Len())
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	c := newClock()
	l := report.NewLimiter(1, time.Hour, c.Now)
	first := "+6281200000000"
	if !l.Allow(first) {
		t.Fatal("first text refused")
	}
	for i := 1; i <= report.MaxSenders; i++ {
		if !l.Allow(fmt.Sprintf("+62812%08d", i)) {
			t.Fatalf("new sender %d refused", i)
		}
	}
	if l.Len() != report.MaxSenders {
		t.Fatalf("Len = %d, want the bound %d", l.Len(), report.MaxSenders)
	}
	// The least recently heard sender was evicted, and starts again with a full bucket.
	if !l.Allow(first) {
		t.Fatal("the evicted sender is still limited")
	}
	// The most recently heard is still remembered.
	if l.Allow(fmt.Sprintf("+62812%08d", report.MaxSenders)) {
		t.Fatal("a recent sender was forgotten")
	}
}

func TestLimiterClockGoesBack(t *testing.T) {
	c := newClock()
	l := report.NewLimiter(2, time.Minute, c.Now)
	const rt = "+6281234567890"
	allowN(l, rt, 2)
	c.Advance(-24 * time.Hour)
	l.Allow(rt)
	c.Advance(2 * time.Minute)
	if !l.Allow(rt) {
		t.Fatal("a clock set back a day locked the sender out for longer than the burst window")
	}
}

func TestLimiterEdgeSettings(t *testing.T) {
	c := newClock()
	if got := allowN(report.NewLimiter(0, time.Minute, c.Now), "x", 5); got != 1 {
		t.Errorf("burst 0: %d allowed, want 1", got)
	}
	if got := allowN(report.NewLimiter(1, 0, c.Now), "x", 50); got != 50 {
		t.Errorf("no interval: %d allowed, want all 50", got)
	}
	if got := allowN(report.NewLimiter(3, time.Duration(1<<62), nil), "x", 5); got != 3 {
		t.Errorf("huge interval: %d allowed, want 3", got)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	c := newClock()
	l := report.NewLimiter(50, time.Hour, c.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			n := allowN(l, "+6281234567890", 20)
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("%d allowed from 8 goroutines, want exactly the burst of 50", allowed)
	}
}
