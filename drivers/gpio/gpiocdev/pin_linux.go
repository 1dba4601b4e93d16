//go:build linux

package gpiocdev

import (
	"context"
	"errors"
	"sync"
	"time"

	cdev "github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"

	"github.com/kentongan/kentongan/drivers/gpio"
)

type inPin struct {
	chip   *Chip
	src    *cdev.Chip // the chip the line is on
	dev    string     // its name
	offset int
	name   string
	line   *cdev.Line
	events chan gpio.Event
	done   chan struct{} // closed by Close

	mu     sync.Mutex
	closed bool
	gone   error // why the line is gone, once its chip has gone away
}

func (p *inPin) Name() string { return p.name }

func (p *inPin) classify(err error) error { return classify(p.src, "/dev/"+p.dev, p.offset, err) }

func (p *inPin) lineError(op string, err error) error {
	return &gpio.LineError{Op: op, Chip: p.dev, Line: p.name, Offset: p.offset, Err: err}
}

// handle runs on go-gpiocdev's watcher goroutine for each edge the kernel reports. It must not
// block: the watcher reads the kernel's queue only between calls.
func (p *inPin) handle(le cdev.LineEvent) {
	ev := gpio.Event{Level: le.Type == cdev.LineEventRisingEdge, Time: time.Now()}
	var mono unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) == nil {
		ev.Time = eventTime(ev.Time, time.Duration(mono.Nano()), le.Timestamp)
	}
	select {
	case p.events <- ev:
	default:
		// Full: drop the oldest, as the kernel does, and keep the newest, which matches the
		// level a reader will find. This is the only sender, so the second send cannot block.
		select {
		case <-p.events:
		default:
		}
		p.events <- ev
	}
}

func (p *inPin) Read() (gpio.Level, error) {
	if err := p.usable("read"); err != nil {
		return gpio.Low, err
	}
	v, err := p.line.Value()
	if err != nil {
		return gpio.Low, p.fail("read", err)
	}
	return v != 0, nil
}

func (p *inPin) usable(op string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.lineError(op, gpio.ErrClosed)
	}
	if p.gone != nil {
		return p.lineError(op, p.gone)
	}
	return nil
}

// WaitForEdge returns the next queued edge. While it waits it checks every CheckInterval that the
// chip is still there, and returns gpio.ErrNoChip once it is not.
func (p *inPin) WaitForEdge(ctx context.Context) (gpio.Event, error) {
	const op = "wait for edge"
	// Edges that came before the chip went away, or before ctx ended, are still returned, as
	// a read of the kernel's queue would.
	select {
	case ev := <-p.events:
		return ev, nil
	default:
	}
	if err := p.usable(op); err != nil {
		return gpio.Event{}, err
	}
	tick := time.NewTicker(p.chip.cfg.check)
	defer tick.Stop()
	for {
		select {
		case ev := <-p.events:
			return ev, nil
		case <-p.done:
			return gpio.Event{}, p.lineError(op, gpio.ErrClosed)
		case <-ctx.Done():
			return gpio.Event{}, ctx.Err()
		case <-tick.C:
			if _, err := p.line.Value(); err != nil {
				return gpio.Event{}, p.fail(op, err)
			}
		}
	}
}

// fail turns an error from the line into a LineError, and releases the line if its chip has gone
// away.
func (p *inPin) fail(op string, err error) error {
	cause := p.classify(err)
	if !errors.Is(cause, gpio.ErrNoChip) {
		return p.lineError(op, cause)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.lineError(op, gpio.ErrClosed)
	}
	if p.gone == nil {
		p.gone = cause
		// Release at once: on kernels that wake a reader whose chip has gone, go-gpiocdev's
		// watcher would otherwise spin on the error until Close.
		p.line.Close()
	}
	return p.lineError(op, p.gone)
}

func (p *inPin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	released := p.gone != nil
	close(p.done)
	p.mu.Unlock()

	var err error
	if !released {
		if e := p.line.Close(); e != nil && !errors.Is(e, cdev.ErrClosed) {
			err = p.lineError("close", e)
		}
	}
	p.chip.forget(p)
	return err
}

type outPin struct {
	chip   *Chip
	src    *cdev.Chip
	dev    string
	offset int
	name   string
	line   *cdev.Line

	mu     sync.Mutex
	closed bool
}

func (p *outPin) Name() string { return p.name }

func (p *outPin) classify(err error) error { return classify(p.src, "/dev/"+p.dev, p.offset, err) }

func (p *outPin) lineError(op string, err error) error {
	return &gpio.LineError{Op: op, Chip: p.dev, Line: p.name, Offset: p.offset, Err: err}
}

func (p *outPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	op := "set " + l.String()
	if p.closed {
		return p.lineError(op, gpio.ErrClosed)
	}
	if err := p.line.SetValue(value(l)); err != nil {
		return p.lineError(op, p.classify(err))
	}
	return nil
}

// Close drives the line Low (inactive) and releases it: the kernel leaves a released output at
// its last level on most controllers, and an LED left lit would tell residents something that is
// no longer true.
func (p *outPin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	var errs []error
	if err := p.line.SetValue(0); err != nil {
		errs = append(errs, p.lineError("set Low before release", p.classify(err)))
	}
	if err := p.line.Close(); err != nil && !errors.Is(err, cdev.ErrClosed) {
		errs = append(errs, p.lineError("close", err))
	}
	p.chip.forget(p)
	return errors.Join(errs...)
}
