package daemon

import (
	"errors"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	cdev "github.com/warthog618/go-gpiocdev"

	"github.com/kentongan/kentongan/drivers/gpio"
)

const lineYAML = `
device_id: ciakar-rw03
broker:
  url: tcp://127.0.0.1:1883
gpio:
  driver: sim
store:
  dir: /var/lib/kentongand
buttons:
  - name: darurat
    line: GPIO17
leds:
  - name: status
    pin: 22
`

func TestGPIOConfig(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, lineYAML))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Buttons[0]; b.Line != "GPIO17" || b.Pin != 0 {
		t.Fatalf("button by line: %+v", b)
	}
	noDriver := strings.Replace(lineYAML, "  driver: sim\n", "", 1)
	c, err = LoadConfig(writeConfig(t, noDriver))
	if runtime.GOOS == "linux" {
		if err != nil {
			t.Fatalf("driver left out on Linux: %v", err)
		}
		if c.GPIO.driver() != DriverGPIOCDev {
			t.Fatalf("default driver %q", c.GPIO.driver())
		}
	} else if err == nil || !strings.Contains(err.Error(), "gpio.driver is required") {
		t.Fatalf("driver left out on %s: %v", runtime.GOOS, err)
	}
	for _, driver := range []string{DriverGPIOCDev, DriverPeriph} {
		if _, err := LoadConfig(writeConfig(t, strings.Replace(lineYAML, "driver: sim", "driver: "+driver, 1))); err != nil {
			t.Errorf("driver %s: %v", driver, err)
		}
	}
	for _, chip := range []string{"gpiochip0", "gpiochip12", "/dev/gpiochip4", "/dev/gpio-header"} {
		if _, err := LoadConfig(writeConfig(t, strings.Replace(lineYAML, "driver: sim", "driver: gpiocdev\n  chip: "+chip, 1))); err != nil {
			t.Errorf("chip %s: %v", chip, err)
		}
	}
}

func TestGPIOConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown driver", strings.Replace(lineYAML, "driver: sim", "driver: gpiod", 1),
			`gpio.driver "gpiod" is not supported (gpiocdev, periph or sim)`},
		{"chip not a chip", strings.Replace(lineYAML, "driver: sim", "driver: gpiocdev\n  chip: pinctrl-bcm2711", 1),
			`gpio.chip "pinctrl-bcm2711": want a name such as gpiochip0`},
		{"chip escaping /dev", strings.Replace(lineYAML, "driver: sim", "chip: /dev/../etc/passwd", 1), `gpio.chip "/dev/../etc/passwd"`},
		{"pin and line", strings.Replace(lineYAML, "line: GPIO17", "line: GPIO17\n    pin: 17", 1),
			"buttons[0]: pin and line are both set; give one"},
		{"neither pin nor line", strings.Replace(lineYAML, "    line: GPIO17\n", "", 1), "buttons[0].pin is required"},
		{"line twice", strings.Replace(lineYAML, "pin: 22", "line: GPIO17", 1), `leds[0].line "GPIO17" is already used by buttons[0]`},
		{"line with a space", strings.Replace(lineYAML, "line: GPIO17", "line: GPIO 17", 1), `buttons[0].line "GPIO 17": a line name is at most 31 characters, without spaces`},
		{"line too long", strings.Replace(lineYAML, "line: GPIO17", "line: "+strings.Repeat("X", 32), 1), "a line name is at most 31 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
	// Built in code, a line and a non-zero pin conflict too.
	c := testConfig(t, "tcp://127.0.0.1:1")
	c.Buttons[0].Line = "GPIO5"
	c.ApplyDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `buttons[0]: pin 17 and line "GPIO5" are both set`) {
		t.Fatalf("pin and line in code: %v", err)
	}
}

func TestSimLinesByName(t *testing.T) {
	cfg := testConfig(t, "tcp://127.0.0.1:1")
	cfg.Buttons[0].Pin, cfg.Buttons[0].Line = 0, "GPIO5"
	cfg.LEDs[0].Pin, cfg.LEDs[0].Line = 0, "GPIO6"
	d, err := New(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The admin API presses the simulated line by offset: the name must have been resolved.
	if got := d.buttons["darurat"].cfg.Pin; got != 5 {
		t.Fatalf("button on line GPIO5 has pin %d", got)
	}
	for _, offset := range []int{5, 6} {
		if _, err := d.sim.OpenIn(offset); !errors.Is(err, gpio.ErrBusy) {
			t.Errorf("line %d not held by the daemon: %v", offset, err)
		}
	}
	if _, err := d.sim.OpenIn(27); !errors.Is(err, gpio.ErrBusy) {
		t.Error("the button given by pin is not held")
	}
}

func TestStartErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
		is     error
	}{
		{"unknown line name", func(c *Config) { c.LEDs[0].Pin, c.LEDs[0].Line = 0, "LED_RED" },
			[]string{"open LED status", `line "LED_RED"`, "GPIO0 to GPIO53"}, gpio.ErrNoLine},
		{"same line by pin and by name", func(c *Config) { c.LEDs[0].Pin, c.LEDs[0].Line = 0, "GPIO17" },
			[]string{"open LED status", "line 17", "line busy"}, gpio.ErrBusy},
		{"line past the chip", func(c *Config) { c.Buttons[1].Pin = 60 },
			[]string{"open button kebakaran", "line 60"}, gpio.ErrNoLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "tcp://127.0.0.1:1")
			tc.change(&cfg)
			d, err := New(cfg, WithLogger(testLogger(t)))
			if err == nil {
				d.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			// The store was released: the kiosk can start again once the config is fixed.
			d, err = New(testConfigIn(t, cfg.Store.Dir), WithLogger(testLogger(t)))
			if err != nil {
				t.Fatalf("start after a failed start: %v", err)
			}
			d.Close()
		})
	}
}

func testConfigIn(t *testing.T, dir string) Config {
	c := testConfig(t, "tcp://127.0.0.1:1")
	c.Store.Dir = dir
	return c
}

// TestRealBackendsWithoutHardware: on a machine without GPIO (this one, and CI), the default
// backend fails at start with an error that names the chip, instead of a kiosk that runs without
// its buttons.
func TestRealBackendsWithoutHardware(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("gpiocdev is Linux only")
	}
	cfg := testConfig(t, "tcp://127.0.0.1:1")
	cfg.GPIO = GPIOConfig{Chip: "gpiochip977"}
	_, err := New(cfg, WithLogger(testLogger(t)))
	if !errors.Is(err, gpio.ErrNoChip) || !strings.Contains(err.Error(), "/dev/gpiochip977") || !strings.Contains(err.Error(), "gpiocdev") {
		t.Fatalf("missing chip: %v, want ErrNoChip naming /dev/gpiochip977 and the driver", err)
	}
	if len(cdev.Chips()) > 0 {
		t.Skip("this machine has GPIO chips; the periph check below needs one without")
	}
	cfg.GPIO = GPIOConfig{Driver: DriverPeriph}
	_, err = New(cfg, WithLogger(testLogger(t)))
	if !errors.Is(err, gpio.ErrNoChip) || !strings.Contains(err.Error(), "periph") {
		t.Fatalf("periph without pins: %v, want ErrNoChip", err)
	}
}

// TestExampleKioskConfig keeps docs/kentongand.example.yaml, whose pins docs/hardware.md's wiring
// table shows, loadable and on the pins the table gives.
func TestExampleKioskConfig(t *testing.T) {
	c, err := LoadConfig("../docs/kentongand.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.GPIO.driver() != DriverGPIOCDev || c.GPIO.Chip != DefaultGPIOChip {
		t.Fatalf("example GPIO %+v, want gpiocdev on %s", c.GPIO, DefaultGPIOChip)
	}
	pins := map[string]int{}
	for _, b := range c.Buttons {
		pins[b.Name] = b.Pin
	}
	for _, l := range c.LEDs {
		pins[l.Name] = l.Pin
	}
	// The wiring table in docs/hardware.md.
	want := map[string]int{"darurat": 17, "kebakaran": 27, "medis": 22, "tutup": 5, "status": 23, "gangguan": 24, "buzzer": 25}
	if len(pins) != len(want) {
		t.Fatalf("example has %v, the wiring table %v", pins, want)
	}
	for name, pin := range want {
		if got, ok := pins[name]; !ok || got != pin {
			t.Errorf("%s: example pin %d, wiring table GPIO%d", name, got, pin)
		}
	}
	doc, err := os.ReadFile("../docs/hardware.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, pin := range want {
		if !regexp.MustCompile(`(?m)^\| *` + "`" + name + "`" + `.*\| *GPIO` + strconv.Itoa(pin) + ` *\|`).Match(doc) {
			t.Errorf("docs/hardware.md has no wiring row for %s on GPIO%d", name, pin)
		}
	}
	if c.Modem.Device != "/dev/serial0" {
		t.Errorf("modem on %q, the wiring table on /dev/serial0", c.Modem.Device)
	}
}
