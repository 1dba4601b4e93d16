package gpio

import (
	"errors"
	"fmt"
	"time"
)

// Pull is the bias resistor applied to an input line.
type Pull int

const (
	// Float leaves the line unbiased: an open switch leaves it at whatever level noise gives it.
	Float Pull = iota
	// PullDown biases the line Low.
	PullDown
	// PullUp biases the line High, so that a switch to ground reads Low when closed: the wiring
	// of every kiosk button.
	PullUp
)

func (p Pull) String() string {
	switch p {
	case Float:
		return "Float"
	case PullDown:
		return "PullDown"
	case PullUp:
		return "PullUp"
	}
	return "Pull(?)"
}

// Edge selects which level changes of an input are reported by WaitForEdge.
type Edge int

const (
	// BothEdges reports every change; it is the default because a button needs press and release.
	BothEdges Edge = iota
	RisingEdge
	FallingEdge
	// NoEdge reports nothing: WaitForEdge blocks until its context ends.
	NoEdge
)

func (e Edge) String() string {
	switch e {
	case BothEdges:
		return "BothEdges"
	case RisingEdge:
		return "RisingEdge"
	case FallingEdge:
		return "FallingEdge"
	case NoEdge:
		return "NoEdge"
	}
	return "Edge(?)"
}

// Matches reports whether a change to level l is an edge e selects.
func (e Edge) Matches(l Level) bool {
	switch e {
	case BothEdges:
		return true
	case RisingEdge:
		return l == High
	case FallingEdge:
		return l == Low
	}
	return false
}

// InConfig is an input request after its options are applied. Backends read it with ResolveIn.
type InConfig struct {
	Pull     Pull
	Edge     Edge
	Debounce time.Duration // a level must be stable this long before it is reported; 0 = raw
	// ActiveLow inverts the line: Read and edges report High while the wire is Low. Edge
	// selects edges of the inverted level.
	ActiveLow bool
	// Consumer labels the line for other programs (gpioinfo shows it); empty: the backend's
	// default, the program's name.
	Consumer string
}

// MaxConsumer is the longest Consumer label kept; the kernel keeps 31 bytes.
const MaxConsumer = 31

// Validate reports an option value no backend can honour.
func (c InConfig) Validate() error {
	var errs []error
	if c.Pull < Float || c.Pull > PullUp {
		errs = append(errs, fmt.Errorf("gpio: unknown pull %d", int(c.Pull)))
	}
	if c.Edge < BothEdges || c.Edge > NoEdge {
		errs = append(errs, fmt.Errorf("gpio: unknown edge %d", int(c.Edge)))
	}
	if c.Debounce < 0 {
		errs = append(errs, fmt.Errorf("gpio: debounce %s is negative", c.Debounce))
	}
	return errors.Join(errs...)
}

// InOption configures an input request.
type InOption interface{ applyIn(*InConfig) }

// OutConfig is an output request after its options are applied.
type OutConfig struct {
	Initial Level
	// ActiveLow inverts the line: Out(High) drives the wire Low, for an LED wired from the
	// supply to the pin (a common-anode RGB LED).
	ActiveLow bool
	Consumer  string // as InConfig.Consumer
}

// OutOption configures an output request.
type OutOption interface{ applyOut(*OutConfig) }

func (p Pull) applyIn(c *InConfig) { c.Pull = p }
func (e Edge) applyIn(c *InConfig) { c.Edge = e }

// Typed options in the style of go-gpiocdev: the option is the value.
const (
	WithFloat       = Float
	WithPullDown    = PullDown
	WithPullUp      = PullUp
	WithBothEdges   = BothEdges
	WithRisingEdge  = RisingEdge
	WithFallingEdge = FallingEdge
	WithoutEdges    = NoEdge
)

// DebounceOption filters contact bounce: see InConfig.Debounce.
type DebounceOption time.Duration

func (d DebounceOption) applyIn(c *InConfig) { c.Debounce = time.Duration(d) }

// WithDebounce asks the backend to report a level only after it has been stable for d. The
// kernel does this for GPIO character-device lines; the simulator does it the same way.
func WithDebounce(d time.Duration) DebounceOption { return DebounceOption(d) }

// InitialOption sets the level an output takes when it is requested.
type InitialOption Level

func (i InitialOption) applyOut(c *OutConfig) { c.Initial = Level(i) }

// WithInitial sets the level an output takes when it is requested (default Low).
func WithInitial(l Level) InitialOption { return InitialOption(l) }

// ActiveLowOption inverts a line: see InConfig.ActiveLow.
type ActiveLowOption bool

func (a ActiveLowOption) applyIn(c *InConfig)   { c.ActiveLow = bool(a) }
func (a ActiveLowOption) applyOut(c *OutConfig) { c.ActiveLow = bool(a) }

// WithActiveLow inverts an input or output line: see InConfig.ActiveLow.
const WithActiveLow = ActiveLowOption(true)

// ConsumerOption labels a line: see InConfig.Consumer.
type ConsumerOption string

func (s ConsumerOption) applyIn(c *InConfig)   { c.Consumer = string(s) }
func (s ConsumerOption) applyOut(c *OutConfig) { c.Consumer = string(s) }

// WithConsumer labels the line, so that a technician running gpioinfo, or the error of another
// program that wants the same line, sees who holds it. Longer labels are cut to MaxConsumer.
func WithConsumer(label string) ConsumerOption {
	if len(label) > MaxConsumer {
		label = label[:MaxConsumer]
	}
	return ConsumerOption(label)
}

// ResolveIn applies opts to the defaults (Float, BothEdges, no debounce).
func ResolveIn(opts ...InOption) InConfig {
	c := InConfig{Pull: Float, Edge: BothEdges}
	for _, o := range opts {
		o.applyIn(&c)
	}
	return c
}

// ResolveOut applies opts to the defaults (initially Low).
func ResolveOut(opts ...OutOption) OutConfig {
	c := OutConfig{Initial: Low}
	for _, o := range opts {
		o.applyOut(&c)
	}
	return c
}
