// Package gpiosim is an in-memory GPIO chip that behaves like the kiosk hardware, for tests, demos
// and kiosks built without buttons attached yet.
//
// Each line has two sides. The program side is what gpio.Chip hands out: a gpio.PinIn or
// gpio.PinOut. The physical side is a *Line, which a test (or the daemon's admin endpoint) uses
// to press the push-button wired to it or to look at the LED it drives.
//
// The electrical model is that of a kiosk button: a normally-open switch between the line and
// ground. Closed, the line reads Low. Open, it reads what the bias gives it: High with
// gpio.WithPullUp, Low with gpio.WithPullDown, and Low when floating (real floating lines read
// whatever noise gives them; the simulator picks Low so that a missing pull-up shows up as a
// button that never presses, as on the bench). Debouncing works like the kernel's: a level is
// reported only after it has been stable for the debounce period.
package gpiosim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
)

// DefaultLines is the number of lines New gives a chip when asked for 0: the BCM GPIO count of a
// Raspberry Pi.
const DefaultLines = 54

// eventBuffer is how many edges an input queues for a slow reader. The kernel's default is 16
// per line; a larger buffer costs nothing here.
const eventBuffer = 64

// historyLimit bounds the recorded output changes so that a blinking LED in a long-running demo
// does not grow memory without bound.
const historyLimit = 4096

// Chip is a simulated GPIO chip. It implements gpio.Chip.
type Chip struct {
	name string
	n    int

	mu     sync.Mutex
	closed bool
	lines  map[int]*Line
}

var _ gpio.Chip = (*Chip)(nil)

// New returns a chip with lines 0..lines-1 (DefaultLines if lines <= 0).
func New(name string, lines int) *Chip {
	if lines <= 0 {
		lines = DefaultLines
	}
	return &Chip{name: name, n: lines, lines: make(map[int]*Line)}
}

// Name returns the chip's name.
func (c *Chip) Name() string { return c.name }

// Line returns the physical side of a line. It panics on an offset the chip does not have, as
// indexing past a slice does: physical lines are fixed by the test that builds the chip.
func (c *Chip) Line(offset int) *Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.lineLocked(offset)
	if err != nil {
		panic(err)
	}
	return l
}

func (c *Chip) lineLocked(offset int) (*Line, error) {
	if offset < 0 || offset >= c.n {
		return nil, fmt.Errorf("%s line %d: %w", c.name, offset, gpio.ErrNoLine)
	}
	l := c.lines[offset]
	if l == nil {
		l = &Line{chip: c, offset: offset, changed: make(chan struct{})}
		c.lines[offset] = l
	}
	return l, nil
}

// requestLocked claims a free line, as the kernel does when a process requests one.
func (c *Chip) requestLocked(offset int, as string) (*Line, error) {
	if c.closed {
		return nil, fmt.Errorf("open %s line %d: %w", c.name, offset, gpio.ErrClosed)
	}
	l, err := c.lineLocked(offset)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", as, err)
	}
	if l.in != nil || l.out != nil {
		return nil, fmt.Errorf("open %s line %d: %w", c.name, offset, gpio.ErrBusy)
	}
	return l, nil
}

// OpenIn requests a line as an input.
func (c *Chip) OpenIn(offset int, opts ...gpio.InOption) (gpio.PinIn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.requestLocked(offset, "input")
	if err != nil {
		return nil, err
	}
	p := &inPin{
		line:   l,
		cfg:    gpio.ResolveIn(opts...),
		events: make(chan gpio.Event, eventBuffer),
		done:   make(chan struct{}),
	}
	l.in = p
	// A freshly requested input reports the level it finds, without an edge.
	p.reported = l.inputLevelLocked()
	return p, nil
}

// OpenOut requests a line as an output and drives it to its initial level.
func (c *Chip) OpenOut(offset int, opts ...gpio.OutOption) (gpio.PinOut, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.requestLocked(offset, "output")
	if err != nil {
		return nil, err
	}
	p := &outPin{line: l}
	l.out = p
	l.driveLocked(gpio.ResolveOut(opts...).Initial, true)
	return p, nil
}

// Close releases every open line; pins used afterwards return gpio.ErrClosed. Physical lines stay
// readable.
func (c *Chip) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for _, l := range c.lines {
		if l.in != nil {
			l.in.closeLocked()
		}
		if l.out != nil {
			l.out.closed = true
			l.out = nil
		}
	}
	return nil
}

// Change is one recorded level change of a line.
type Change struct {
	Level gpio.Level
	Time  time.Time
}

// Line is the physical side of one line. All methods are safe for concurrent use.
type Line struct {
	chip   *Chip
	offset int

	// Guarded by chip.mu.
	switchClosed bool
	in           *inPin
	out          *outPin
	level        gpio.Level // driven level, while or after the line was an output
	history      []Change
	changed      chan struct{}
}

// Offset returns the line's offset on its chip.
func (l *Line) Offset() int { return l.offset }

// Press closes the switch to ground, as a finger on the button does. It has no effect on a line
// requested as an output (on real hardware it would short the output).
func (l *Line) Press() { l.setSwitch(true) }

// Release opens the switch.
func (l *Line) Release() { l.setSwitch(false) }

// Tap presses the button, holds it for hold, and releases it. If ctx ends first, the button is
// released at once and ctx.Err() returned.
func (l *Line) Tap(ctx context.Context, hold time.Duration) error {
	l.Press()
	defer l.Release()
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Line) setSwitch(closed bool) {
	c := l.chip
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.switchClosed == closed {
		return
	}
	l.switchClosed = closed
	if l.in != nil {
		l.in.senseLocked()
	}
}

// Level returns the level on the wire: the driven level of an output, or what an input would
// read before debouncing.
func (l *Line) Level() gpio.Level {
	l.chip.mu.Lock()
	defer l.chip.mu.Unlock()
	if l.in != nil || (l.out == nil && l.history == nil) {
		return l.inputLevelLocked()
	}
	return l.level
}

// History returns the level changes an output has made, oldest first, starting with the level it
// was given when requested. At most the last few thousand are kept.
func (l *Line) History() []Change {
	l.chip.mu.Lock()
	defer l.chip.mu.Unlock()
	return append([]Change(nil), l.history...)
}

// Changed returns a channel that is closed at the next level change of an output, so that a test
// can wait for the LED without polling.
func (l *Line) Changed() <-chan struct{} {
	l.chip.mu.Lock()
	defer l.chip.mu.Unlock()
	return l.changed
}

// inputLevelLocked is the level an input sees: ground through the closed switch, else the bias.
func (l *Line) inputLevelLocked() gpio.Level {
	if l.switchClosed {
		return gpio.Low
	}
	if l.in != nil && l.in.cfg.Pull == gpio.PullUp {
		return gpio.High
	}
	return gpio.Low
}

func (l *Line) driveLocked(v gpio.Level, force bool) {
	if !force && v == l.level {
		return
	}
	l.level = v
	l.history = append(l.history, Change{Level: v, Time: time.Now()})
	if len(l.history) > historyLimit {
		l.history = append([]Change(nil), l.history[len(l.history)-historyLimit/2:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

type inPin struct {
	line *Line
	cfg  gpio.InConfig

	// Guarded by chip.mu.
	reported gpio.Level
	timer    *time.Timer
	gen      uint64 // invalidates a debounce timer that fired while being stopped
	closed   bool

	events chan gpio.Event
	done   chan struct{}
}

func (p *inPin) Name() string { return gpio.LineName(p.line.offset) }

func (p *inPin) Read() (gpio.Level, error) {
	c := p.line.chip
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.closed {
		return gpio.Low, fmt.Errorf("read %s: %w", p.Name(), gpio.ErrClosed)
	}
	return p.reported, nil
}

func (p *inPin) WaitForEdge(ctx context.Context) (gpio.Event, error) {
	select {
	case <-p.done:
		return gpio.Event{}, fmt.Errorf("wait for edge on %s: %w", p.Name(), gpio.ErrClosed)
	default:
	}
	// A queued edge is returned even if ctx has ended, as a read of a kernel buffer would.
	select {
	case ev := <-p.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-p.events:
		return ev, nil
	case <-p.done:
		return gpio.Event{}, fmt.Errorf("wait for edge on %s: %w", p.Name(), gpio.ErrClosed)
	case <-ctx.Done():
		return gpio.Event{}, ctx.Err()
	}
}

func (p *inPin) Close() error {
	c := p.line.chip
	c.mu.Lock()
	defer c.mu.Unlock()
	p.closeLocked()
	return nil
}

func (p *inPin) closeLocked() {
	if p.closed {
		return
	}
	p.closed = true
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
	}
	close(p.done)
	if p.line.in == p {
		p.line.in = nil
	}
}

// senseLocked reacts to a change on the wire, directly or after the debounce period.
func (p *inPin) senseLocked() {
	if p.closed {
		return
	}
	if p.cfg.Debounce <= 0 {
		p.settleLocked()
		return
	}
	// Every change restarts the period, so bounces shorter than it never reach the reader.
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
	}
	gen := p.gen
	p.timer = time.AfterFunc(p.cfg.Debounce, func() {
		c := p.line.chip
		c.mu.Lock()
		defer c.mu.Unlock()
		if p.closed || p.gen != gen {
			return
		}
		p.settleLocked()
	})
}

func (p *inPin) settleLocked() {
	v := p.line.inputLevelLocked()
	if v == p.reported {
		return
	}
	p.reported = v
	if !p.cfg.Edge.Matches(v) {
		return
	}
	ev := gpio.Event{Level: v, Time: time.Now()}
	select {
	case p.events <- ev:
	default:
		// Full: the kernel drops the oldest event; so do we, and keep the newest, which
		// matches the level a reader will find.
		select {
		case <-p.events:
		default:
		}
		p.events <- ev
	}
}

type outPin struct {
	line   *Line
	closed bool // guarded by chip.mu
}

func (p *outPin) Name() string { return gpio.LineName(p.line.offset) }

func (p *outPin) Out(v gpio.Level) error {
	c := p.line.chip
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.closed {
		return fmt.Errorf("set %s %s: %w", p.Name(), v, gpio.ErrClosed)
	}
	p.line.driveLocked(v, false)
	return nil
}

func (p *outPin) Close() error {
	c := p.line.chip
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.line.out == p {
		p.line.out = nil
	}
	return nil
}
