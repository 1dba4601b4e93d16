package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
	"github.com/kentongan/kentongan/mqtt"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestDeriveState(t *testing.T) {
	now := time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)
	show := 10 * time.Minute
	rec := func(s mqtt.AckStatus, ago time.Duration) *outbox.Recent {
		return &outbox.Recent{Status: s, Updated: now.Add(-ago)}
	}
	for _, tc := range []struct {
		name string
		in   display
		want string
	}{
		{"nothing, connected", display{Connected: true}, StateIdle},
		{"nothing, offline", display{}, StateOffline},
		{"pressing beats everything", display{Fault: true, Pressing: true, Pending: 2, Connected: true, Newest: rec(mqtt.AckAcknowledged, 0)}, StatePressing},
		{"fault beats the rest", display{Fault: true, Pending: 2, Connected: true, Newest: rec(mqtt.AckAcknowledged, 0)}, StateFault},
		{"pressing beats pending", display{Pressing: true, Pending: 1}, StatePressing},
		{"pending beats news", display{Pending: 1, Connected: true, Newest: rec(mqtt.AckAcknowledged, time.Minute)}, StatePending},
		{"pending while offline", display{Pending: 1}, StatePending},
		{"received", display{Connected: true, Newest: rec(mqtt.AckReceived, time.Minute)}, StateReceived},
		{"duplicate shows as received", display{Connected: true, Newest: rec(mqtt.AckDuplicate, 0)}, StateReceived},
		{"acknowledged", display{Connected: true, Newest: rec(mqtt.AckAcknowledged, 9*time.Minute)}, StateAcknowledged},
		{"acknowledged while offline", display{Newest: rec(mqtt.AckAcknowledged, time.Minute)}, StateAcknowledged},
		{"dispatched", display{Connected: true, Newest: rec(mqtt.AckDispatched, 0)}, StateDispatched},
		{"closed shows as resolved", display{Connected: true, Newest: rec(mqtt.AckClosed, 0)}, StateResolved},
		{"news expires", display{Connected: true, Newest: rec(mqtt.AckAcknowledged, 10*time.Minute)}, StateIdle},
		{"expired news offline", display{Newest: rec(mqtt.AckReceived, time.Hour)}, StateOffline},
		{"cancelled shows nothing", display{Connected: true, Newest: rec(mqtt.AckCancelled, 0)}, StateIdle},
	} {
		if got := deriveState(tc.in, now, show); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCancelledReportsAreNotShown(t *testing.T) {
	now := time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)
	entry := func(id, request string) outbox.Entry {
		return outbox.Entry{Incident: mqtt.Incident{ID: id, Request: request}}
	}
	var c cancelledReports
	pending := []outbox.Entry{entry("a", ""), entry("b", ""), entry("q", mqtt.RequestStatus)}
	recent := []outbox.Recent{{IncidentID: "z"}, {IncidentID: "y"}}
	if n, r := c.shown(pending, recent); n != 2 || r == nil || r.IncidentID != "z" {
		t.Fatalf("nothing cancelled: %d pending, newest %+v; want 2 (a request is not a report) and z", n, r)
	}
	c.add(now, "b", "z")
	if n, r := c.shown(pending, recent); n != 1 || r == nil || r.IncidentID != "y" {
		t.Fatalf("b and z cancelled: %d pending, newest %+v; want 1 and y", n, r)
	}
	c.add(now, "y")
	if _, r := c.shown(nil, recent); r != nil {
		t.Fatalf("all cancelled, newest %+v", r)
	}
	c.add(now.Add(25*time.Hour), "x")
	if c.has("b") || !c.has("x") {
		t.Fatal("entries older than a day are not forgotten")
	}
}

func TestPatternAt(t *testing.T) {
	const m = time.Millisecond
	for _, tc := range []struct {
		pattern string
		at      time.Duration
		on      bool
		next    time.Duration
	}{
		{PatternOff, 0, false, 0},
		{PatternOff, time.Hour, false, 0},
		{PatternSolid, time.Hour, true, 0},
		{PatternFastBlink, 0, true, 125 * m},
		{PatternFastBlink, 125 * m, false, 125 * m},
		{PatternFastBlink, 400 * m, false, 100 * m}, // woke 275 ms late: off, and back on at 500
		{PatternFastBlink, 760 * m, true, 115 * m},
		{PatternSlowBlink, 999 * m, false, 1 * m},
		{PatternSlowBlink, 1000 * m, true, 500 * m},
		{PatternHeartbeat, 50 * m, true, 50 * m},
		{PatternHeartbeat, 100 * m, false, 1900 * m},
		{PatternHeartbeat, 4050 * m, true, 50 * m},
		{PatternChirp, 0, true, 100 * m},
		{PatternChirp, 99 * m, true, 1 * m},
		{PatternChirp, 100 * m, false, 0},
		{PatternChirp, time.Hour, false, 0}, // once, not repeated
		{"disco", 0, false, 0},
		{PatternFastBlink, -time.Second, true, 125 * m}, // a clock that stepped back
	} {
		on, next := patternSteps(tc.pattern).at(tc.at)
		if on != tc.on || next != tc.next {
			t.Errorf("%s at %v: on=%v next=%v, want on=%v next=%v", tc.pattern, tc.at, on, next, tc.on, tc.next)
		}
	}
}

func TestLEDPatterns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		pin, err := chip.OpenOut(22)
		if err != nil {
			t.Fatal(err)
		}
		l := newLED("status", pin, DefaultPatterns(), discard)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.run(ctx); close(done) }()
		line := chip.Line(22)

		// assertBlink checks that the LED alternates with the given on and off times for a while.
		assertBlink := func(on, off time.Duration) {
			t.Helper()
			start := len(line.History())
			time.Sleep(4 * (on + off))
			h := line.History()[start:]
			if len(h) < 6 {
				t.Fatalf("only %d changes in four periods", len(h))
			}
			for i := 1; i < len(h); i++ {
				want := off
				if h[i-1].Level == gpio.High {
					want = on
				}
				if h[i].Level == h[i-1].Level || h[i].Time.Sub(h[i-1].Time) != want {
					t.Fatalf("change %d: %s after %v, want the other level after %v", i, h[i].Level, h[i].Time.Sub(h[i-1].Time), want)
				}
			}
		}

		if got := l.show(StatePending); got != PatternFastBlink {
			t.Fatalf("pending shows %s", got)
		}
		assertBlink(125*time.Millisecond, 125*time.Millisecond)
		l.show(StateReceived)
		assertBlink(500*time.Millisecond, 500*time.Millisecond)
		l.show(StateIdle)
		assertBlink(100*time.Millisecond, 1900*time.Millisecond)

		l.show(StateAcknowledged)
		synctest.Wait()
		n := len(line.History())
		time.Sleep(time.Minute)
		if line.Level() != gpio.High || len(line.History()) != n {
			t.Fatal("solid LED is not steadily on")
		}
		if v := l.view(); v.State != StateAcknowledged || v.Pattern != PatternSolid || !v.On {
			t.Fatalf("view %+v", v)
		}
		l.show(StateOffline)
		synctest.Wait()
		if line.Level() != gpio.Low {
			t.Fatal("offline LED is lit")
		}

		l.show(StateAcknowledged)
		synctest.Wait()
		cancel()
		<-done
		if line.Level() != gpio.Low || l.view().On {
			t.Fatal("LED left on after stop")
		}
	})
}

// handClock is a clock whose time moves only when the test says, and whose timers fire only
// when the test fires them: each After call is handed to the test on timers.
type handClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan handTimer
}

type handTimer struct {
	d time.Duration
	c chan time.Time
}

func (h *handClock) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *handClock) After(d time.Duration) (<-chan time.Time, func()) {
	c := make(chan time.Time, 1)
	h.timers <- handTimer{d, c}
	return c, func() {}
}

func (h *handClock) advance(d time.Duration) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
	return h.now
}

// TestLEDKeepsTimeWhenLate shows the loop under load: woken late, it shows the level the
// pattern has at that instant and asks to wake at the pattern's next change, rather than
// toggling and sleeping a full step, which would add every delay to the pattern's phase.
func TestLEDKeepsTimeWhenLate(t *testing.T) {
	chip := gpiosim.New("sim", 0)
	pin, err := chip.OpenOut(22)
	if err != nil {
		t.Fatal(err)
	}
	line := chip.Line(22)
	clk := &handClock{now: time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC), timers: make(chan handTimer)}
	l := newLED("status", pin, DefaultPatterns(), discard)
	l.clock = clk
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// next takes the loop's next timer, checks its length and the level shown until then.
	next := func(what string, wantD time.Duration, wantLevel gpio.Level) handTimer {
		t.Helper()
		select {
		case tm := <-clk.timers:
			if tm.d != wantD || line.Level() != wantLevel {
				t.Fatalf("%s: timer %v with the LED %s, want %v with it %s", what, tm.d, line.Level(), wantD, wantLevel)
			}
			return tm
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: the loop asked for no timer", what)
			return handTimer{}
		}
	}
	l.show(StatePending) // fast blink: 125 ms on, 125 ms off, from now
	tm := next("start", 125*time.Millisecond, gpio.High)
	tm.c <- clk.advance(400 * time.Millisecond) // 275 ms late
	tm = next("woken at 400 ms", 100*time.Millisecond, gpio.Low)
	tm.c <- clk.advance(100 * time.Millisecond)
	tm = next("at 500 ms, on the grid again", 125*time.Millisecond, gpio.High)
	tm.c <- clk.advance(260 * time.Millisecond) // more than a whole step late
	next("woken at 760 ms", 115*time.Millisecond, gpio.High)
}

func TestBuzzerChirps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		pin, _ := chip.OpenOut(18)
		c := Config{LEDs: []LED{{Name: "buzzer", Pin: 18, Kind: KindBuzzer}}}
		c.ApplyDefaults()
		l := newLED("buzzer", pin, c.LEDs[0].Patterns, discard)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.run(ctx); close(done) }()
		line := chip.Line(18)

		// chirps counts the pulses sounded in the next minute and checks each lasts 100 ms.
		chirps := func(state string) int {
			t.Helper()
			start := len(line.History())
			l.show(state)
			time.Sleep(time.Minute)
			h := line.History()[start:]
			n := 0
			for i, ch := range h {
				if ch.Level != gpio.High {
					continue
				}
				n++
				if i+1 >= len(h) || h[i+1].Time.Sub(ch.Time) != 100*time.Millisecond {
					t.Fatalf("%s: a pulse that is not a 100 ms chirp: %v", state, h)
				}
			}
			return n
		}
		for _, tc := range []struct {
			state string
			want  int
		}{
			{StateIdle, 0}, {StatePressing, 1}, {StatePending, 0}, {StateReceived, 1},
			{StateAcknowledged, 0}, {StateFault, 0}, {StateOffline, 0}, {StatePressing, 1},
		} {
			if n := chirps(tc.state); n != tc.want {
				t.Errorf("%s: %d chirps in a minute, want %d", tc.state, n, tc.want)
			}
		}
		l.show(StatePressing)
		synctest.Wait()
		cancel()
		<-done
		if line.Level() != gpio.Low {
			t.Fatal("buzzer left sounding after stop")
		}
	})
}

// brokenOut is an output that fails while broken is set.
type brokenOut struct {
	mu     sync.Mutex
	broken bool
	level  gpio.Level
}

func (b *brokenOut) Name() string { return "GPIO23" }

func (b *brokenOut) Out(l gpio.Level) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken {
		return errors.New("gpiochip0: no such device")
	}
	b.level = l
	return nil
}

func (b *brokenOut) Close() error { return nil }

func TestLEDLineFailureIsOneFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := &brokenOut{broken: true}
		l := newLED("status", pin, DefaultPatterns(), discard)
		var mu sync.Mutex
		var calls []string
		l.fault = func(key, text string) {
			mu.Lock()
			calls = append(calls, key+"="+text)
			mu.Unlock()
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.run(ctx); close(done) }()
		l.show(StatePending)
		time.Sleep(time.Minute)
		mu.Lock()
		if len(calls) != 1 || !strings.Contains(calls[0], "LED status: line GPIO23: gpiochip0: no such device") {
			t.Fatalf("fault calls %q, want one naming the LED, its line and the error", calls)
		}
		mu.Unlock()
		pin.mu.Lock()
		pin.broken = false
		pin.mu.Unlock()
		time.Sleep(time.Second)
		mu.Lock()
		if len(calls) != 2 || !strings.HasSuffix(calls[1], "=") {
			t.Fatalf("fault calls %q, want it cleared once the line works", calls)
		}
		mu.Unlock()
		cancel()
		<-done
		if pin.level != gpio.Low {
			t.Fatal("LED left on after stop")
		}
	})
}

func TestLEDPatternOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		pin, _ := chip.OpenOut(5)
		c := Config{LEDs: []LED{{Name: "fault", Pin: 5, Patterns: map[string]string{StateIdle: PatternOff, StateFault: PatternSolid}}}}
		c.ApplyDefaults()
		l := newLED("fault", pin, c.LEDs[0].Patterns, discard)
		if got := l.show(StateFault); got != PatternSolid {
			t.Fatalf("override ignored: %s", got)
		}
		if got := l.show(StateIdle); got != PatternOff {
			t.Fatalf("override ignored: %s", got)
		}
		if got := l.show(StatePending); got != PatternFastBlink {
			t.Fatalf("default lost: %s", got)
		}
	})
}

// TestDocumentedRGBExample keeps docs/config.md's RGB LED example honest: it loads, and each
// state lights the colours it says.
func TestDocumentedRGBExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml rgb-led\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no RGB LED example in docs/config.md")
	}
	yaml := strings.Replace(minimalYAML, "leds:\n  - name: status\n    pin: 22\n", string(m[1]), 1)
	c, err := parseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	lit := func(state string) string {
		var on []string
		for _, l := range c.LEDs {
			if l.Kind == KindLED && l.Patterns[state] != PatternOff {
				on = append(on, l.Name+":"+l.Patterns[state])
			}
		}
		return strings.Join(on, " ")
	}
	for state, want := range map[string]string{
		StatePressing: "blue:solid", StatePending: "red:fast_blink green:fast_blink",
		StateReceived: "green:slow_blink", StateAcknowledged: "green:solid", StateIdle: "green:heartbeat",
		StateOffline: "red:slow_blink", StateFault: "red:fast_blink",
	} {
		if got := lit(state); got != want {
			t.Errorf("%s lights %q, want %q", state, got, want)
		}
	}
	if b := c.LEDs[len(c.LEDs)-1]; b.Kind != KindBuzzer || b.Patterns[StatePressing] != PatternChirp {
		t.Errorf("last entry %+v, want the buzzer", b)
	}
}

// BenchmarkLEDDrift measures, on the runtime's clock, how far a fast-blinking LED's changes land
// from the pattern's grid (its first change + k × 125 ms). The worst is one late wake-up; the
// last shows that lateness does not add up over the run. Run it on a loaded machine with:
//
//	go test -run '^$' -bench LEDDrift -benchtime 80x ./daemon/
func BenchmarkLEDDrift(b *testing.B) {
	chip := gpiosim.New("sim", 0)
	pin, err := chip.OpenOut(22)
	if err != nil {
		b.Fatal(err)
	}
	line := chip.Line(22)
	l := newLED("status", pin, DefaultPatterns(), discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	from := len(line.History())
	l.show(StatePending)
	b.ResetTimer()
	for len(line.History()) < from+b.N+1 {
		<-line.Changed()
	}
	b.StopTimer()
	cancel()
	<-done
	h := line.History()[from : from+b.N+1]
	var worst, last time.Duration
	for i, c := range h {
		off := c.Time.Sub(h[0].Time.Add(time.Duration(i) * 125 * time.Millisecond))
		worst, last = max(worst, off.Abs()), off
	}
	b.ReportMetric(float64(worst.Microseconds()), "worst-µs-off-grid")
	b.ReportMetric(float64(last.Microseconds()), "last-µs-off-grid")
}
