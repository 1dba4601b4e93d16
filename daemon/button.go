package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
)

// pressOutcome is how one press ended.
type pressOutcome struct {
	Raised     bool
	IncidentID string
	Err        error // the incident could not be stored
}

// button turns the edges of one input into at most one incident per press.
type button struct {
	cfg    Button
	pin    gpio.PinIn
	active gpio.Level // the level while pressed: Low for a switch to ground with pull-up
	log    *slog.Logger

	// pressing is told when a press starts (true) and when it stops counting (false).
	pressing func(b *button, on bool)
	// raise stores the incident for a press held long enough.
	raise func(b *button) (id string, err error)

	pressMu sync.Mutex // serialises simulated presses of this button

	mu      sync.Mutex
	waiters map[chan pressOutcome]struct{}
	down    bool          // between a press edge and the release edge the logic has seen
	idle    chan struct{} // closed when down becomes false
}

func newButton(cfg Button, pin gpio.PinIn, log *slog.Logger) *button {
	idle := make(chan struct{})
	close(idle)
	return &button{cfg: cfg, pin: pin, active: gpio.Low, log: log.With("button", cfg.Name),
		waiters: make(map[chan pressOutcome]struct{}), idle: idle}
}

func (b *button) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if down == b.down {
		return
	}
	b.down = down
	if down {
		b.idle = make(chan struct{})
	} else {
		close(b.idle)
	}
}

// released returns a channel closed once the logic has seen the current press end, so that a
// simulated press does not start before the last one's release is through the debounce.
func (b *button) released() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.idle
}

// watch returns a channel that receives the outcome of the next press, and a func to stop
// watching.
func (b *button) watch() (<-chan pressOutcome, func()) {
	ch := make(chan pressOutcome, 1)
	b.mu.Lock()
	b.waiters[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.waiters, ch)
		b.mu.Unlock()
	}
}

func (b *button) report(o pressOutcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.waiters {
		select {
		case ch <- o:
		default: // the waiter already has its outcome
		}
	}
}

// run watches the button until ctx ends or the pin is closed.
func (b *button) run(ctx context.Context) {
	// A button that reads pressed at start-up has been pressed for an unknown time, or is stuck;
	// it must be released before it counts, so that a stuck button does not raise an incident at
	// every boot.
	if v, err := b.pin.Read(); err == nil && v == b.active {
		b.log.Warn("button is pressed at start-up; ignoring it until released")
		if !b.waitRelease(ctx) {
			return
		}
	}
	for {
		ev, err := b.pin.WaitForEdge(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Error("button input failed; button disabled", "err", err)
			}
			return
		}
		if ev.Level != b.active {
			continue
		}
		if !b.press(ctx) {
			return
		}
	}
}

// press handles one press from its start; it returns false when the button must stop.
func (b *button) press(ctx context.Context) bool {
	b.setDown(true)
	defer b.setDown(false)
	b.pressing(b, true)
	held, ok := b.holdFor(ctx, b.cfg.Hold())
	if !held {
		b.pressing(b, false)
		if ok {
			b.log.Info("press released before hold time; no incident", "hold_ms", b.cfg.HoldMS)
			b.report(pressOutcome{})
		}
		return ok
	}
	id, err := b.raise(b)
	b.pressing(b, false)
	// An incident the disk would not take is raised all the same (held in memory), with err saying so.
	b.report(pressOutcome{Raised: id != "", IncidentID: id, Err: err})
	// However long it stays down, a press raises one incident.
	return b.waitRelease(ctx)
}

// holdFor waits for the button to stay active for d. held says it did; ok is false when ctx
// ended or the pin failed.
func (b *button) holdFor(ctx context.Context, d time.Duration) (held, ok bool) {
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		ev, err := b.pin.WaitForEdge(hctx)
		switch {
		case err == nil && ev.Level != b.active:
			return false, true
		case err == nil:
			continue
		case ctx.Err() != nil:
			return false, false
		case hctx.Err() != nil:
			return true, true
		default:
			b.log.Error("button input failed; button disabled", "err", err)
			return false, false
		}
	}
}

func (b *button) waitRelease(ctx context.Context) bool {
	for {
		ev, err := b.pin.WaitForEdge(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Error("button input failed; button disabled", "err", err)
			}
			return false
		}
		if ev.Level != b.active {
			return true
		}
	}
}
