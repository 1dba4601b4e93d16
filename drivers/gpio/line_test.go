package gpio_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
)

func TestLineErrorNamesChipAndLine(t *testing.T) {
	for _, tc := range []struct {
		err  gpio.LineError
		want string
	}{
		{gpio.LineError{Op: "open input", Chip: "gpiochip0", Line: "GPIO17", Offset: 17, Err: gpio.ErrBusy},
			`open input gpiochip0 line 17 "GPIO17": gpio: line busy`},
		{gpio.LineError{Op: "open output", Line: "LED_RED", Offset: -1, Err: gpio.ErrNoLine},
			`open output line "LED_RED": gpio: no such line`},
		{gpio.LineError{Chip: "gpiochip1", Offset: 0, Err: gpio.ErrNoChip},
			`gpiochip1 line 0: gpio: no such chip`},
		{gpio.LineError{Op: "read", Offset: 3}, `read line 3: unknown error`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	var err error = fmt.Errorf("open button darurat: %w", &gpio.LineError{Op: "open input", Chip: "gpiochip0", Offset: 4, Err: fmt.Errorf("%w: in use by %q", gpio.ErrBusy, "sysfs")})
	var le *gpio.LineError
	if !errors.Is(err, gpio.ErrBusy) || !errors.As(err, &le) || le.Offset != 4 {
		t.Fatalf("errors.Is/As do not see through %v", err)
	}
}

func TestParseLineName(t *testing.T) {
	for name, want := range map[string]int{"GPIO0": 0, "GPIO17": 17, "GPIO1023": 1023} {
		if got, ok := gpio.ParseLineName(name); !ok || got != want {
			t.Errorf("%s: %d %v", name, got, ok)
		}
		if gpio.LineName(want) != name {
			t.Errorf("LineName(%d) = %s", want, gpio.LineName(want))
		}
	}
	for _, name := range []string{"", "GPIO", "GPIO-1", "GPIO017", "gpio17", "GPIO17a", "17", "GPIO99999", "ID_SDA"} {
		if got, ok := gpio.ParseLineName(name); ok {
			t.Errorf("%q parsed as %d", name, got)
		}
	}
}

func TestOpenByNameOnAChipWithoutNames(t *testing.T) {
	chip := gpiosim.New("sim", 0)
	defer chip.Close()
	in, err := gpio.OpenInByName(chip, "GPIO17", gpio.WithPullUp)
	if err != nil {
		t.Fatal(err)
	}
	chip.Line(17).Press()
	if v, _ := in.Read(); v != gpio.Low {
		t.Fatalf("GPIO17 opened some other line: reads %s while 17 is pressed", v)
	}
	out, err := gpio.OpenOutByName(chip, "GPIO23", gpio.WithInitial(gpio.High))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if chip.Line(23).Level() != gpio.High {
		t.Fatal("GPIO23 opened some other line")
	}
	for _, open := range []func() error{
		func() error { _, err := gpio.OpenInByName(chip, "BUTTON_A"); return err },
		func() error { _, err := gpio.OpenOutByName(chip, "LED"); return err },
	} {
		err := open()
		var le *gpio.LineError
		if !errors.Is(err, gpio.ErrNoLine) || !errors.As(err, &le) || le.Offset != -1 || !strings.Contains(err.Error(), `line "`) {
			t.Errorf("unknown name: %v, want a LineError with ErrNoLine", err)
		}
	}
}

func TestInConfigValidate(t *testing.T) {
	if err := gpio.ResolveIn(gpio.WithPullUp, gpio.WithDebounce(time.Millisecond)).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []gpio.InConfig{
		{Debounce: -time.Millisecond},
		{Pull: gpio.Pull(7)},
		{Edge: gpio.Edge(-1)},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestActiveLowAndConsumerOptions(t *testing.T) {
	in := gpio.ResolveIn(gpio.WithActiveLow, gpio.WithConsumer("kentongand-darurat"))
	out := gpio.ResolveOut(gpio.WithActiveLow, gpio.WithConsumer(strings.Repeat("x", 40)))
	if !in.ActiveLow || in.Consumer != "kentongand-darurat" || !out.ActiveLow {
		t.Fatalf("options not applied: %+v %+v", in, out)
	}
	if len(out.Consumer) != gpio.MaxConsumer {
		t.Fatalf("consumer label of %d bytes kept; the kernel keeps %d", len(out.Consumer), gpio.MaxConsumer)
	}
	if d := gpio.ResolveIn(); d.ActiveLow || d.Consumer != "" {
		t.Fatalf("defaults %+v", d)
	}
}
