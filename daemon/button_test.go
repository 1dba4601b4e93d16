package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
)

// buttonRig runs one button on a simulated line with fake time. Use it inside synctest.Test.
type buttonRig struct {
	line *gpiosim.Line
	b    *button

	mu       sync.Mutex
	raised   int
	pressing []bool
	fail     error
}

func newButtonRig(t *testing.T, cfg Button, setup func(*gpiosim.Line)) *buttonRig {
	t.Helper()
	cfg.Pin = 17
	c := Config{Buttons: []Button{cfg}}
	c.ApplyDefaults()
	chip := gpiosim.New("sim", 0)
	r := &buttonRig{line: chip.Line(17)}
	if setup != nil {
		setup(r.line)
	}
	pin, err := chip.OpenIn(17, gpio.WithPullUp, gpio.WithDebounce(c.Buttons[0].Debounce()))
	if err != nil {
		t.Fatal(err)
	}
	r.b = newButton(c.Buttons[0], pin, discard)
	r.b.pressing = func(_ *button, on bool) {
		r.mu.Lock()
		r.pressing = append(r.pressing, on)
		r.mu.Unlock()
	}
	r.b.raise = func(*button) (string, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail != nil {
			return "", r.fail
		}
		r.raised++
		return "incident-id", nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.b.run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		chip.Close()
	})
	return r
}

func (r *buttonRig) count() int {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.raised
}

func TestShortPressRaisesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat"}, nil) // hold 2000 ms, debounce 30 ms
		if err := r.line.Tap(t.Context(), 1900*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if n := r.count(); n != 0 {
			t.Fatalf("%d incidents from a 1.9 s press", n)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.pressing) != 2 || !r.pressing[0] || r.pressing[1] {
			t.Fatalf("pressing indication %v, want [true false]", r.pressing)
		}
	})
}

func TestLongPressRaisesExactlyOne(t *testing.T) {
	for _, hold := range []time.Duration{2100 * time.Millisecond, 20 * time.Second} {
		t.Run(hold.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newButtonRig(t, Button{Name: "darurat"}, nil)
				start := time.Now()
				r.line.Press()
				time.Sleep(2029 * time.Millisecond) // debounce + hold - 1ms
				if n := r.count(); n != 0 {
					t.Fatalf("raised %d before the hold time", n)
				}
				time.Sleep(time.Millisecond)
				if n := r.count(); n != 1 {
					t.Fatalf("raised %d at the hold time, want 1", n)
				}
				time.Sleep(hold - time.Since(start))
				r.line.Release()
				time.Sleep(time.Minute)
				if n := r.count(); n != 1 {
					t.Fatalf("raised %d for one press held %v, want 1", n, hold)
				}
				// The next press counts again.
				r.line.Tap(t.Context(), 3*time.Second)
				if n := r.count(); n != 2 {
					t.Fatalf("second press: %d incidents, want 2", n)
				}
			})
		})
	}
}

func TestBouncyPressIsOnePress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "medis", HoldMS: 500, DebounceMS: 20}, nil)
		bounce := func() {
			for range 4 {
				r.line.Press()
				time.Sleep(3 * time.Millisecond)
				r.line.Release()
				time.Sleep(2 * time.Millisecond)
			}
		}
		bounce()
		r.line.Press()
		time.Sleep(time.Second)
		bounce() // release bounces too
		time.Sleep(time.Second)
		if n := r.count(); n != 1 {
			t.Fatalf("%d incidents from one bouncy press", n)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.pressing) != 2 {
			t.Fatalf("bounces seen as %d press transitions, want 2", len(r.pressing))
		}
	})
}

func TestButtonPressedAtStartIsIgnoredUntilReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat"}, func(l *gpiosim.Line) { l.Press() })
		time.Sleep(time.Minute)
		if n := r.count(); n != 0 {
			t.Fatalf("stuck button raised %d", n)
		}
		r.line.Release()
		time.Sleep(time.Second)
		r.line.Tap(t.Context(), 3*time.Second)
		if n := r.count(); n != 1 {
			t.Fatalf("press after release raised %d, want 1", n)
		}
	})
}

func TestPressOutcomes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat", HoldMS: 100, DebounceMS: 10}, nil)
		next := func(hold time.Duration) pressOutcome {
			t.Helper()
			ch, stop := r.b.watch()
			defer stop()
			r.line.Tap(t.Context(), hold)
			time.Sleep(time.Second)
			select {
			case o := <-ch:
				return o
			default:
				t.Fatalf("no outcome for a %v press", hold)
				return pressOutcome{}
			}
		}
		if o := next(50 * time.Millisecond); o.Raised || o.Err != nil {
			t.Fatalf("short press: %+v", o)
		}
		if o := next(200 * time.Millisecond); !o.Raised || o.IncidentID != "incident-id" {
			t.Fatalf("long press: %+v", o)
		}
		disk := errors.New("no space left on device")
		r.mu.Lock()
		r.fail = disk
		r.mu.Unlock()
		if o := next(200 * time.Millisecond); o.Raised || !errors.Is(o.Err, disk) {
			t.Fatalf("failed store: %+v", o)
		}
	})
}
