//go:build !linux

package gpiocdev

import (
	"fmt"

	"github.com/kentongan/kentongan/drivers/gpio"
)

// Chip is one GPIO character device; off Linux there are none, and Open always fails.
type Chip struct{}

var _ gpio.NamedChip = (*Chip)(nil)

// Open returns ErrUnsupported off Linux.
func Open(name string, opts ...Option) (*Chip, error) {
	return nil, fmt.Errorf("gpiocdev: open %s: %w", name, ErrUnsupported)
}

// FindLine returns ErrUnsupported off Linux.
func FindLine(name string) (chip string, offset int, err error) {
	return "", 0, ErrUnsupported
}

func (c *Chip) Name() string  { return "" }
func (c *Chip) Label() string { return "" }
func (c *Chip) Lines() int    { return 0 }

func (c *Chip) OpenIn(offset int, opts ...gpio.InOption) (gpio.PinIn, error) {
	return nil, ErrUnsupported
}

func (c *Chip) OpenOut(offset int, opts ...gpio.OutOption) (gpio.PinOut, error) {
	return nil, ErrUnsupported
}

func (c *Chip) OpenInByName(name string, opts ...gpio.InOption) (gpio.PinIn, error) {
	return nil, ErrUnsupported
}

func (c *Chip) OpenOutByName(name string, opts ...gpio.OutOption) (gpio.PinOut, error) {
	return nil, ErrUnsupported
}

func (c *Chip) Close() error { return nil }
