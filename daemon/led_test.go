package daemon

import (
	"context"
	"io"
	"log/slog"
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
		{"fault beats everything", display{Fault: true, Pressing: true, Pending: 2, Connected: true, Newest: rec(mqtt.AckAcknowledged, 0)}, StateFault},
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
