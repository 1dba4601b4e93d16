// Package simdev makes GPIO chips with the Linux kernel's gpio-sim module, so that tests of the
// gpiocdev backend run against the kernel's real GPIO character device: real requests, bias,
// debouncing, edge events and busy lines. It needs root, configfs mounted on /sys/kernel/config
// and the gpio-sim module loaded (Debian's kernel lacks it; the virtual kiosk in test/vkiosk
// builds it), so tests call Available first and skip without it.
//
// A chip made here has one bank. Its inputs are driven by the simulated pull on the far side of
// the line, as a button or a loose wire would: Pull(offset, gpio.Low) is a button to ground
// pressed, Pull(offset, gpio.High) released. Value reads the level on the line, which is what an
// output drives.
package simdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kentongan/kentongan/drivers/gpio"
)

// ConfigFS is gpio-sim's directory in configfs.
const ConfigFS = "/sys/kernel/config/gpio-sim"

// ErrUnavailable is returned by Available and New where gpio-sim cannot be used.
var ErrUnavailable = errors.New("simdev: gpio-sim is not available")

// Available reports whether chips can be made here.
func Available() error {
	fi, err := os.Stat(ConfigFS)
	if err != nil {
		return fmt.Errorf("%w: %s: mount configfs on /sys/kernel/config and load gpio-sim (modprobe gpio-sim)", ErrUnavailable, ConfigFS)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnavailable, ConfigFS)
	}
	return nil
}

// Device is one live gpio-sim device with one chip.
type Device struct {
	dir     string // in configfs
	sysfs   string // /sys/devices/platform/<dev_name>/<chip_name>
	chip    string
	lines   int
	names   map[int]string
	removed bool
}

// New makes a chip with n lines, named as names says (offset → name; lines left out have no
// name), and makes it live. name must be unique among the machine's gpio-sim devices.
func New(name string, n int, names map[int]string) (*Device, error) {
	if name == "" || strings.ContainsAny(name, "/ \n") {
		return nil, fmt.Errorf("simdev: bad device name %q", name)
	}
	if n <= 0 {
		return nil, fmt.Errorf("simdev: a chip needs at least one line, not %d", n)
	}
	for off := range names {
		if off < 0 || off >= n {
			return nil, fmt.Errorf("simdev: line name for offset %d on a chip of %d lines", off, n)
		}
	}
	if err := Available(); err != nil {
		return nil, err
	}
	d := &Device{dir: filepath.Join(ConfigFS, name), lines: n, names: names}
	if err := d.create(); err != nil {
		d.cleanup()
		return nil, fmt.Errorf("simdev: make %s: %w", name, err)
	}
	return d, nil
}

func (d *Device) create() error {
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		return err
	}
	bank := filepath.Join(d.dir, "bank0")
	if err := os.Mkdir(bank, 0o755); err != nil {
		return err
	}
	if err := write(filepath.Join(bank, "num_lines"), strconv.Itoa(d.lines)); err != nil {
		return err
	}
	for off, name := range d.names {
		line := filepath.Join(bank, "line"+strconv.Itoa(off))
		if err := os.Mkdir(line, 0o755); err != nil {
			return err
		}
		if err := write(filepath.Join(line, "name"), name); err != nil {
			return err
		}
	}
	if err := write(filepath.Join(d.dir, "live"), "1"); err != nil {
		return err
	}
	devName, err := read(filepath.Join(d.dir, "dev_name"))
	if err != nil {
		return err
	}
	chip, err := read(filepath.Join(bank, "chip_name"))
	if err != nil {
		return err
	}
	d.chip = chip
	d.sysfs = filepath.Join("/sys/devices/platform", devName, chip)
	return nil
}

// Chip returns the chip's name, e.g. "gpiochip1", as gpiocdev.Open takes it.
func (d *Device) Chip() string { return d.chip }

// Pull sets the level that the far side of the line pulls it to: what an input reads (after
// its own bias is overridden, as a switch to ground overrides a pull-up).
func (d *Device) Pull(offset int, l gpio.Level) error {
	v := "pull-down"
	if l {
		v = "pull-up"
	}
	if err := d.check(offset); err != nil {
		return err
	}
	if err := write(filepath.Join(d.sysfs, "sim_gpio"+strconv.Itoa(offset), "pull"), v); err != nil {
		return fmt.Errorf("simdev: %s line %d %s: %w", d.chip, offset, v, err)
	}
	return nil
}

// Value returns the level on the line: what an output drives, or an input sees.
func (d *Device) Value(offset int) (gpio.Level, error) {
	if err := d.check(offset); err != nil {
		return gpio.Low, err
	}
	s, err := read(filepath.Join(d.sysfs, "sim_gpio"+strconv.Itoa(offset), "value"))
	if err != nil {
		return gpio.Low, fmt.Errorf("simdev: %s line %d value: %w", d.chip, offset, err)
	}
	return s == "1", nil
}

func (d *Device) check(offset int) error {
	if d.removed {
		return fmt.Errorf("simdev: %s was removed", d.chip)
	}
	if offset < 0 || offset >= d.lines {
		return fmt.Errorf("simdev: %s has no line %d", d.chip, offset)
	}
	return nil
}

// Remove takes the chip away, as unbinding its driver would, even while its lines are in use.
func (d *Device) Remove() error {
	if d.removed {
		return nil
	}
	d.removed = true
	return d.cleanup()
}

func (d *Device) cleanup() error {
	var errs []error
	if s, err := read(filepath.Join(d.dir, "live")); err == nil && s == "1" {
		if err := write(filepath.Join(d.dir, "live"), "0"); err != nil {
			errs = append(errs, err)
		}
	}
	// configfs removes directories one by one, innermost first.
	bank := filepath.Join(d.dir, "bank0")
	for off := range d.names {
		if err := os.Remove(filepath.Join(bank, "line"+strconv.Itoa(off))); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	for _, dir := range []string{bank, d.dir} {
		if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("simdev: remove %s: %w", d.dir, err)
	}
	return nil
}

// Close removes the chip if Remove has not.
func (d *Device) Close() error { return d.Remove() }

func write(path, v string) error { return os.WriteFile(path, []byte(v), 0o644) }

func read(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
