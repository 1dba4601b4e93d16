package daemon

import (
	"cmp"
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiocdev"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
	"github.com/kentongan/kentongan/drivers/gpio/periphgpio"
)

// maxLineName is the longest line name the kernel keeps.
const maxLineName = 31

// simChipName names the simulated chip in logs and errors.
const simChipName = "kentongan-sim"

// driver is the backend the config selects, with the default filled in.
func (g GPIOConfig) driver() string { return cmp.Or(g.Driver, DriverGPIOCDev) }

// defaultDriverUsable says why gpio.driver cannot be left to its default on this OS.
func defaultDriverUsable() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the default, %s, needs Linux, not %s (use %s to run without hardware)", DriverGPIOCDev, runtime.GOOS, DriverSim)
	}
	return nil
}

// validChipName accepts "gpiochipN" and paths under /dev/ (a udev rule's stable symlink).
func validChipName(s string) bool {
	if rest, ok := strings.CutPrefix(s, "/dev/"); ok {
		return rest != "" && !strings.Contains(rest, "..")
	}
	digits, ok := strings.CutPrefix(s, "gpiochip")
	if !ok || digits == "" || len(digits) > 4 {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// validLineName accepts what a device tree or gpio-sim can name a line: up to maxLineName
// printable characters without spaces.
func validLineName(s string) bool {
	return len(s) <= maxLineName && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// openChip opens the GPIO backend cfg selects. sim is the simulated chip when the driver is sim,
// for the admin API's presses; nil otherwise. Errors name the driver and chip and say what to do.
func openChip(cfg GPIOConfig, log *slog.Logger) (chip gpio.Chip, sim *gpiosim.Chip, err error) {
	switch driver := cfg.driver(); driver {
	case DriverSim:
		sim := gpiosim.New(simChipName, 0)
		log.Info("gpio backend", "driver", DriverSim)
		return sim, sim, nil
	case DriverGPIOCDev:
		c, err := gpiocdev.Open(cmp.Or(cfg.Chip, DefaultGPIOChip))
		if err != nil {
			return nil, nil, fmt.Errorf("gpio (driver %s): %w", driver, err)
		}
		log.Info("gpio backend", "driver", driver, "chip", c.Name(), "label", c.Label(), "lines", c.Lines(), "board", periphgpio.Board())
		return c, nil, nil
	case DriverPeriph:
		c, err := periphgpio.Open()
		if err != nil {
			return nil, nil, fmt.Errorf("gpio (driver %s): %w", driver, err)
		}
		log.Info("gpio backend", "driver", driver, "board", c.Board())
		return c, nil, nil
	default:
		return nil, nil, fmt.Errorf("gpio: driver %q is not supported", driver)
	}
}

// openIn opens a button's line, by offset or by name. On the sim driver it also sets bc.Pin to
// the named line's offset, since presses through the admin API find the line by offset.
func (d *Daemon) openIn(bc *Button, opts ...gpio.InOption) (gpio.PinIn, error) {
	opts = append(opts, gpio.WithConsumer("kentongand-"+bc.Name))
	if bc.Line == "" {
		return d.chip.OpenIn(bc.Pin, opts...)
	}
	if d.sim != nil {
		offset, err := simOffset(bc.Line)
		if err != nil {
			return nil, err
		}
		bc.Pin = offset
	}
	return gpio.OpenInByName(d.chip, bc.Line, opts...)
}

// openOut opens an LED's or buzzer's line, by offset or by name.
func (d *Daemon) openOut(lc *LED, opts ...gpio.OutOption) (gpio.PinOut, error) {
	opts = append(opts, gpio.WithConsumer("kentongand-"+lc.Name))
	if lc.Line == "" {
		return d.chip.OpenOut(lc.Pin, opts...)
	}
	if d.sim != nil {
		offset, err := simOffset(lc.Line)
		if err != nil {
			return nil, err
		}
		lc.Pin = offset
	}
	return gpio.OpenOutByName(d.chip, lc.Line, opts...)
}

// simOffset maps a line name to a simulated line: the simulator's lines are called GPIO<n>, as a
// Raspberry Pi's are.
func simOffset(name string) (int, error) {
	offset, ok := gpio.ParseLineName(name)
	if !ok {
		return 0, &gpio.LineError{Op: "open", Chip: simChipName, Line: name, Offset: -1,
			Err: fmt.Errorf("%w: the sim driver's lines are called GPIO0 to GPIO%d", gpio.ErrNoLine, gpiosim.DefaultLines-1)}
	}
	return offset, nil
}
