// Package gpio describes the kiosk's digital pins behind small interfaces, one per capability, in
// the style of periph.io's conn/gpio: a PinIn for buttons and a PinOut for LEDs. A backend (the
// in-memory simulator in gpiosim, the kernel's GPIO character device in gpiocdev, periph.io's
// drivers in periphgpio) implements Chip and hands out pins; the daemon never sees which backend
// it runs on.
package gpio

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Level is the electrical level of a pin.
type Level bool

const (
	Low  Level = false
	High Level = true
)

func (l Level) String() string {
	if l {
		return "High"
	}
	return "Low"
}

// Errors shared by every backend.
var (
	// ErrClosed is returned by a pin or chip used after Close.
	ErrClosed = errors.New("gpio: closed")
	// ErrBusy is returned when a line is already held by another request, as the kernel does.
	ErrBusy = errors.New("gpio: line busy")
	// ErrNoLine is returned for a line offset or name the chip does not have.
	ErrNoLine = errors.New("gpio: no such line")
	// ErrNoChip is returned for a chip that does not exist, or that went away while its lines
	// were in use (a USB GPIO expander unplugged, a driver unbound).
	ErrNoChip = errors.New("gpio: no such chip")
	// ErrPermission is returned when the process may not use the chip: on Linux, its user is not
	// in the group that owns /dev/gpiochip* (usually gpio).
	ErrPermission = errors.New("gpio: permission denied")
)

// Event is one edge seen on an input, after debouncing.
type Event struct {
	Level Level     // the level after the edge
	Time  time.Time // when the backend saw the edge
}

// PinIn is an input line.
type PinIn interface {
	// Name is the line's name as the backend knows it, e.g. "GPIO17".
	Name() string
	// Read returns the current (debounced) level.
	Read() (Level, error)
	// WaitForEdge blocks until the next edge selected by the pin's Edge option, or until ctx is
	// done (returning ctx.Err()) or the pin is closed (ErrClosed). Edges are queued by the
	// backend, so an edge that happens between two calls is not lost.
	WaitForEdge(ctx context.Context) (Event, error)
	// Close releases the line.
	Close() error
}

// PinOut is an output line.
type PinOut interface {
	Name() string
	Out(l Level) error
	// Close releases the line; the backend decides what the line does afterwards, so callers
	// that care drive it Low first.
	Close() error
}

// Chip is a GPIO controller that hands out lines by offset (on a Raspberry Pi, the BCM number).
type Chip interface {
	OpenIn(offset int, opts ...InOption) (PinIn, error)
	OpenOut(offset int, opts ...OutOption) (PinOut, error)
	// Close releases every line still open.
	Close() error
}

// LineName is the conventional name of a line offset, as periph.io and the Raspberry Pi
// device tree call them.
func LineName(offset int) string {
	return "GPIO" + strconv.Itoa(offset)
}
