// Package periphgpio is the kiosk's GPIO backend on periph.io's host drivers
// (periph.io/x/host/v3), for boards and kernels where the GPIO character device is not usable:
// periph.io reaches a Raspberry Pi's pins through /dev/gpiomem as well as through the kernel.
//
// Pins are found by name in periph.io's registry (gpioreg): "GPIO17", or an alias such as
// "P1_11"; an offset n is the pin called "GPIO<n>", the BCM number on a Pi. periph.io's edge
// detection may merge edges or miss one, so each input has a goroutine that wakes on edges (or
// polls, on pins without edge detection), debounces in software, and queues an Event for every
// change of level it sees; a change of level is never lost, though a bounce shorter than a poll
// may be.
package periphgpio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/distro"

	"github.com/kentongan/kentongan/drivers/gpio"
)

// ChipName is how errors name the chip: periph.io has one registry of pins, not chips.
const ChipName = "periph"

// eventBuffer is how many edges an input queues for a slow reader.
const eventBuffer = 64

// Timing of an input's goroutine. An edge wakes it at once; without one it looks at the level
// every idleCheck (every pollInterval on a pin without edge detection), and while debouncing
// every debounce/debounceSteps.
const (
	idleCheck     = 100 * time.Millisecond
	pollInterval  = 10 * time.Millisecond
	debounceSteps = 4
)

// Chip is the board's GPIO as periph.io's drivers see it. It implements gpio.NamedChip.
type Chip struct {
	board  string
	lookup func(name string) pgpio.PinIO

	mu     sync.Mutex
	closed bool
	open   map[string]pinCloser // by periph.io's name of the pin, which aliases resolve to
}

type pinCloser interface{ Close() error }

var _ gpio.NamedChip = (*Chip)(nil)

// Open loads periph.io's host drivers and returns the board's GPIO. It returns gpio.ErrNoChip,
// with the drivers' own reasons, when none of them found a pin.
func Open() (*Chip, error) {
	state, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("periphgpio: load periph.io host drivers: %w", err)
	}
	if len(gpioreg.All()) == 0 {
		var why []string
		for _, f := range state.Failed {
			why = append(why, f.String())
		}
		for _, s := range state.Skipped {
			why = append(why, s.String())
		}
		board := Board()
		if board == "" {
			board = "unknown board"
		}
		return nil, fmt.Errorf("periphgpio: %w: periph.io found no GPIO pins on this machine (%s): %s",
			gpio.ErrNoChip, board, strings.Join(why, "; "))
	}
	return New(Board(), gpioreg.ByName), nil
}

// New returns a Chip whose pins come from lookup (gpioreg.ByName on a real board; a fake in
// tests). board is what Board reports.
func New(board string, lookup func(name string) pgpio.PinIO) *Chip {
	return &Chip{board: board, lookup: lookup, open: make(map[string]pinCloser)}
}

// Board returns the board's model as its device tree gives it ("Raspberry Pi 4 Model B Rev
// 1.4"), or "" when there is none to read.
func Board() string {
	m := strings.TrimSpace(strings.TrimRight(distro.DTModel(), "\x00"))
	if m == "<unknown>" {
		return ""
	}
	return m
}

// Board returns the model Open found, for the log.
func (c *Chip) Board() string { return c.board }

// OpenIn opens the pin called GPIO<offset> as an input.
func (c *Chip) OpenIn(offset int, opts ...gpio.InOption) (gpio.PinIn, error) {
	if offset < 0 {
		return nil, &gpio.LineError{Op: "open input", Chip: ChipName, Offset: offset, Err: gpio.ErrNoLine}
	}
	return c.openIn(gpio.LineName(offset), offset, opts)
}

// OpenOut opens the pin called GPIO<offset> as an output.
func (c *Chip) OpenOut(offset int, opts ...gpio.OutOption) (gpio.PinOut, error) {
	if offset < 0 {
		return nil, &gpio.LineError{Op: "open output", Chip: ChipName, Offset: offset, Err: gpio.ErrNoLine}
	}
	return c.openOut(gpio.LineName(offset), offset, opts)
}

// OpenInByName opens the pin periph.io knows by name (or alias) as an input.
func (c *Chip) OpenInByName(name string, opts ...gpio.InOption) (gpio.PinIn, error) {
	return c.openIn(name, -1, opts)
}

// OpenOutByName opens the pin periph.io knows by name (or alias) as an output.
func (c *Chip) OpenOutByName(name string, opts ...gpio.OutOption) (gpio.PinOut, error) {
	return c.openOut(name, -1, opts)
}

// Close stops every input and drives every output Low. periph.io has no release: the pins stay
// configured as they were left.
func (c *Chip) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	pins := make([]pinCloser, 0, len(c.open))
	for _, p := range c.open {
		pins = append(pins, p)
	}
	c.mu.Unlock()
	var errs []error
	for _, p := range pins {
		if err := p.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// claim finds a pin and marks it in use. c.mu must be held.
func (c *Chip) claim(op, name string, offset int) (pgpio.PinIO, *gpio.LineError) {
	le := &gpio.LineError{Op: op, Chip: ChipName, Line: name, Offset: offset}
	if c.closed {
		le.Err = gpio.ErrClosed
		return nil, le
	}
	if name == "" {
		le.Err = fmt.Errorf("%w: empty name", gpio.ErrNoLine)
		return nil, le
	}
	pp := c.lookup(name)
	if pp == nil {
		le.Err = fmt.Errorf("%w: periph.io has no pin of that name%s", gpio.ErrNoLine, c.known())
		return nil, le
	}
	if _, busy := c.open[pp.Name()]; busy {
		le.Err = fmt.Errorf("%w: %s is already open in this program", gpio.ErrBusy, pp.Name())
		return nil, le
	}
	return pp, nil
}

// known lists a few of the pins periph.io has, for an error about one it has not.
func (c *Chip) known() string {
	all := gpioreg.All()
	if len(all) == 0 {
		return ""
	}
	var names []string
	for _, p := range all {
		names = append(names, p.Name())
	}
	slices.Sort(names)
	if len(names) > 8 {
		names = append(names[:8], "...")
	}
	return " (it has " + strings.Join(names, ", ") + ")"
}

func (c *Chip) forget(name string) {
	c.mu.Lock()
	delete(c.open, name)
	c.mu.Unlock()
}

func (c *Chip) openIn(name string, offset int, opts []gpio.InOption) (gpio.PinIn, error) {
	const op = "open input"
	cfg := gpio.ResolveIn(opts...)
	if err := cfg.Validate(); err != nil {
		return nil, &gpio.LineError{Op: op, Chip: ChipName, Line: name, Offset: offset, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pp, le := c.claim(op, name, offset)
	if le != nil {
		return nil, le
	}
	p := &inPin{
		chip:    c,
		pin:     pp,
		offset:  offset,
		cfg:     cfg,
		edges:   true,
		events:  make(chan gpio.Event, eventBuffer),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	// Edges wake the goroutine; it compares levels itself, so it asks for both whatever the
	// caller selected.
	if err := pp.In(pull(cfg.Pull), pgpio.BothEdges); err != nil {
		// Some pins and drivers cannot detect edges: poll those.
		if err2 := pp.In(pull(cfg.Pull), pgpio.NoEdge); err2 != nil {
			return nil, &gpio.LineError{Op: op, Chip: ChipName, Line: pp.Name(), Offset: offset, Err: err2}
		}
		p.edges = false
	}
	p.reported = p.level()
	p.candidate, p.since = p.reported, time.Now()
	c.open[pp.Name()] = p
	go p.run()
	return p, nil
}

func (c *Chip) openOut(name string, offset int, opts []gpio.OutOption) (gpio.PinOut, error) {
	const op = "open output"
	cfg := gpio.ResolveOut(opts...)
	c.mu.Lock()
	defer c.mu.Unlock()
	pp, le := c.claim(op, name, offset)
	if le != nil {
		return nil, le
	}
	p := &outPin{chip: c, pin: pp, offset: offset, activeLow: cfg.ActiveLow}
	if err := pp.Out(p.wire(cfg.Initial)); err != nil {
		return nil, &gpio.LineError{Op: op, Chip: ChipName, Line: pp.Name(), Offset: offset, Err: err}
	}
	c.open[pp.Name()] = p
	return p, nil
}

func pull(p gpio.Pull) pgpio.Pull {
	switch p {
	case gpio.PullUp:
		return pgpio.PullUp
	case gpio.PullDown:
		return pgpio.PullDown
	}
	return pgpio.Float
}
