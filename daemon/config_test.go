package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const minimalYAML = `
device_id: ciakar-rw03
broker:
  url: tcp://127.0.0.1:1883
gpio:
  driver: sim
store:
  dir: /var/lib/kentongand
buttons:
  - name: darurat
    pin: 17
leds:
  - name: status
    pin: 22
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kentongand.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Listen != "127.0.0.1:8081" || c.HeartbeatInterval != 30*time.Second ||
		c.RetryInterval != 15*time.Second || c.LEDDisplayTime != 10*time.Minute {
		t.Errorf("top-level defaults not applied: %+v", c)
	}
	if c.Broker.MaxReconnectInterval != 10*time.Second || c.Broker.KeepAlive != 30*time.Second {
		t.Errorf("broker defaults not applied: %+v", c.Broker)
	}
	if b := c.Buttons[0]; b.HoldMS != 2000 || b.DebounceMS != 30 || b.Category != "" || b.Pin != 17 {
		t.Errorf("button defaults not applied: %+v", b)
	}
	if p := c.LEDs[0].Patterns; p[StatePending] != PatternFastBlink || p[StateOffline] != PatternOff || len(p) != len(DefaultPatterns()) {
		t.Errorf("LED default patterns not applied: %v", p)
	}
	if c.Name != "ciakar-rw03" {
		t.Errorf("name defaults to %q, want the device id", c.Name)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	del := func(key string) string {
		return regexp.MustCompile(`(?m)^\s*`+regexp.QuoteMeta(key)+`:.*\n`).ReplaceAllString(minimalYAML, "")
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"device_id missing", del("device_id"), "device_id is required"},
		{"device_id invalid", strings.Replace(minimalYAML, "ciakar-rw03", "Ciakar RW03", 1), "device_id: invalid device id"},
		{"broker.url missing", del("url"), "broker.url is required"},
		{"broker.url scheme", strings.Replace(minimalYAML, "tcp://", "http://", 1), "broker.url"},
		{"gpio.driver other", strings.Replace(minimalYAML, "driver: sim", "driver: gpiod", 1), `gpio.driver "gpiod" is not supported`},
		{"store.dir missing", del("dir"), "store.dir is required"},
		{"button pin missing", strings.Replace(minimalYAML, "    pin: 17\n", "", 1), "buttons[0].pin is required"},
		{"led pin missing", strings.Replace(minimalYAML, "    pin: 22\n", "", 1), "leds[0].pin is required"},
		{"pin used twice", strings.Replace(minimalYAML, "pin: 22", "pin: 17", 1), "leds[0].pin 17 is already used by buttons[0]"},
		{"category upper case", strings.Replace(minimalYAML, "pin: 17", "pin: 17\n    category: Fire", 1), "buttons[0].category"},
		{"hold too long", strings.Replace(minimalYAML, "pin: 17", "pin: 17\n    hold_ms: 90000", 1), "buttons[0].hold_ms"},
		{"unknown LED state", strings.Replace(minimalYAML, "pin: 22", "pin: 22\n    patterns: {panic: solid}", 1), `leds[0].patterns: unknown state "panic"`},
		{"unknown pattern", strings.Replace(minimalYAML, "pin: 22", "pin: 22\n    patterns: {idle: disco}", 1), `leds[0].patterns.idle: unknown pattern "disco"`},
		{"admin on all interfaces", minimalYAML + "admin:\n  listen: 0.0.0.0:8081\n", `admin.listen "0.0.0.0:8081": must be a loopback address`},
		{"admin without host", minimalYAML + "admin:\n  listen: :8081\n", `admin.listen ":8081": must be a loopback address`},
		{"admin on a LAN address", minimalYAML + "admin:\n  listen: 192.168.1.10:8081\n", "must be a loopback address"},
		{"negative interval", minimalYAML + "retry_interval: -1s\n", "retry_interval must be positive"},
		{"duration without unit", minimalYAML + "heartbeat_interval: 30\n", "into time.Duration"},
		{"unknown key", minimalYAML + "heartbeat: 30s\n", "field heartbeat not found"},
		{"unknown nested key", strings.Replace(minimalYAML, "pin: 17", "pin: 17\n    colour: red", 1), "field colour not found"},
		{"empty file", "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.yaml)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "config "+path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant prefix %q and %q", err, "config "+path+": ", tc.want)
			}
		})
	}
}

func TestLoadConfigExactMessage(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimalYAML, "device_id: ciakar-rw03\n", "", 1))
	_, err := LoadConfig(path)
	if err == nil || err.Error() != "config "+path+": device_id is required" {
		t.Fatalf("got %v", err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("unreadable file: %v", err)
	}
}

func TestLocalhostAdminAccepted(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8081", "[::1]:8081", "localhost:0", "127.0.0.2:9000"} {
		c := Defaults()
		c.DeviceID, c.Broker.URL, c.GPIO.Driver, c.Store.Dir = "x", "tcp://h:1883", DriverSim, "/tmp/x"
		c.Admin.Listen = addr
		if err := c.Validate(); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
}

// TestDocumentedExample keeps docs/config.md honest: its full example must load.
func TestDocumentedExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no yaml example in docs/config.md")
	}
	c, err := LoadConfig(writeConfig(t, string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "ciakar-rw03" || len(c.Buttons) != 3 || len(c.LEDs) != 1 {
		t.Fatalf("example is not the Ciakar kiosk: %+v", c)
	}
	cats := map[string]string{}
	for _, b := range c.Buttons {
		cats[b.Name] = b.Category
	}
	if cats["darurat"] != "" || cats["kebakaran"] != "fire" || cats["medis"] != "medical" {
		t.Fatalf("example categories %v", cats)
	}
}
