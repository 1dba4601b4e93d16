package gpiosim_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
)

// nextEdge returns the next queued edge, or fails if none is queued once every goroutine in the
// bubble has settled.
func nextEdge(t *testing.T, p gpio.PinIn) gpio.Event {
	t.Helper()
	synctest.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ev, err := p.WaitForEdge(ctx)
	if err != nil {
		t.Fatalf("no edge queued: %v", err)
	}
	return ev
}

func noEdge(t *testing.T, p gpio.PinIn) {
	t.Helper()
	synctest.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if ev, err := p.WaitForEdge(ctx); err == nil {
		t.Fatalf("unexpected edge to %s", ev.Level)
	}
}

func mustRead(t *testing.T, p gpio.PinIn) gpio.Level {
	t.Helper()
	v, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestButtonWithPullUpIsActiveLow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(17, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, p); got != gpio.High {
			t.Fatalf("released button with pull-up reads %s, want High", got)
		}
		noEdge(t, p)

		line := chip.Line(17)
		line.Press()
		if ev := nextEdge(t, p); ev.Level != gpio.Low {
			t.Fatalf("press edge to %s, want Low", ev.Level)
		}
		if got := mustRead(t, p); got != gpio.Low {
			t.Fatalf("pressed button reads %s, want Low", got)
		}
		line.Press() // already pressed: no new edge
		noEdge(t, p)
		line.Release()
		if ev := nextEdge(t, p); ev.Level != gpio.High {
			t.Fatalf("release edge to %s, want High", ev.Level)
		}
		if p.Name() != "GPIO17" {
			t.Fatalf("name %q", p.Name())
		}
	})
}

func TestFloatingButtonNeverPresses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(4) // wired to ground, but the pull-up was forgotten
		if err != nil {
			t.Fatal(err)
		}
		chip.Line(4).Press()
		noEdge(t, p)
		if got := mustRead(t, p); got != gpio.Low {
			t.Fatalf("floating line reads %s, want Low", got)
		}
	})
}

func TestDebounceSwallowsBounces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(5, gpio.WithPullUp, gpio.WithDebounce(30*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		line := chip.Line(5)

		// Contact bounce on press: several make/break within a few ms, then closed.
		for range 5 {
			line.Press()
			time.Sleep(2 * time.Millisecond)
			line.Release()
			time.Sleep(2 * time.Millisecond)
		}
		line.Press()
		time.Sleep(29 * time.Millisecond)
		noEdge(t, p)
		if got := mustRead(t, p); got != gpio.High {
			t.Fatalf("level reported before stable: %s", got)
		}
		time.Sleep(2 * time.Millisecond)
		if ev := nextEdge(t, p); ev.Level != gpio.Low {
			t.Fatalf("edge to %s, want Low", ev.Level)
		}
		noEdge(t, p)

		// A glitch shorter than the period is never reported.
		line.Release()
		time.Sleep(10 * time.Millisecond)
		line.Press()
		time.Sleep(100 * time.Millisecond)
		noEdge(t, p)

		line.Release()
		time.Sleep(31 * time.Millisecond)
		if ev := nextEdge(t, p); ev.Level != gpio.High {
			t.Fatalf("edge to %s, want High", ev.Level)
		}
	})
}

func TestEdgeSelection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(6, gpio.WithPullUp, gpio.WithFallingEdge)
		if err != nil {
			t.Fatal(err)
		}
		line := chip.Line(6)
		line.Press()
		line.Release()
		line.Press()
		line.Release()
		for range 2 {
			if ev := nextEdge(t, p); ev.Level != gpio.Low {
				t.Fatalf("falling-edge pin reported edge to %s", ev.Level)
			}
		}
		noEdge(t, p)
		if got := mustRead(t, p); got != gpio.High {
			t.Fatalf("Read %s, want High: edge selection must not affect the level", got)
		}
	})
}

func TestWaitForEdgeBlocksUntilEdgeOrContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(7, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan gpio.Event, 1)
		go func() {
			ev, err := p.WaitForEdge(t.Context())
			if err == nil {
				got <- ev
			}
			close(got)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("WaitForEdge returned without an edge")
		default:
		}
		chip.Line(7).Press()
		if ev, ok := <-got; !ok || ev.Level != gpio.Low {
			t.Fatalf("got %v %v, want edge to Low", ev, ok)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := p.WaitForEdge(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want deadline exceeded", err)
		}
	})
}

func TestClosedPins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		in, err := chip.OpenIn(8, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		out, err := chip.OpenOut(9)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := in.WaitForEdge(context.Background())
			errc <- err
		}()
		synctest.Wait()
		if err := in.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("blocked WaitForEdge returned %v, want ErrClosed", err)
		}
		if _, err := in.Read(); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
		// The line is free again.
		in2, err := chip.OpenIn(8, gpio.WithPullUp)
		if err != nil {
			t.Fatalf("reopen released line: %v", err)
		}
		if err := chip.Close(); err != nil {
			t.Fatal(err)
		}
		if err := out.Out(gpio.High); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("Out after chip Close: %v", err)
		}
		if _, err := in2.WaitForEdge(context.Background()); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("WaitForEdge after chip Close: %v", err)
		}
		if _, err := chip.OpenIn(10); !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("OpenIn after chip Close: %v", err)
		}
	})
}

func TestLineRequests(t *testing.T) {
	chip := gpiosim.New("sim", 28)
	if _, err := chip.OpenIn(3); err != nil {
		t.Fatal(err)
	}
	if _, err := chip.OpenIn(3); !errors.Is(err, gpio.ErrBusy) {
		t.Fatalf("second input request: %v, want ErrBusy", err)
	}
	if _, err := chip.OpenOut(3); !errors.Is(err, gpio.ErrBusy) {
		t.Fatalf("output request on input line: %v, want ErrBusy", err)
	}
	if _, err := chip.OpenOut(28); !errors.Is(err, gpio.ErrNoLine) {
		t.Fatalf("line 28 of 28: %v, want ErrNoLine", err)
	}
	if _, err := chip.OpenIn(-1); !errors.Is(err, gpio.ErrNoLine) {
		t.Fatalf("line -1: %v, want ErrNoLine", err)
	}
}

func TestOutputRecordsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		line := chip.Line(12)
		changed := line.Changed()
		out, err := chip.OpenOut(12, gpio.WithInitial(gpio.High))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		default:
			t.Fatal("requesting the output did not signal a change")
		}
		if line.Level() != gpio.High {
			t.Fatal("initial level not applied")
		}
		changed = line.Changed()
		if err := out.Out(gpio.High); err != nil { // no change
			t.Fatal(err)
		}
		select {
		case <-changed:
			t.Fatal("Out to the same level signalled a change")
		default:
		}
		time.Sleep(100 * time.Millisecond)
		if err := out.Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
		<-changed
		h := line.History()
		if len(h) != 2 || h[0].Level != gpio.High || h[1].Level != gpio.Low {
			t.Fatalf("history %v, want [High Low]", h)
		}
		if d := h[1].Time.Sub(h[0].Time); d != 100*time.Millisecond {
			t.Fatalf("history times %v apart, want 100ms", d)
		}
		// Pressing a button wired to an output line does not change what it drives.
		line.Press()
		if line.Level() != gpio.Low {
			t.Fatal("switch overrode an output")
		}
	})
}

func TestTapHoldsThenReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(13, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := chip.Line(13).Tap(t.Context(), 2500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		down, up := nextEdge(t, p), nextEdge(t, p)
		if down.Level != gpio.Low || up.Level != gpio.High {
			t.Fatalf("edges %s then %s", down.Level, up.Level)
		}
		if d := up.Time.Sub(down.Time); d != 2500*time.Millisecond {
			t.Fatalf("held %v, want 2.5s", d)
		}
		if !down.Time.Equal(start) {
			t.Fatal("press edge not at the start of the tap")
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := chip.Line(13).Tap(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled tap: %v", err)
		}
		if mustRead(t, p) != gpio.High {
			t.Fatal("cancelled tap left the button pressed")
		}
	})
}

func TestFullEventBufferKeepsNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := gpiosim.New("sim", 0)
		p, err := chip.OpenIn(14, gpio.WithPullUp)
		if err != nil {
			t.Fatal(err)
		}
		line := chip.Line(14)
		for range 100 {
			line.Press()
			time.Sleep(time.Millisecond)
			line.Release()
			time.Sleep(time.Millisecond)
		}
		line.Press()
		var last gpio.Event
		n := 0
		for {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			ev, err := p.WaitForEdge(ctx)
			if err != nil {
				break
			}
			last = ev
			n++
		}
		if n == 0 || n > 64 {
			t.Fatalf("%d queued edges, want 1..64", n)
		}
		if last.Level != gpio.Low || !last.Time.Equal(time.Now()) {
			t.Fatalf("newest edge %v lost", last)
		}
	})
}
