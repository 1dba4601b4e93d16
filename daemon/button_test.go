package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
	"github.com/kentongan/kentongan/mqtt"
)

// buttonCfg is a button with its defaults applied and the given changes.
func buttonCfg(t *testing.T, b Button) Button {
	t.Helper()
	b.Pin = 17
	if b.Name == "" {
		b.Name = "darurat"
	}
	c := Config{Buttons: []Button{b}}
	c.ApplyDefaults()
	return c.Buttons[0]
}

func ms(n int) *int { return &n }

// --- The machine alone, with scripted edges at chosen instants (periph's gpiotest style). ---

// machineScript drives an inputMachine and records what it asked for, each action written as
// pressing+, pressing-, raise, cancel:<target>, fault+<kind>, fault-<kind> or done.
type machineScript struct {
	t   *testing.T
	m   *inputMachine
	t0  time.Time
	got []string
}

func newMachineScript(t *testing.T, cfg Button, activeAtStart bool) *machineScript {
	s := &machineScript{t: t, m: newInputMachine(buttonCfg(t, cfg), discard), t0: time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)}
	s.record(s.m.start(s.t0, activeAtStart))
	return s
}

func (s *machineScript) record(acts []action) {
	for _, a := range acts {
		var w string
		switch a.kind {
		case actPressing:
			w = map[bool]string{true: "pressing+", false: "pressing-"}[a.on]
		case actRaise:
			w = "raise"
			// The driver tells the machine the ID it got, as button.raise does.
			s.m.raisedID = fmt.Sprintf("id-%d", len(s.got))
		case actCancel:
			w = "cancel:" + a.target
		case actFault:
			w = map[bool]string{true: "fault+", false: "fault-"}[a.on] + a.fault
		case actDone:
			w = "done"
		}
		s.got = append(s.got, w)
	}
}

// at runs the machine up to offset: every deadline before it fires on time, as the driver's
// timer would, then the edge (if any) happens.
func (s *machineScript) at(offset time.Duration, edge ...bool) {
	now := s.t0.Add(offset)
	for {
		d := s.m.deadline()
		if d.IsZero() || d.After(now) {
			break
		}
		s.record(s.m.tick(d))
	}
	for _, active := range edge {
		s.record(s.m.edge(now, active))
	}
}

// press is an edge to the active level, release one to rest.
const (
	press   = true
	release = false
)

func (s *machineScript) want(what string, want ...string) {
	s.t.Helper()
	if !slices.Equal(s.got, want) {
		s.t.Fatalf("%s: actions %q, want %q", what, s.got, want)
	}
	s.got = nil
}

func TestMachineShortBrushRaisesNothing(t *testing.T) {
	s := newMachineScript(t, Button{}, false) // hold 2 s
	s.at(0, press)
	s.want("press starts", "pressing+")
	s.at(50*time.Millisecond, release)
	s.want("brush ends", "pressing-", "done")
	s.at(time.Hour)
	s.want("an hour later")
}

func TestMachineLongHoldRaisesOnce(t *testing.T) {
	s := newMachineScript(t, Button{}, false)
	s.at(0, press)
	s.at(1999 * time.Millisecond)
	s.want("before the hold time", "pressing+")
	s.at(2000 * time.Millisecond)
	s.want("at the hold time", "raise", "pressing-")
	s.at(100 * time.Second)
	s.want("held on")
	s.at(101*time.Second, release)
	s.want("release")
	s.at(102*time.Second, press)
	s.at(105*time.Second, release)
	s.want("the next press counts again", "pressing+", "raise", "pressing-")
}

func TestMachineCancel(t *testing.T) {
	hold := func(s *machineScript, from time.Duration) {
		s.at(from, press)
		s.at(from+3*time.Second, release)
	}
	t.Run("short second press in the window cancels the last raise", func(t *testing.T) {
		s := newMachineScript(t, Button{}, false) // window 30 s from the raise at 2 s
		hold(s, 0)
		s.want("first press", "pressing+", "raise", "pressing-")
		s.at(31*time.Second, press)
		s.at(31*time.Second+300*time.Millisecond, release)
		s.want("second press", "pressing+", "pressing-", "cancel:id-1", "done")
		s.at(33*time.Second, press)
		s.at(33*time.Second+300*time.Millisecond, release)
		s.want("a third press cancels nothing more", "pressing+", "pressing-", "done")
	})
	t.Run("after the window", func(t *testing.T) {
		s := newMachineScript(t, Button{}, false)
		hold(s, 0)
		s.got = nil
		s.at(32*time.Second+time.Millisecond, press)
		s.at(33*time.Second, release)
		s.want("late press", "pressing+", "pressing-", "done")
	})
	t.Run("a long second press is a second report", func(t *testing.T) {
		s := newMachineScript(t, Button{}, false)
		hold(s, 0)
		s.got = nil
		hold(s, 5*time.Second)
		s.want("second long press", "pressing+", "raise", "pressing-")
		s.at(10*time.Second, press)
		s.at(10*time.Second+200*time.Millisecond, release)
		s.want("a short press then cancels the second", "pressing+", "pressing-", "cancel:id-1", "done")
	})
	t.Run("a bounce is not a cancel", func(t *testing.T) {
		s := newMachineScript(t, Button{DebounceMS: 1}, false) // a bounce slips through
		hold(s, 0)
		s.got = nil
		s.at(3*time.Second+2*time.Millisecond, press)
		s.at(3*time.Second+5*time.Millisecond, release)
		s.want("bounce after release", "pressing+", "pressing-", "done")
	})
	t.Run("window 0 is off", func(t *testing.T) {
		s := newMachineScript(t, Button{CancelWindowMS: ms(0)}, false)
		hold(s, 0)
		s.got = nil
		s.at(5*time.Second, press)
		s.at(5*time.Second+300*time.Millisecond, release)
		s.want("short press", "pressing+", "pressing-", "done")
	})
	t.Run("a tamper switch has no cancel", func(t *testing.T) {
		s := newMachineScript(t, Button{Kind: KindTamper}, false)
		hold(s, 0)
		s.at(5*time.Second, press)
		s.at(5*time.Second+300*time.Millisecond, release)
		s.want("opening, then a short one", "raise", "done")
	})
}

func TestMachineStuckIsOneFault(t *testing.T) {
	s := newMachineScript(t, Button{}, false) // stuck after 120 s
	s.at(0, press)
	s.at(119 * time.Second)
	s.want("held under the limit", "pressing+", "raise", "pressing-")
	s.at(120 * time.Second)
	s.want("at the limit", "fault+stuck")
	s.at(10 * time.Minute)
	s.want("ten minutes down: no flood")
	s.at(10*time.Minute, release)
	s.want("released", "fault-stuck", "done")
	s.at(11*time.Minute, press)
	s.at(11*time.Minute+3*time.Second, release)
	s.want("counts again", "pressing+", "raise", "pressing-")
}

func TestMachinePressedAtStart(t *testing.T) {
	s := newMachineScript(t, Button{}, true)
	s.at(time.Minute)
	s.want("pressed since start-up: ignored")
	s.at(2 * time.Minute)
	s.want("shorted since start-up: stuck", "fault+stuck")
	s.at(3*time.Minute, release)
	s.want("released", "fault-stuck", "done")
}

func TestMachineChatter(t *testing.T) {
	s := newMachineScript(t, Button{}, false) // 20 edges in 2 s, quiet 5 s
	// A loose wire: 19 edges 50 ms apart are still presses and releases.
	var at time.Duration
	for i := range 19 {
		s.at(at, i%2 == 0)
		at += 50 * time.Millisecond
	}
	if slices.Contains(s.got, "fault+chatter") {
		t.Fatalf("chatter declared after 19 edges: %q", s.got)
	}
	s.got = nil
	s.at(at, release) // the 20th edge, while "pressed"
	s.want("20th edge", "pressing-", "done", "fault+chatter")
	// It goes on chattering and then lies low long enough to be a press: still nothing.
	for range 40 {
		at += 50 * time.Millisecond
		s.at(at, press)
		at += 50 * time.Millisecond
		s.at(at, release)
	}
	at += 50 * time.Millisecond
	s.at(at, press)
	s.at(at + 4999*time.Millisecond)
	s.want("while chattering")
	// Quiet for chatter_quiet_ms and still pressed: counted as a press since the last edge,
	// which is already longer than hold_ms.
	s.at(at + 5*time.Second)
	s.want("quiet", "fault-chatter", "pressing+", "raise", "pressing-")
}

func TestMachineChatterClearsAtRest(t *testing.T) {
	s := newMachineScript(t, Button{ChatterEdges: 4, ChatterWindowMS: 1000, ChatterQuietMS: 3000}, false)
	for i, at := range []time.Duration{0, 100, 200, 300} {
		s.at(at*time.Millisecond, i%2 == 0)
	}
	s.want("4 edges in 1 s", "pressing+", "pressing-", "done", "pressing+", "pressing-", "done", "fault+chatter")
	s.at(3300 * time.Millisecond)
	s.want("quiet at rest", "fault-chatter")
	s.at(4*time.Second, press)
	s.at(7*time.Second, release)
	s.want("counts again", "pressing+", "raise", "pressing-")
}

func TestMachineSlowPressesAreNotChatter(t *testing.T) {
	// A child pressing the button briefly, once a second for a minute: brushes, not a fault.
	s := newMachineScript(t, Button{}, false)
	for i := range 60 {
		s.at(time.Duration(i)*time.Second, press)
		s.at(time.Duration(i)*time.Second+200*time.Millisecond, release)
	}
	if slices.Contains(s.got, "fault+chatter") || slices.Contains(s.got, "raise") {
		t.Fatalf("slow brushes: %q", s.got)
	}
	// And a morning of real presses, each held, never adds up to chatter either.
	s = newMachineScript(t, Button{HoldMS: 100}, false)
	for i := range 100 {
		at := time.Duration(i) * 150 * time.Millisecond
		s.at(at, press)
		s.at(at+120*time.Millisecond, release)
	}
	if slices.Contains(s.got, "fault+chatter") {
		t.Fatalf("held presses seen as chatter: %q", s.got)
	}
}

func TestMachineRepeatedLevelIsNoEdge(t *testing.T) {
	s := newMachineScript(t, Button{}, false)
	s.at(0, press)
	s.at(100*time.Millisecond, press) // the release in between was lost by the backend
	s.want("repeated press", "pressing+")
	s.at(3 * time.Second)
	s.want("held", "raise", "pressing-")
}

func TestMachineLostLine(t *testing.T) {
	s := newMachineScript(t, Button{}, false)
	s.at(0, press)
	s.record(s.m.lost())
	s.at(time.Hour)
	s.want("press voided by a line failure", "pressing+", "pressing-", "done")
	s.record(s.m.start(s.t0.Add(time.Hour), false))
	s.at(time.Hour+time.Second, press)
	s.at(time.Hour+4*time.Second, release)
	s.want("back", "pressing+", "raise", "pressing-")
}

func TestMachineTamper(t *testing.T) {
	s := newMachineScript(t, Button{Kind: KindTamper, HoldMS: 500}, false)
	s.at(0, press) // opened
	s.at(400*time.Millisecond, release)
	s.want("opened for 400 ms: a knock", "done")
	s.at(time.Second, press)
	s.at(time.Hour)
	s.want("opened and left open: one incident, no feedback, no stuck fault", "raise")
	s.at(time.Hour, release)
	s.at(time.Hour+time.Second, press)
	s.at(time.Hour + 2*time.Second)
	s.want("each opening", "raise")

	s = newMachineScript(t, Button{Kind: KindTamper, HoldMS: 500}, true)
	s.at(time.Second)
	s.want("open at start-up", "raise")
}

// --- The button driver on a simulated line, in fake time. ---

// buttonRig runs one button on a simulated line. Use it inside synctest.Test.
type buttonRig struct {
	line *gpiosim.Line
	b    *button

	mu        sync.Mutex
	incidents []mqtt.Incident
	pressing  []bool
	faults    map[string]string
	faultSets int // how often a fault was set, to catch a flood
	fail      error
}

func newButtonRig(t *testing.T, cfg Button, setup func(*gpiosim.Line)) *buttonRig {
	t.Helper()
	cfg = buttonCfg(t, cfg)
	chip := gpiosim.New("sim", 0)
	r := &buttonRig{line: chip.Line(17), faults: map[string]string{}}
	if setup != nil {
		setup(r.line)
	}
	pin, err := chip.OpenIn(17, gpio.WithPullUp, gpio.WithDebounce(cfg.Debounce()))
	if err != nil {
		t.Fatal(err)
	}
	r.start(t, cfg, pin)
	t.Cleanup(func() { chip.Close() })
	return r
}

func (r *buttonRig) start(t *testing.T, cfg Button, pin gpio.PinIn) {
	r.b = newButton(cfg, pin, discard)
	r.b.pressing = func(_ *button, on bool) {
		r.mu.Lock()
		r.pressing = append(r.pressing, on)
		r.mu.Unlock()
	}
	r.b.submit = func(in mqtt.Incident, _ string) (string, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail != nil {
			return "", r.fail
		}
		if in.ID == "" {
			in.ID = fmt.Sprintf("incident-%d", len(r.incidents)+1)
		}
		r.incidents = append(r.incidents, in)
		return in.ID, nil
	}
	r.b.fault = func(key, text string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if text == "" {
			delete(r.faults, key)
			return
		}
		r.faults[key] = text
		r.faultSets++
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.b.run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// count waits for the bubble to settle and returns the incidents raised so far.
func (r *buttonRig) count() int { return len(r.raised()) }

func (r *buttonRig) raised() []mqtt.Incident {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.incidents)
}

func (r *buttonRig) faultTexts() []string {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, v := range r.faults {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
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

func TestBrushShorterThanDebounceIsNotSeen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat"}, nil)
		r.line.Tap(t.Context(), 20*time.Millisecond)
		time.Sleep(time.Minute)
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.incidents) != 0 || len(r.pressing) != 0 {
			t.Fatalf("a 20 ms brush under a 30 ms debounce: incidents %v, pressing %v", r.incidents, r.pressing)
		}
	})
}

func TestLongPressRaisesExactlyOne(t *testing.T) {
	for _, hold := range []time.Duration{2100 * time.Millisecond, 20 * time.Second} {
		t.Run(hold.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newButtonRig(t, Button{Name: "darurat", Category: "fire"}, nil)
				start := time.Now()
				r.line.Press()
				time.Sleep(2029 * time.Millisecond) // debounce + hold - 1ms
				if n := r.count(); n != 0 {
					t.Fatalf("raised %d before the hold time", n)
				}
				time.Sleep(time.Millisecond)
				got := r.raised()
				if len(got) != 1 {
					t.Fatalf("raised %d at the hold time, want 1", len(got))
				}
				if in := got[0]; in.Source != mqtt.SourceButton || in.Button != "darurat" || in.Category != "fire" || in.Request != "" {
					t.Fatalf("incident %+v", in)
				}
				time.Sleep(hold - time.Since(start))
				r.line.Release()
				time.Sleep(time.Minute)
				if n := r.count(); n != 1 {
					t.Fatalf("raised %d for one press held %v, want 1", n, hold)
				}
				// The next press counts again (outside the cancel window or not, a long one).
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
		got := r.raised()
		if len(got) != 1 {
			t.Fatalf("%d incidents from one bouncy press", len(got))
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.pressing) != 2 {
			t.Fatalf("bounces seen as %d press transitions, want 2", len(r.pressing))
		}
		// The release's bounces came within the cancel window and must not have cancelled it.
		if got[0].Request != "" {
			t.Fatalf("bounce sent a request: %+v", got[0])
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

func TestDoublePressCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "kebakaran", Category: "fire"}, nil)
		r.line.Tap(t.Context(), 2500*time.Millisecond)
		time.Sleep(5 * time.Second)
		ch, stop := r.b.watch()
		defer stop()
		r.line.Tap(t.Context(), 300*time.Millisecond)
		time.Sleep(time.Second) // the release through the debounce
		got := r.raised()
		if len(got) != 2 {
			t.Fatalf("%d incidents, want the report and its cancel: %+v", len(got), got)
		}
		first, cancel := got[0], got[1]
		if cancel.Request != mqtt.RequestCancel || cancel.Target != first.ID || cancel.Source != mqtt.SourceButton ||
			cancel.Button != "kebakaran" || cancel.Category != "fire" || cancel.ID == "" {
			t.Fatalf("cancel %+v does not cancel %s", cancel, first.ID)
		}
		select {
		case o := <-ch:
			if o.Raised || o.CancelID != cancel.ID {
				t.Fatalf("outcome %+v, want the cancel's ID %s", o, cancel.ID)
			}
		default:
			t.Fatal("no outcome for the cancel press")
		}
		// Once cancelled, another short press does nothing; a long one is a new report.
		r.line.Tap(t.Context(), 300*time.Millisecond)
		time.Sleep(time.Second)
		if n := r.count(); n != 2 {
			t.Fatalf("third short press: %d incidents", n)
		}
		r.line.Tap(t.Context(), 2500*time.Millisecond)
		if got := r.raised(); len(got) != 3 || got[2].Request != "" {
			t.Fatalf("long press after a cancel: %+v", got)
		}
	})
}

func TestCancelWindowPassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat", CancelWindowMS: ms(10_000)}, nil)
		r.line.Tap(t.Context(), 2500*time.Millisecond)
		time.Sleep(10 * time.Second)
		r.line.Tap(t.Context(), 300*time.Millisecond)
		time.Sleep(time.Second)
		if got := r.raised(); len(got) != 1 {
			t.Fatalf("short press after the window: %+v", got)
		}
	})
}

func TestStuckButtonIsOneFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat"}, nil) // stuck after 2 min
		r.line.Press()
		time.Sleep(119 * time.Second)
		if f := r.faultTexts(); len(f) != 0 {
			t.Fatalf("fault before stuck_after: %q", f)
		}
		time.Sleep(10 * time.Minute)
		if f := r.faultTexts(); !slices.Equal(f, []string{"stuck button darurat"}) {
			t.Fatalf("faults %q, want the stuck button", f)
		}
		r.mu.Lock()
		sets, n := r.faultSets, len(r.incidents)
		r.mu.Unlock()
		if sets != 1 || n != 1 {
			t.Fatalf("ten minutes held: fault set %d times, %d incidents; want 1 and 1", sets, n)
		}
		r.line.Release()
		time.Sleep(time.Second)
		if f := r.faultTexts(); len(f) != 0 {
			t.Fatalf("fault not cleared on release: %q", f)
		}
		r.line.Tap(t.Context(), 3*time.Second)
		if n := r.count(); n != 2 {
			t.Fatalf("press after the stuck button was freed: %d incidents, want 2", n)
		}
	})
}

func TestChatterIsAFaultNotIncidents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat", HoldMS: 100, DebounceMS: 10}, nil)
		// A loose wire: contact for 40-60 ms at a time, for 10 s, then resting open.
		for i := range 100 {
			r.line.Press()
			time.Sleep(time.Duration(40+i%3*10) * time.Millisecond)
			r.line.Release()
			time.Sleep(time.Duration(60-i%3*10) * time.Millisecond)
		}
		if f := r.faultTexts(); !slices.Equal(f, []string{"button darurat chattering (loose wire?)"}) {
			t.Fatalf("faults %q, want chatter", f)
		}
		// While it chatters, a contact long enough to be a press raises nothing.
		r.line.Press()
		time.Sleep(500 * time.Millisecond)
		r.line.Release()
		if n := r.count(); n != 0 {
			t.Fatalf("%d incidents from a chattering input", n)
		}
		time.Sleep(10 * time.Second)
		if f := r.faultTexts(); len(f) != 0 {
			t.Fatalf("chatter not cleared after quiet: %q", f)
		}
		r.line.Tap(t.Context(), 200*time.Millisecond)
		if n := r.count(); n != 1 {
			t.Fatalf("press after chatter: %d incidents, want 1", n)
		}
	})
}

func TestTamperSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The shut enclosure holds the switch closed.
		r := newButtonRig(t, Button{Name: "pintu", Kind: KindTamper, Category: "tamper", HoldMS: 500}, func(l *gpiosim.Line) { l.Press() })
		time.Sleep(time.Minute)
		if n := r.count(); n != 0 {
			t.Fatalf("shut enclosure raised %d", n)
		}
		r.line.Release() // opened
		time.Sleep(time.Hour)
		got := r.raised()
		if len(got) != 1 || got[0].Source != mqtt.SourceTamper || got[0].Button != "pintu" || got[0].Category != "tamper" {
			t.Fatalf("opening raised %+v, want one tamper incident", got)
		}
		r.mu.Lock()
		if len(r.pressing) != 0 || r.faultSets != 0 {
			t.Fatalf("tamper showed pressing %v / faults %v", r.pressing, r.faults)
		}
		r.mu.Unlock()
		r.line.Press() // shut
		time.Sleep(time.Second)
		r.line.Release()
		time.Sleep(time.Second)
		if n := r.count(); n != 2 {
			t.Fatalf("second opening: %d incidents, want 2", n)
		}
	})
}

func TestTamperOpenAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "pintu", Kind: KindTamper}, nil) // the switch reads open
		time.Sleep(time.Minute)
		if got := r.raised(); len(got) != 1 || got[0].Source != mqtt.SourceTamper {
			t.Fatalf("open at start-up: %+v, want one tamper incident", got)
		}
	})
}

func TestPressOutcomes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, Button{Name: "darurat", HoldMS: 100, DebounceMS: 10, CancelWindowMS: ms(0)}, nil)
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
		if o := next(200 * time.Millisecond); !o.Raised || o.IncidentID != "incident-1" {
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

// flakyPin is an input whose WaitForEdge fails while err is set, as a line on a chip that has
// vanished does, and otherwise returns the edges sent on edges.
type flakyPin struct {
	edges chan gpio.Event

	mu    sync.Mutex
	err   error
	level gpio.Level
	calls int
}

func (p *flakyPin) Name() string { return "GPIO17" }

func (p *flakyPin) Read() (gpio.Level, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level, nil
}

func (p *flakyPin) WaitForEdge(ctx context.Context) (gpio.Event, error) {
	p.mu.Lock()
	p.calls++
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return gpio.Event{}, err
	}
	select {
	case ev := <-p.edges:
		p.mu.Lock()
		p.level = ev.Level
		p.mu.Unlock()
		return ev, nil
	case <-ctx.Done():
		return gpio.Event{}, ctx.Err()
	}
}

func (p *flakyPin) Close() error { return nil }

func TestLineFailureIsAFaultWithBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := &flakyPin{edges: make(chan gpio.Event), level: gpio.High, err: errors.New("gpiochip0: no such device")}
		r := &buttonRig{faults: map[string]string{}}
		r.start(t, buttonCfg(t, Button{Name: "darurat"}), pin)
		time.Sleep(10 * time.Minute)
		f := r.faultTexts()
		if len(f) != 1 || !strings.Contains(f[0], "button darurat") || !strings.Contains(f[0], "GPIO17") || !strings.Contains(f[0], "no such device") {
			t.Fatalf("faults %q, want one naming the button, its line and the error", f)
		}
		pin.mu.Lock()
		calls := pin.calls
		pin.mu.Unlock()
		// 100 ms doubling to 30 s: about 30 attempts in ten minutes. A hot loop makes millions.
		if calls > 50 {
			t.Fatalf("%d attempts in ten minutes: no back-off", calls)
		}
		r.mu.Lock()
		if r.faultSets != 1 {
			t.Fatalf("fault set %d times, want once", r.faultSets)
		}
		r.mu.Unlock()

		// The line answers again, with the button pressed: a fresh start, so it counts once
		// released and pressed again.
		pin.mu.Lock()
		pin.err = nil
		pin.mu.Unlock()
		pin.edges <- gpio.Event{Level: gpio.Low}
		time.Sleep(time.Minute)
		if f := r.faultTexts(); len(f) != 0 {
			t.Fatalf("fault not cleared when the line answers: %q", f)
		}
		if n := r.count(); n != 0 {
			t.Fatalf("a press under way when the line came back raised %d", n)
		}
		pin.edges <- gpio.Event{Level: gpio.High}
		pin.edges <- gpio.Event{Level: gpio.Low}
		time.Sleep(3 * time.Second)
		pin.edges <- gpio.Event{Level: gpio.High}
		if n := r.count(); n != 1 {
			t.Fatalf("press after recovery: %d incidents, want 1", n)
		}
	})
}

func TestInputConfig(t *testing.T) {
	c, err := parseConfig([]byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Buttons[0]
	if b.Kind != KindButton || b.CancelWindow() != 30*time.Second || b.StuckAfter() != 2*time.Minute ||
		b.ChatterEdges != 20 || b.ChatterWindow() != 2*time.Second || b.ChatterQuiet() != 5*time.Second {
		t.Errorf("button defaults not applied: %+v", b)
	}
	if l := c.LEDs[0]; l.Kind != KindLED || l.Patterns[StatePressing] != PatternSolid {
		t.Errorf("LED defaults not applied: %+v", l)
	}

	withButton := func(extra string) string {
		return strings.Replace(minimalYAML, "    pin: 17\n", "    pin: 17\n"+extra, 1)
	}
	c, err = parseConfig([]byte(withButton("    cancel_window_ms: 0\n    kind: tamper\n")))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Buttons[0]; b.CancelWindow() != 0 || b.CancelWindowMS == nil || b.Kind != KindTamper {
		t.Errorf("cancel_window_ms: 0 must turn cancelling off, not mean the default: %+v", b)
	}

	buzzer := minimalYAML + "  - name: buzzer\n    pin: 18\n    kind: buzzer\n    patterns: {fault: heartbeat}\n"
	c, err = parseConfig([]byte(buzzer))
	if err != nil {
		t.Fatal(err)
	}
	p := c.LEDs[1].Patterns
	if p[StatePressing] != PatternChirp || p[StateReceived] != PatternChirp || p[StateIdle] != PatternOff ||
		p[StatePending] != PatternOff || p[StateFault] != PatternHeartbeat {
		t.Errorf("buzzer patterns %v: want chirps on pressing and received, the override, silence otherwise", p)
	}

	for _, tc := range []struct{ yaml, want string }{
		{withButton("    kind: doorbell\n"), `buttons[0].kind "doorbell" is not "button" or "tamper"`},
		{withButton("    cancel_window_ms: -1\n"), "buttons[0].cancel_window_ms must be between 0 (off) and 600000, not -1"},
		{withButton("    stuck_after_ms: 1500\n"), "buttons[0].stuck_after_ms must be above hold_ms (2000)"},
		{withButton("    chatter_edges: 2\n"), "buttons[0].chatter_edges must be between 4 and 1000, not 2"},
		{withButton("    chatter_window_ms: -5\n"), "buttons[0].chatter_window_ms must be between 1 and 600000, not -5"},
		{withButton("    chatter_quiet_ms: 9000000\n"), "buttons[0].chatter_quiet_ms must be between 1 and 600000"},
		{strings.Replace(minimalYAML, "    pin: 22\n", "    pin: 22\n    kind: siren\n", 1), `leds[0].kind "siren" is not "led" or "buzzer"`},
		{strings.Replace(buzzer, "fault: heartbeat", "fault: beep", 1), `leds[1].patterns.fault: unknown pattern "beep"`},
	} {
		if _, err := parseConfig([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to say %q", err, tc.want)
		}
	}
}

// TestDaemonCancelAndStuck runs the button semantics through a whole daemon and an MQTT broker:
// the cancel reaches the hub naming the report, the LEDs drop the cancelled report, and a stuck
// button is one fault in the status and in a heartbeat sent at once.
func TestDaemonCancelAndStuck(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	cfg := testConfig(t, b.URL())
	cfg.Buttons[0].StuckAfterMS = 1000
	// Wide margins: a loaded machine delays the simulated debounce by tens of milliseconds.
	cfg.Buttons[1].HoldMS = 1000
	d := startDaemon(t, cfg)
	eventually(t, "connected and subscribed", func() bool { return d.Status().Connected && b.subscribed() })

	first, err := d.SimPress(t.Context(), "kebakaran", 1500*time.Millisecond)
	if err != nil || !first.Raised {
		t.Fatalf("first press: %+v %v", first, err)
	}
	id := first.IncidentID
	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "LED received", func() bool { return ledState(d) == StateReceived })

	res, err := d.SimPress(t.Context(), "kebakaran", 300*time.Millisecond)
	if err != nil || res.Raised || res.CancelID == "" {
		t.Fatalf("short second press: %+v %v; want a cancel", res, err)
	}
	got := b.waitIncidents(2)
	if c := got[1]; c.ID != res.CancelID || c.Request != mqtt.RequestCancel || c.Target != id || c.Button != "kebakaran" || c.Category != "fire" {
		t.Fatalf("published cancel %+v, want one for %s", c, id)
	}
	eventually(t, "LED back at rest", func() bool { return ledState(d) == StateIdle })
	b.ack(res.CancelID, mqtt.AckReceived, "")
	eventually(t, "cancel acked", func() bool {
		st := d.Status()
		return len(st.Incidents) == 2 && st.Incidents[0].ID == res.CancelID && st.Incidents[0].State == "received"
	})
	d.mu.Lock()
	state := deriveState(d.displayLocked(true), d.now(), d.cfg.LEDDisplayTime)
	d.mu.Unlock()
	if state != StateIdle {
		t.Fatalf("after the hub acked the cancel the LEDs would show %s, want idle", state)
	}

	line := d.sim.Line(cfg.Buttons[0].Pin)
	line.Press()
	eventually(t, "stuck fault", func() bool { return d.Status().Fault == "stuck button darurat" && ledState(d) == StateFault })
	eventually(t, "heartbeat with the fault", func() bool {
		for _, m := range b.messages(mqtt.KindHeartbeat) {
			if hb, err := mqtt.DecodeHeartbeat(testDevice, m.Payload); err == nil && hb.Fault == "stuck button darurat" {
				return true
			}
		}
		return false
	})
	line.Release()
	eventually(t, "fault cleared", func() bool { return d.Status().Fault == "" })
	n := 0
	for _, in := range b.incidents() {
		if in.Button == "darurat" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a stuck button published %d incidents, want 1", n)
	}
}
