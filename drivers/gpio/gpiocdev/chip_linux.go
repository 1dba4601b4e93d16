//go:build linux

package gpiocdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cdev "github.com/warthog618/go-gpiocdev"

	"github.com/kentongan/kentongan/drivers/gpio"
)

// eventBuffer is how many edges an input queues for a slow reader, on top of the kernel's own
// buffer of 16 per line.
const eventBuffer = 64

// Chip is one GPIO character device. It implements gpio.NamedChip; lines opened by name may live on
// another chip, which it then opens too and closes with itself.
type Chip struct {
	name  string // the kernel's name, "gpiochip0"
	path  string
	label string
	lines int
	cfg   config

	mu     sync.Mutex
	closed bool
	dev    *cdev.Chip
	others map[string]*cdev.Chip // chips opened for lines found by name, by kernel name
	pins   map[pin]struct{}
}

type pin interface{ Close() error }

var _ gpio.NamedChip = (*Chip)(nil)

// Open opens a GPIO character device: "gpiochip0", "/dev/gpiochip0", or a symlink to one that a
// udev rule made.
func Open(name string, opts ...Option) (*Chip, error) {
	cfg := config{check: CheckInterval}
	for _, o := range opts {
		o(&cfg)
	}
	if name == "" {
		return nil, fmt.Errorf("gpiocdev: open: %w: no chip named (%s)", gpio.ErrNoChip, chipsHere())
	}
	dev, path, err := openDev(name)
	if err != nil {
		return nil, err
	}
	return &Chip{
		name:   dev.Name,
		path:   path,
		label:  dev.Label,
		lines:  dev.Lines(),
		cfg:    cfg,
		dev:    dev,
		others: make(map[string]*cdev.Chip),
		pins:   make(map[pin]struct{}),
	}, nil
}

func openDev(name string) (*cdev.Chip, string, error) {
	path := name
	if !strings.HasPrefix(path, "/") {
		path = "/dev/" + path
	}
	// go-gpiocdev refuses a symlink; udev rules make them to give a chip a stable name.
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	dev, err := cdev.NewChip(path, cdev.WithConsumer(defaultConsumer()))
	switch {
	case err == nil:
		return dev, path, nil
	case errors.Is(err, fs.ErrNotExist):
		err = fmt.Errorf("%w (%s)", gpio.ErrNoChip, chipsHere())
	case errors.Is(err, cdev.ErrNotCharacterDevice):
		err = fmt.Errorf("%w: not a GPIO character device (%s)", gpio.ErrNoChip, chipsHere())
	case errors.Is(err, fs.ErrPermission):
		err = permissionError(path)
	}
	return nil, path, fmt.Errorf("gpiocdev: open %s: %w", path, err)
}

// Name returns the kernel's name of the chip, e.g. "gpiochip0".
func (c *Chip) Name() string { return c.name }

// Label returns the chip's label, which says what hardware it is, e.g. "pinctrl-bcm2711".
func (c *Chip) Label() string { return c.label }

// Lines returns the number of lines on the chip.
func (c *Chip) Lines() int { return c.lines }

// OpenIn requests the line at offset as an input, with edge events unless gpio.WithoutEdges.
func (c *Chip) OpenIn(offset int, opts ...gpio.InOption) (gpio.PinIn, error) {
	return c.openIn(c.dev, offset, opts)
}

// OpenOut requests the line at offset as an output, driven to its initial level at once.
func (c *Chip) OpenOut(offset int, opts ...gpio.OutOption) (gpio.PinOut, error) {
	return c.openOut(c.dev, offset, opts)
}

// OpenInByName opens the input called name, on this chip or, failing that, on the first chip in
// /dev that has it.
func (c *Chip) OpenInByName(name string, opts ...gpio.InOption) (gpio.PinIn, error) {
	dev, offset, err := c.find("open input", name)
	if err != nil {
		return nil, err
	}
	return c.openIn(dev, offset, opts)
}

// OpenOutByName is OpenInByName for an output.
func (c *Chip) OpenOutByName(name string, opts ...gpio.OutOption) (gpio.PinOut, error) {
	dev, offset, err := c.find("open output", name)
	if err != nil {
		return nil, err
	}
	return c.openOut(dev, offset, opts)
}

// Close releases every line still open (outputs driven Low first) and closes the chips.
func (c *Chip) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	pins := make([]pin, 0, len(c.pins))
	for p := range c.pins {
		pins = append(pins, p)
	}
	c.mu.Unlock()

	var errs []error
	for _, p := range pins {
		if err := p.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, dev := range c.others {
		dev.Close()
	}
	c.dev.Close()
	return errors.Join(errs...)
}

func (c *Chip) forget(p pin) {
	c.mu.Lock()
	delete(c.pins, p)
	c.mu.Unlock()
}

func (c *Chip) find(op, name string) (*cdev.Chip, int, error) {
	if name == "" {
		return nil, 0, &gpio.LineError{Op: op, Offset: -1, Err: fmt.Errorf("%w: empty line name", gpio.ErrNoLine)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, 0, &gpio.LineError{Op: op, Chip: c.name, Line: name, Offset: -1, Err: gpio.ErrClosed}
	}
	if offset, err := c.dev.FindLine(name); err == nil {
		return c.dev, offset, nil
	}
	for _, dev := range c.others {
		if offset, err := dev.FindLine(name); err == nil {
			return dev, offset, nil
		}
	}
	chip, offset, err := FindLine(name)
	if err != nil {
		return nil, 0, &gpio.LineError{Op: op, Line: name, Offset: -1, Err: err}
	}
	if chip == c.name {
		return c.dev, offset, nil
	}
	dev, _, err := openDev(chip)
	if err != nil {
		return nil, 0, &gpio.LineError{Op: op, Chip: chip, Line: name, Offset: offset, Err: err}
	}
	c.others[dev.Name] = dev
	return dev, offset, nil
}

// FindLine returns the chip and offset of the line called name, looking through every GPIO
// character device in numeric order as gpiofind does; the first match wins.
func FindLine(name string) (chip string, offset int, err error) {
	chips := cdev.Chips()
	if len(chips) == 0 {
		return "", 0, fmt.Errorf("%w: there are no GPIO character devices in /dev", gpio.ErrNoChip)
	}
	var searched, denied []string
	for _, ch := range chips {
		dev, err := cdev.NewChip(ch)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				denied = append(denied, ch)
			}
			continue
		}
		offset, err := dev.FindLine(name)
		searched = append(searched, fmt.Sprintf("%s (%s, %d lines)", dev.Name, dev.Label, dev.Lines()))
		chip := dev.Name
		dev.Close()
		if err == nil {
			return chip, offset, nil
		}
	}
	if len(denied) > 0 {
		return "", 0, fmt.Errorf("could not search /dev/%s: %w", strings.Join(denied, ", /dev/"), permissionError("/dev/"+denied[0]))
	}
	if len(searched) == 0 {
		return "", 0, fmt.Errorf("%w: none of %s could be opened", gpio.ErrNoChip, strings.Join(chips, ", "))
	}
	return "", 0, fmt.Errorf("%w: no line has that name on %s", gpio.ErrNoLine, strings.Join(searched, ", "))
}

func (c *Chip) openIn(dev *cdev.Chip, offset int, opts []gpio.InOption) (gpio.PinIn, error) {
	const op = "open input"
	cfg := gpio.ResolveIn(opts...)
	if err := cfg.Validate(); err != nil {
		return nil, &gpio.LineError{Op: op, Chip: dev.Name, Offset: offset, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	name, err := c.lineName(dev, offset)
	if err != nil {
		return nil, &gpio.LineError{Op: op, Chip: dev.Name, Offset: offset, Err: err}
	}
	p := &inPin{
		chip:   c,
		src:    dev,
		dev:    dev.Name,
		offset: offset,
		name:   name,
		events: make(chan gpio.Event, eventBuffer),
		done:   make(chan struct{}),
	}
	ropts := []cdev.LineReqOption{cdev.AsInput, bias(cfg.Pull), cdev.WithConsumer(consumer(cfg.Consumer))}
	if cfg.ActiveLow {
		ropts = append(ropts, cdev.AsActiveLow)
	}
	if cfg.Debounce > 0 {
		// The kernel counts in microseconds; a shorter period would become no debouncing.
		ropts = append(ropts, cdev.WithDebounce(max(cfg.Debounce, time.Microsecond)))
	}
	switch cfg.Edge {
	case gpio.BothEdges:
		ropts = append(ropts, cdev.WithBothEdges)
	case gpio.RisingEdge:
		ropts = append(ropts, cdev.WithRisingEdge)
	case gpio.FallingEdge:
		ropts = append(ropts, cdev.WithFallingEdge)
	}
	if cfg.Edge != gpio.NoEdge {
		ropts = append(ropts, cdev.WithEventHandler(p.handle))
	}
	line, err := dev.RequestLine(offset, ropts...)
	if err != nil {
		return nil, &gpio.LineError{Op: op, Chip: dev.Name, Line: name, Offset: offset,
			Err: requestError(dev, c.pathOf(dev), offset, err, describeIn(cfg))}
	}
	p.line = line
	c.pins[p] = struct{}{}
	return p, nil
}

func (c *Chip) openOut(dev *cdev.Chip, offset int, opts []gpio.OutOption) (gpio.PinOut, error) {
	const op = "open output"
	cfg := gpio.ResolveOut(opts...)
	c.mu.Lock()
	defer c.mu.Unlock()
	name, err := c.lineName(dev, offset)
	if err != nil {
		return nil, &gpio.LineError{Op: op, Chip: dev.Name, Offset: offset, Err: err}
	}
	ropts := []cdev.LineReqOption{cdev.AsOutput(value(cfg.Initial)), cdev.WithConsumer(consumer(cfg.Consumer))}
	if cfg.ActiveLow {
		ropts = append(ropts, cdev.AsActiveLow)
	}
	line, err := dev.RequestLine(offset, ropts...)
	if err != nil {
		desc := "output, initially " + cfg.Initial.String()
		if cfg.ActiveLow {
			desc += ", active-low"
		}
		return nil, &gpio.LineError{Op: op, Chip: dev.Name, Line: name, Offset: offset,
			Err: requestError(dev, c.pathOf(dev), offset, err, desc)}
	}
	p := &outPin{chip: c, src: dev, dev: dev.Name, offset: offset, name: name, line: line}
	c.pins[p] = struct{}{}
	return p, nil
}

// lineName checks that the chip is open and has the line, and returns the line's name: the
// kernel's if it has one, else the conventional GPIO<offset>. c.mu must be held.
func (c *Chip) lineName(dev *cdev.Chip, offset int) (string, error) {
	if c.closed {
		return "", gpio.ErrClosed
	}
	info, err := dev.LineInfo(offset)
	if err != nil {
		return "", classify(dev, c.pathOf(dev), offset, err)
	}
	if info.Name != "" {
		return info.Name, nil
	}
	return gpio.LineName(offset), nil
}

func (c *Chip) pathOf(dev *cdev.Chip) string {
	if dev == c.dev {
		return c.path
	}
	return "/dev/" + dev.Name
}

func bias(p gpio.Pull) cdev.LineReqOption {
	switch p {
	case gpio.PullUp:
		return cdev.WithPullUp
	case gpio.PullDown:
		return cdev.WithPullDown
	}
	return cdev.WithBiasDisabled
}

func value(l gpio.Level) int {
	if l {
		return 1
	}
	return 0
}

func describeIn(cfg gpio.InConfig) string {
	parts := []string{"input", cfg.Pull.String(), cfg.Edge.String()}
	if cfg.Debounce > 0 {
		parts = append(parts, "debounce "+cfg.Debounce.String())
	}
	if cfg.ActiveLow {
		parts = append(parts, "active-low")
	}
	return strings.Join(parts, ", ")
}

// requestError explains why the kernel refused a line request.
func requestError(dev *cdev.Chip, path string, offset int, err error, request string) error {
	err = classify(dev, path, offset, err)
	var incompatible cdev.ErrUapiIncompatibility
	if errors.Is(err, syscall.EINVAL) || errors.As(err, &incompatible) {
		// Bias needs Linux 5.5, debounce 5.10; some controllers support neither.
		return fmt.Errorf("the kernel refused the configuration (%s); bias needs Linux 5.5 and debounce 5.10 or later: %w", request, err)
	}
	return err
}

// classify maps what go-gpiocdev and the kernel return to the gpio package's sentinels.
func classify(dev *cdev.Chip, path string, offset int, err error) error {
	switch {
	case errors.Is(err, cdev.ErrClosed):
		return gpio.ErrClosed
	case errors.Is(err, cdev.ErrInvalidOffset):
		return fmt.Errorf("%w: %s has lines 0 to %d", gpio.ErrNoLine, dev.Name, dev.Lines()-1)
	case errors.Is(err, syscall.EBUSY):
		return busyError(dev, offset)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: %w", path, permissionError(path))
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return fmt.Errorf("%w: the chip went away while in use: %w", gpio.ErrNoChip, err)
	}
	return err
}

// busyError names who holds the line, so that the technician knows what to stop.
func busyError(dev *cdev.Chip, offset int) error {
	info, err := dev.LineInfo(offset)
	switch {
	case err != nil || info.Consumer == "":
		return gpio.ErrBusy
	case info.Consumer == "sysfs":
		return fmt.Errorf("%w: exported through /sys/class/gpio; unexport it (echo N > /sys/class/gpio/unexport) or remove what exports it", gpio.ErrBusy)
	}
	return fmt.Errorf("%w: in use by %q", gpio.ErrBusy, info.Consumer)
}

// permissionError says which group the device at path belongs to and who needs to be in it.
func permissionError(path string) error {
	who, login := "this program's user", "USER"
	if u, err := user.Current(); err == nil {
		who, login = "user "+u.Username, u.Username
	}
	group := "gpio"
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10)); err == nil {
				group = g.Name
			}
		}
	}
	return fmt.Errorf("%w for %s: add it to group %s (usermod -aG %s %s) and restart it", gpio.ErrPermission, who, group, group, login)
}

// chipsHere lists the chips of this machine for an error about a missing one.
func chipsHere() string {
	chips := cdev.Chips()
	if len(chips) == 0 {
		return "this machine has no GPIO character devices"
	}
	var s []string
	for _, ch := range chips {
		if dev, err := cdev.NewChip(ch); err == nil {
			s = append(s, fmt.Sprintf("%s (%s)", dev.Name, dev.Label))
			dev.Close()
		} else {
			s = append(s, ch)
		}
	}
	return "this machine has " + strings.Join(s, ", ")
}

func defaultConsumer() string { return consumer("") }

// consumer is the label the kernel shows for a requested line.
func consumer(label string) string {
	if label == "" {
		label = filepath.Base(os.Args[0])
	}
	if len(label) > gpio.MaxConsumer {
		label = label[:gpio.MaxConsumer]
	}
	return label
}
