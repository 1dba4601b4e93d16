package periphgpio_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/periphgpio"
)

// fakePin is a periph.io pin with a push-button to ground on it, like gpiosim's lines.
type fakePin struct {
	name    string
	noEdges bool // In with an edge fails, as on pins without edge detection
	silent  bool // edges are never signalled, as when periph.io misses them

	mu      sync.Mutex
	pressed bool
	pull    pgpio.Pull
	edge    pgpio.Edge
	driven  []pgpio.Level
	edgeCh  chan struct{}
}

func newFake(name string) *fakePin { return &fakePin{name: name, edgeCh: make(chan struct{}, 1)} }

func (f *fakePin) String() string   { return f.name }
func (f *fakePin) Halt() error      { return nil }
func (f *fakePin) Name() string     { return f.name }
func (f *fakePin) Number() int      { return -1 }
func (f *fakePin) Function() string { return "" }
func (f *fakePin) DefaultPull() pgpio.Pull {
	return pgpio.PullDown
}
func (f *fakePin) PWM(pgpio.Duty, physic.Frequency) error { return errors.New("no PWM") }

func (f *fakePin) Pull() pgpio.Pull {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pull
}

func (f *fakePin) In(pull pgpio.Pull, edge pgpio.Edge) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if edge != pgpio.NoEdge && f.noEdges {
		return errors.New("fake: no edge detection on this pin")
	}
	f.pull, f.edge = pull, edge
	return nil
}

func (f *fakePin) Read() pgpio.Level {
	f.mu.Lock()
	defer f.mu.Unlock()
	return pgpio.Level(!f.pressed && f.pull == pgpio.PullUp)
}

func (f *fakePin) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.edgeCh:
		return true
	case <-t.C:
		return false
	}
}

func (f *fakePin) Out(l pgpio.Level) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.driven = append(f.driven, l)
	return nil
}

func (f *fakePin) press(down bool) {
	f.mu.Lock()
	f.pressed = down
	signal := f.edge != pgpio.NoEdge && !f.silent
	f.mu.Unlock()
	if signal {
		select {
		case f.edgeCh <- struct{}{}:
		default:
		}
	}
}

func (f *fakePin) lastDriven() (pgpio.Level, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.driven) == 0 {
		return pgpio.Low, 0
	}
	return f.driven[len(f.driven)-1], len(f.driven)
}

// board is a registry of fake pins with periph.io's aliasing: P1_11 is GPIO17.
type board struct {
	pins  map[string]*fakePin
	asked []string
}

func newBoard(pins ...*fakePin) *board {
	b := &board{pins: map[string]*fakePin{}}
	for _, p := range pins {
		b.pins[p.name] = p
	}
	return b
}

func (b *board) lookup(name string) pgpio.PinIO {
	b.asked = append(b.asked, name)
	if name == "P1_11" {
		name = "GPIO17"
	}
	if p, ok := b.pins[name]; ok {
		return p
	}
	return nil
}

func queued(t *testing.T, p gpio.PinIn) (gpio.Event, bool) {
	t.Helper()
	synctest.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ev, err := p.WaitForEdge(ctx)
	return ev, err == nil
}

func mustRead(t *testing.T, p gpio.PinIn) gpio.Level {
	t.Helper()
	v, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestButtonEdges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noEdges   bool
		missEdges bool
	}{
		{name: "edges"},
		{name: "polled", noEdges: true},
		{name: "missed edges", missEdges: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Made in the bubble, so that a wait on its channel counts as blocked.
				pin := newFake("GPIO17")
				pin.noEdges, pin.silent = tc.noEdges, tc.missEdges
				chip := periphgpio.New("test board", newBoard(pin).lookup)
				defer chip.Close()
				p, err := chip.OpenIn(17, gpio.WithPullUp)
				if err != nil {
					t.Fatal(err)
				}
				if got := mustRead(t, p); got != gpio.High {
					t.Fatalf("released button reads %s", got)
				}
				if ev, ok := queued(t, p); ok {
					t.Fatalf("edge to %s before any press", ev.Level)
				}
				pressedAt := time.Now()
				pin.press(true)
				// Wake-ups are bounded by the idle check: a missed edge is found by then.
				time.Sleep(time.Second)
				ev, ok := queued(t, p)
				if !ok || ev.Level != gpio.Low {
					t.Fatalf("press: edge %v %v, want one to Low", ev, ok)
				}
				if ev.Time.Before(pressedAt) || ev.Time.After(pressedAt.Add(200*time.Millisecond)) {
					t.Fatalf("press at %v reported at %v", pressedAt, ev.Time)
				}
				if got := mustRead(t, p); got != gpio.Low {
					t.Fatalf("pressed button reads %s", got)
				}
				pin.press(false)
				time.Sleep(time.Second)
				if ev, ok := queued(t, p); !ok || ev.Level != gpio.High {
					t.Fatalf("release: edge %v %v, want one to High", ev, ok)
				}
				if ev, ok := queued(t, p); ok {
					t.Fatalf("extra edge to %s", ev.Level)
				}
			})
		})
	}
}

func TestDebounceSwallowsBounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newFake("GPIO27")
		chip := periphgpio.New("", newBoard(pin).lookup)
		defer chip.Close()
		p, err := chip.OpenIn(27, gpio.WithPullUp, gpio.WithDebounce(30*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for _, down := range []bool{true, false, true, false} {
			pin.press(down)
			time.Sleep(2 * time.Millisecond)
		}
		pin.press(true)
		settled := time.Now()
		time.Sleep(20 * time.Millisecond)
		if ev, ok := queued(t, p); ok {
			t.Fatalf("edge to %s before the contact was stable for the debounce period", ev.Level)
		}
		time.Sleep(200 * time.Millisecond)
		ev, ok := queued(t, p)
		if !ok || ev.Level != gpio.Low {
			t.Fatalf("settled press: %v %v, want an edge to Low", ev, ok)
		}
		if d := ev.Time.Sub(settled); d < 30*time.Millisecond || d > 50*time.Millisecond {
			t.Fatalf("reported %v after the contact settled, want the debounce period (30ms) and a little", d)
		}
		if ev, ok := queued(t, p); ok {
			t.Fatalf("the bounce leaked: extra edge to %s", ev.Level)
		}
	})
}

func TestEdgeSelectionAndActiveLow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newFake("GPIO22")
		chip := periphgpio.New("", newBoard(pin).lookup)
		defer chip.Close()
		// Active-low: the pressed button (wire Low) reads High, and only that edge is wanted.
		p, err := chip.OpenIn(22, gpio.WithPullUp, gpio.WithActiveLow, gpio.WithRisingEdge)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, p); got != gpio.Low {
			t.Fatalf("released active-low button reads %s", got)
		}
		for _, down := range []bool{true, false, true} {
			pin.press(down)
			time.Sleep(500 * time.Millisecond)
		}
		for range 2 {
			if ev, ok := queued(t, p); !ok || ev.Level != gpio.High {
				t.Fatalf("press of an active-low button: %v %v, want an edge to High", ev, ok)
			}
		}
		if ev, ok := queued(t, p); ok {
			t.Fatalf("release reported (edge to %s) though only rising edges were asked for", ev.Level)
		}
	})
}

func TestNamesAliasesAndBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBoard(newFake("GPIO17"), newFake("GPIO23"))
		chip := periphgpio.New("Raspberry Pi 3 Model B Rev 1.2", b.lookup)
		defer chip.Close()
		in, err := chip.OpenIn(17, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		if b.asked[0] != "GPIO17" || in.Name() != "GPIO17" {
			t.Fatalf("offset 17 looked up as %q, named %q", b.asked[0], in.Name())
		}
		// The header pin's alias is the same pin: busy.
		_, err = chip.OpenOutByName("P1_11")
		var le *gpio.LineError
		if !errors.Is(err, gpio.ErrBusy) || !errors.As(err, &le) || le.Chip != periphgpio.ChipName || !strings.Contains(err.Error(), "GPIO17") {
			t.Fatalf("alias of an open pin: %v, want ErrBusy naming GPIO17", err)
		}
		for _, open := range []func() error{
			func() error { _, err := chip.OpenInByName("GPIO99"); return err },
			func() error { _, err := chip.OpenOut(40); return err },
			func() error { _, err := chip.OpenIn(-1); return err },
			func() error { _, err := chip.OpenOutByName(""); return err },
		} {
			if err := open(); !errors.Is(err, gpio.ErrNoLine) {
				t.Errorf("missing pin: %v, want ErrNoLine", err)
			}
		}
		if _, err := chip.OpenIn(23, gpio.WithDebounce(-time.Second)); err == nil {
			t.Error("negative debounce accepted")
		}
		// Closing a pin frees it.
		in.Close()
		again, err := chip.OpenInByName("P1_11")
		if err != nil {
			t.Fatalf("reopen after Close: %v", err)
		}
		again.Close()
		if chip.Board() != "Raspberry Pi 3 Model B Rev 1.2" {
			t.Fatalf("board %q", chip.Board())
		}
	})
}

func TestOutputsAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		led, rgb := newFake("GPIO23"), newFake("GPIO24")
		chip := periphgpio.New("", newBoard(led, rgb).lookup)
		out, err := chip.OpenOut(23, gpio.WithInitial(gpio.High))
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := led.lastDriven(); l != pgpio.High {
			t.Fatalf("initial High drove %s", l)
		}
		// A common-anode LED: on is the wire Low.
		anode, err := chip.OpenOut(24, gpio.WithActiveLow)
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := rgb.lastDriven(); l != pgpio.High {
			t.Fatalf("active-low output initially off drove the wire %s", l)
		}
		if err := anode.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		if l, _ := rgb.lastDriven(); l != pgpio.Low {
			t.Fatalf("active-low output on drove the wire %s", l)
		}
		in, err := chip.OpenIn(17)
		if err == nil {
			in.Close()
			t.Fatal("pin the board does not have opened")
		}
		ctxIn, err := chip.OpenInByName("GPIO23")
		if err == nil {
			ctxIn.Close()
			t.Fatal("output opened again as input")
		}

		if err := chip.Close(); err != nil {
			t.Fatal(err)
		}
		if l, _ := led.lastDriven(); l != pgpio.Low {
			t.Fatalf("after Close the LED is driven %s, want Low", l)
		}
		if l, _ := rgb.lastDriven(); l != pgpio.High {
			t.Fatalf("after Close the active-low LED's wire is %s, want High (off)", l)
		}
		if err := out.Out(gpio.High); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("Out after Close: %v", err)
		}
		if _, err := chip.OpenOut(23); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("open after Close: %v", err)
		}
	})
}

func TestWaitEndsWithContextAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := periphgpio.New("", newBoard(newFake("GPIO5")).lookup)
		p, err := chip.OpenIn(5, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := p.WaitForEdge(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait past its deadline: %v", err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := p.WaitForEdge(context.Background())
			errc <- err
		}()
		synctest.Wait()
		chip.Close()
		if err := <-errc; !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("wait during Close: %v", err)
		}
		if _, err := p.Read(); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
	})
}

// TestOpenWithoutGPIO: on a machine where periph.io finds no pin (this CI machine), Open says so
// and why, instead of handing out a chip whose every pin is missing.
func TestOpenWithoutGPIO(t *testing.T) {
	chip, err := periphgpio.Open()
	if err == nil {
		defer chip.Close()
		if len(gpioreg.All()) == 0 {
			t.Fatal("Open succeeded with no pins")
		}
		t.Skipf("this machine has GPIO pins (%s); nothing to check", chip.Board())
	}
	if !errors.Is(err, gpio.ErrNoChip) || !strings.Contains(err.Error(), "found no GPIO pins") {
		t.Fatalf("err = %v, want ErrNoChip saying no pins were found", err)
	}
}
