package periphgpio

import (
	"context"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/kentongan/kentongan/drivers/gpio"
)

type inPin struct {
	chip   *Chip
	pin    pgpio.PinIO
	offset int
	cfg    gpio.InConfig
	edges  bool // false: the pin has no edge detection and is polled

	events  chan gpio.Event
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when run returns

	// Owned by run after Open returns.
	candidate gpio.Level // the level seen last
	since     time.Time  // when candidate was first seen

	mu       sync.Mutex
	reported gpio.Level // guarded by mu
	closed   bool
}

func (p *inPin) Name() string { return p.pin.Name() }

func (p *inPin) lineError(op string, err error) error {
	return &gpio.LineError{Op: op, Chip: ChipName, Line: p.pin.Name(), Offset: p.offset, Err: err}
}

// level reads the pin, inverted for an active-low input.
func (p *inPin) level() gpio.Level {
	return gpio.Level(p.pin.Read() == pgpio.High) != gpio.Level(p.cfg.ActiveLow)
}

// run watches the pin until Close. Every wake-up, by an edge or by the clock, compares levels,
// so an edge periph.io merged or missed still shows up as the change of level it caused.
func (p *inPin) run() {
	defer close(p.stopped)
	for {
		wait := idleCheck
		if !p.edges {
			wait = pollInterval
		}
		if p.cfg.Debounce > 0 && p.candidate != p.reportedLevel() {
			wait = min(wait, max(p.cfg.Debounce/debounceSteps, time.Millisecond))
		}
		if p.edges {
			// periph.io's WaitForEdge cannot be interrupted; Close waits for it to time out.
			p.pin.WaitForEdge(wait)
		} else {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
			}
		}
		select {
		case <-p.done:
			return
		default:
		}
		p.sense(time.Now())
	}
}

func (p *inPin) reportedLevel() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reported
}

// sense looks at the level and reports it once it has been stable for the debounce period.
func (p *inPin) sense(now time.Time) {
	v := p.level()
	if v != p.candidate {
		p.candidate, p.since = v, now
	}
	if now.Sub(p.since) < p.cfg.Debounce {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v == p.reported || p.closed {
		return
	}
	p.reported = v
	if !p.cfg.Edge.Matches(v) {
		return
	}
	ev := gpio.Event{Level: v, Time: now}
	select {
	case p.events <- ev:
	default:
		// Full: drop the oldest and keep the newest, which matches the level a reader finds.
		select {
		case <-p.events:
		default:
		}
		p.events <- ev
	}
}

func (p *inPin) Read() (gpio.Level, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return gpio.Low, p.lineError("read", gpio.ErrClosed)
	}
	return p.reported, nil
}

func (p *inPin) WaitForEdge(ctx context.Context) (gpio.Event, error) {
	select {
	case ev := <-p.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-p.events:
		return ev, nil
	case <-p.done:
		return gpio.Event{}, p.lineError("wait for edge", gpio.ErrClosed)
	case <-ctx.Done():
		return gpio.Event{}, ctx.Err()
	}
}

func (p *inPin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	<-p.stopped
	if p.edges {
		// Stop the interrupts; the pull stays, so the line does not float.
		p.pin.In(pull(p.cfg.Pull), pgpio.NoEdge)
	}
	p.chip.forget(p.pin.Name())
	return nil
}

type outPin struct {
	chip      *Chip
	pin       pgpio.PinIO
	offset    int
	activeLow bool

	mu     sync.Mutex
	closed bool
}

func (p *outPin) Name() string { return p.pin.Name() }

func (p *outPin) wire(l gpio.Level) pgpio.Level {
	return pgpio.Level(l != gpio.Level(p.activeLow))
}

func (p *outPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	op := "set " + l.String()
	if p.closed {
		return &gpio.LineError{Op: op, Chip: ChipName, Line: p.pin.Name(), Offset: p.offset, Err: gpio.ErrClosed}
	}
	if err := p.pin.Out(p.wire(l)); err != nil {
		return &gpio.LineError{Op: op, Chip: ChipName, Line: p.pin.Name(), Offset: p.offset, Err: err}
	}
	return nil
}

// Close drives the pin Low (inactive): periph.io cannot release it, and an LED left lit would
// tell residents something that is no longer true.
func (p *outPin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.pin.Out(p.wire(gpio.Low))
	p.mu.Unlock()
	p.chip.forget(p.pin.Name())
	if err != nil {
		return &gpio.LineError{Op: "set Low before release", Chip: ChipName, Line: p.pin.Name(), Offset: p.offset, Err: err}
	}
	return nil
}
