package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/mqtt"
)

// Config is kentongand's configuration. docs/config.md describes every key.
type Config struct {
	DeviceID string       `yaml:"device_id"`
	Name     string       `yaml:"name"`
	Broker   BrokerConfig `yaml:"broker"`
	GPIO     GPIOConfig   `yaml:"gpio"`
	Buttons  []Button     `yaml:"buttons"`
	LEDs     []LED        `yaml:"leds"`
	Store    StoreConfig  `yaml:"store"`
	Admin    AdminConfig  `yaml:"admin"`
	Modem    ModemConfig  `yaml:"modem"`

	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	RetryInterval     time.Duration `yaml:"retry_interval"`
	// LEDDisplayTime is how long the newest incident's ticket status stays on the LEDs after it
	// last changed.
	LEDDisplayTime time.Duration `yaml:"led_display_time"`
}

// BrokerConfig says how to reach the hub's MQTT broker.
type BrokerConfig struct {
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile is the CA that signed the broker's certificate (PEM); without it the system's
	// roots are trusted. CertFile and KeyFile are the kiosk's own client certificate and key,
	// which the hub's device listener requires; provisioning writes all three.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// KeepAlive bounds how long a dead link goes unnoticed.
	KeepAlive time.Duration `yaml:"keepalive"`
	// ConnectRetryInterval is the wait between attempts while the first connection fails.
	ConnectRetryInterval time.Duration `yaml:"connect_retry_interval"`
	// MaxReconnectInterval caps the back-off between attempts after a connection is lost.
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
}

// GPIOConfig selects the pin backend. docs/hardware.md says which to use when.
type GPIOConfig struct {
	// Driver is DriverGPIOCDev (the default on Linux), DriverPeriph or DriverSim.
	Driver string `yaml:"driver"`
	// Chip is the GPIO character device whose offsets pin numbers are (gpiocdev only; default
	// DefaultGPIOChip). Lines given by name are looked for on every chip.
	Chip string `yaml:"chip"`
}

// GPIO drivers.
const (
	// DriverGPIOCDev is the Linux GPIO character device (/dev/gpiochipN).
	DriverGPIOCDev = "gpiocdev"
	// DriverPeriph is periph.io's host drivers, for boards where the character device is not
	// usable.
	DriverPeriph = "periph"
	// DriverSim is an in-memory chip whose buttons are pressed through the admin API.
	DriverSim = "sim"

	// DefaultGPIOChip is the chip of a Raspberry Pi's header pins.
	DefaultGPIOChip = "gpiochip0"
)

// Button is one panic button: a normally-open switch between a GPIO line and ground.
type Button struct {
	Name string `yaml:"name"`
	// Category is sent with the incident; empty leaves it to the 112 operator's triage.
	Category string `yaml:"category"`
	// Pin is the line's offset on gpio.chip (on a Raspberry Pi, the BCM number); Line, if set
	// instead, is the line's name ("GPIO17"), looked for on every chip.
	Pin        int    `yaml:"pin"`
	Line       string `yaml:"line"`
	HoldMS     int    `yaml:"hold_ms"`
	DebounceMS int    `yaml:"debounce_ms"`
	// Kind is KindButton, or KindTamper for the enclosure's tamper switch.
	Kind string `yaml:"kind"`
	// CancelWindowMS: a short press within this long of a raise cancels it. A pointer because an
	// explicit 0 (no cancelling) must differ from "not set" (the default).
	CancelWindowMS *int `yaml:"cancel_window_ms"`
	// StuckAfterMS: held this long, the button is reported as stuck rather than pressed.
	StuckAfterMS int `yaml:"stuck_after_ms"`
	// ChatterEdges edges within ChatterWindowMS mean a loose wire, not a finger; the input is
	// ignored until it has been quiet for ChatterQuietMS.
	ChatterEdges    int `yaml:"chatter_edges"`
	ChatterWindowMS int `yaml:"chatter_window_ms"`
	ChatterQuietMS  int `yaml:"chatter_quiet_ms"`
}

// Input kinds.
const (
	// KindButton is a panic button: a normally-open switch to ground, pressed while Low.
	KindButton = "button"
	// KindTamper is a tamper switch held closed by the shut enclosure: it reads Low while the
	// enclosure is shut, and High when it is opened or its wire is cut.
	KindTamper = "tamper"
)

// CancelWindow is how long after a raise a short press cancels it; 0 when cancelling is off.
func (b Button) CancelWindow() time.Duration {
	if b.CancelWindowMS == nil {
		return 0
	}
	return time.Duration(*b.CancelWindowMS) * time.Millisecond
}

// StuckAfter is how long a press lasts before the button is reported as stuck.
func (b Button) StuckAfter() time.Duration { return time.Duration(b.StuckAfterMS) * time.Millisecond }

// ChatterWindow is the period in which ChatterEdges edges mean chatter.
func (b Button) ChatterWindow() time.Duration {
	return time.Duration(b.ChatterWindowMS) * time.Millisecond
}

// ChatterQuiet is how long a chattering input must stay still before it counts again.
func (b Button) ChatterQuiet() time.Duration {
	return time.Duration(b.ChatterQuietMS) * time.Millisecond
}

// Hold is how long the button must stay pressed to raise an incident.
func (b Button) Hold() time.Duration { return time.Duration(b.HoldMS) * time.Millisecond }

// Debounce is how long a level must be stable before it counts.
func (b Button) Debounce() time.Duration { return time.Duration(b.DebounceMS) * time.Millisecond }

// LED is one status LED or buzzer, driven active-high, and the pattern it shows in each state.
type LED struct {
	Name string `yaml:"name"`
	// Pin or Line: as for Button.
	Pin      int               `yaml:"pin"`
	Line     string            `yaml:"line"`
	Patterns map[string]string `yaml:"patterns"`
	// Kind is KindLED or KindBuzzer; it chooses the default patterns.
	Kind string `yaml:"kind"`
}

// Output kinds.
const (
	KindLED    = "led"
	KindBuzzer = "buzzer"
)

// StoreConfig says where the outbox lives.
type StoreConfig struct {
	Dir string `yaml:"dir"`
}

// AdminConfig is the loopback-only HTTP endpoint.
type AdminConfig struct {
	Listen string `yaml:"listen"`
}

// Defaults.
const (
	DefaultAdminListen          = "127.0.0.1:8081"
	DefaultHeartbeatInterval    = 30 * time.Second
	DefaultRetryInterval        = 15 * time.Second
	DefaultLEDDisplayTime       = 10 * time.Minute
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectRetryInterval = 5 * time.Second
	DefaultMaxReconnectInterval = 10 * time.Second
	DefaultHoldMS               = 2000
	DefaultDebounceMS           = 30
	DefaultCancelWindowMS       = 30_000
	DefaultStuckAfterMS         = 120_000
	DefaultChatterEdges         = 20
	DefaultChatterWindowMS      = 2000
	DefaultChatterQuietMS       = 5000

	maxHoldMS         = 60_000
	maxName           = 64
	maxCancelWindowMS = 600_000
	maxStuckAfterMS   = 86_400_000
	maxChatterEdges   = 1000
	maxChatterMS      = 600_000
)

// LED states, in the order the display prefers them: see deriveState.
const (
	StateFault        = "fault"
	StatePressing     = "pressing"
	StatePending      = "pending"
	StateReceived     = "received"
	StateAcknowledged = "acknowledged"
	StateDispatched   = "dispatched"
	StateResolved     = "resolved"
	StateIdle         = "idle"
	StateOffline      = "offline"
)

// LED patterns.
const (
	PatternOff       = "off"
	PatternSolid     = "solid"
	PatternSlowBlink = "slow_blink"
	PatternFastBlink = "fast_blink"
	PatternHeartbeat = "heartbeat"
	// PatternChirp is one 100 ms pulse when the state is entered, then off: for a buzzer.
	PatternChirp = "chirp"
)

// DefaultPatterns is what an LED shows in each state unless its config says otherwise. With a
// single LED some states must share a pattern; the split chosen is the one a resident needs:
// dark means the kiosk cannot reach 112, fast blinking means "not yet with 112", slow blinking
// "112 has it", solid "someone is on it".
func DefaultPatterns() map[string]string {
	return map[string]string{
		StateIdle:         PatternHeartbeat,
		StateOffline:      PatternOff,
		StatePressing:     PatternSolid,
		StatePending:      PatternFastBlink,
		StateReceived:     PatternSlowBlink,
		StateAcknowledged: PatternSolid,
		StateDispatched:   PatternSolid,
		StateResolved:     PatternHeartbeat,
		StateFault:        PatternFastBlink,
	}
}

// DefaultBuzzerPatterns is what a buzzer sounds unless its config says otherwise: a chirp when
// a press starts, so the resident knows the button works, and one when 112 has the report;
// silence otherwise, because a kiosk that beeps for hours gets its buzzer cut out.
func DefaultBuzzerPatterns() map[string]string {
	p := DefaultPatterns()
	for state := range p {
		p[state] = PatternOff
	}
	p[StatePressing] = PatternChirp
	p[StateReceived] = PatternChirp
	return p
}

func knownPattern(p string) bool {
	switch p {
	case PatternOff, PatternSolid, PatternSlowBlink, PatternFastBlink, PatternHeartbeat, PatternChirp:
		return true
	}
	return false
}

// Defaults returns a Config with every defaulted key set, for building a configuration in code.
// The required keys (device_id, broker.url, store.dir) are left empty; gpio.driver defaults to gpiocdev.
func Defaults() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every unset key that has a default, including those of buttons and LEDs.
func (c *Config) ApplyDefaults() {
	if c.Name == "" {
		c.Name = c.DeviceID
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	c.Modem.applyDefaults()
	setDur(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	setDur(&c.RetryInterval, DefaultRetryInterval)
	setDur(&c.LEDDisplayTime, DefaultLEDDisplayTime)
	setDur(&c.Broker.KeepAlive, DefaultKeepAlive)
	setDur(&c.Broker.ConnectRetryInterval, DefaultConnectRetryInterval)
	setDur(&c.Broker.MaxReconnectInterval, DefaultMaxReconnectInterval)
	for i := range c.Buttons {
		b := &c.Buttons[i]
		if b.HoldMS == 0 {
			b.HoldMS = DefaultHoldMS
		}
		if b.DebounceMS == 0 {
			b.DebounceMS = DefaultDebounceMS
		}
		b.applyDefaults()
	}
	for i := range c.LEDs {
		l := &c.LEDs[i]
		if l.Kind == "" {
			l.Kind = KindLED
		}
		p := DefaultPatterns()
		if l.Kind == KindBuzzer {
			p = DefaultBuzzerPatterns()
		}
		maps.Copy(p, l.Patterns)
		l.Patterns = p
	}
}

// Validate checks a configuration whose defaults have been applied. Errors name the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.DeviceID == "" {
		bad("device_id is required")
	} else if err := mqtt.ValidateDeviceID(c.DeviceID); err != nil {
		bad("device_id: %w", err)
	}

	switch u, err := url.Parse(c.Broker.URL); {
	case c.Broker.URL == "":
		bad("broker.url is required")
	case err != nil:
		bad("broker.url: %w", err)
	case !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme):
		bad("broker.url %q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", c.Broker.URL)
	case u.Host == "":
		bad("broker.url %q: no host", c.Broker.URL)
	}
	if c.Broker.Password != "" && c.Broker.Username == "" {
		bad("broker.password is set but broker.username is not")
	}
	if _, err := c.Broker.tlsConfig(); err != nil {
		bad("%w", err)
	}

	switch c.GPIO.Driver {
	case DriverGPIOCDev, DriverPeriph, DriverSim:
	case "":
		if err := defaultDriverUsable(); err != nil {
			bad("gpio.driver is required here: %w", err)
		}
	default:
		bad("gpio.driver %q is not supported (%s, %s or %s)", c.GPIO.Driver, DriverGPIOCDev, DriverPeriph, DriverSim)
	}
	if ch := c.GPIO.Chip; ch != "" && !validChipName(ch) {
		bad("gpio.chip %q: want a name such as %s or a path under /dev/", ch, DefaultGPIOChip)
	}

	if c.Store.Dir == "" {
		bad("store.dir is required")
	}
	c.Modem.validate(bad)
	if err := checkLoopback(c.Admin.Listen); err != nil {
		bad("admin.listen %q: %w", c.Admin.Listen, err)
	}

	for key, d := range map[string]time.Duration{
		"heartbeat_interval":            c.HeartbeatInterval,
		"retry_interval":                c.RetryInterval,
		"led_display_time":              c.LEDDisplayTime,
		"broker.keepalive":              c.Broker.KeepAlive,
		"broker.connect_retry_interval": c.Broker.ConnectRetryInterval,
		"broker.max_reconnect_interval": c.Broker.MaxReconnectInterval,
	} {
		if d <= 0 {
			bad("%s must be positive, not %s", key, d)
		}
	}
	if c.Broker.KeepAlive > 0 && c.Broker.KeepAlive < time.Second {
		bad("broker.keepalive must be at least 1s (MQTT counts it in seconds)")
	}

	pins := map[int]string{}
	usePin := func(key string, pin int) {
		if pin < 0 {
			bad("%s.pin must not be negative", key)
			return
		}
		if other, ok := pins[pin]; ok {
			bad("%s.pin %d is already used by %s", key, pin, other)
			return
		}
		pins[pin] = key
	}
	lines := map[string]string{}
	useLine := func(key string, pin int, line string) {
		if line == "" {
			usePin(key, pin)
			return
		}
		switch {
		case pin != 0:
			bad("%s: pin %d and line %q are both set; give one", key, pin, line)
		case !validLineName(line):
			bad("%s.line %q: a line name is at most %d characters, without spaces", key, line, maxLineName)
		case lines[line] != "":
			bad("%s.line %q is already used by %s", key, line, lines[line])
		default:
			lines[line] = key
		}
	}
	names := map[string]bool{}
	for i, b := range c.Buttons {
		key := fmt.Sprintf("buttons[%d]", i)
		if err := checkName(b.Name); err != nil {
			bad("%s.name: %w", key, err)
		} else if names[b.Name] {
			bad("%s.name %q is used twice", key, b.Name)
		}
		names[b.Name] = true
		if b.Category != "" {
			if err := checkName(b.Category); err != nil {
				bad("%s.category: %w", key, err)
			}
		}
		useLine(key, b.Pin, b.Line)
		if b.HoldMS <= 0 || b.HoldMS > maxHoldMS {
			bad("%s.hold_ms must be between 1 and %d, not %d", key, maxHoldMS, b.HoldMS)
		}
		if b.DebounceMS < 0 || (b.HoldMS > 0 && b.DebounceMS >= b.HoldMS) {
			bad("%s.debounce_ms must be between 0 and hold_ms, not %d", key, b.DebounceMS)
		}
		b.validate(key, bad)
	}
	ledNames := map[string]bool{}
	for i, l := range c.LEDs {
		key := fmt.Sprintf("leds[%d]", i)
		if err := checkName(l.Name); err != nil {
			bad("%s.name: %w", key, err)
		} else if ledNames[l.Name] {
			bad("%s.name %q is used twice", key, l.Name)
		}
		ledNames[l.Name] = true
		if l.Kind != KindLED && l.Kind != KindBuzzer {
			bad("%s.kind %q is not %q or %q", key, l.Kind, KindLED, KindBuzzer)
		}
		useLine(key, l.Pin, l.Line)
		defaults := DefaultPatterns()
		for _, state := range slices.Sorted(maps.Keys(l.Patterns)) {
			if _, ok := defaults[state]; !ok {
				bad("%s.patterns: unknown state %q (known: %s)", key, state, strings.Join(slices.Sorted(maps.Keys(defaults)), ", "))
			}
			if p := l.Patterns[state]; !knownPattern(p) {
				bad("%s.patterns.%s: unknown pattern %q (known: off, solid, slow_blink, fast_blink, heartbeat, chirp)", key, state, p)
			}
		}
	}
	// Sorted so that the same mistakes always read the same way.
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// applyDefaults fills the semantic keys of a button that have defaults.
func (b *Button) applyDefaults() {
	if b.Kind == "" {
		b.Kind = KindButton
	}
	if b.CancelWindowMS == nil {
		w := DefaultCancelWindowMS
		b.CancelWindowMS = &w
	}
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&b.StuckAfterMS, DefaultStuckAfterMS},
		{&b.ChatterEdges, DefaultChatterEdges},
		{&b.ChatterWindowMS, DefaultChatterWindowMS},
		{&b.ChatterQuietMS, DefaultChatterQuietMS},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
}

// validate checks the semantic keys of a button whose defaults have been applied.
func (b *Button) validate(key string, bad func(format string, args ...any)) {
	if b.Kind != KindButton && b.Kind != KindTamper {
		bad("%s.kind %q is not %q or %q", key, b.Kind, KindButton, KindTamper)
	}
	if w := b.CancelWindowMS; w != nil && (*w < 0 || *w > maxCancelWindowMS) {
		bad("%s.cancel_window_ms must be between 0 (off) and %d, not %d", key, maxCancelWindowMS, *w)
	}
	// A button is stuck only once a press could have raised its incident: a shorter limit would
	// make every real press a fault.
	if b.StuckAfterMS <= b.HoldMS || b.StuckAfterMS > maxStuckAfterMS {
		bad("%s.stuck_after_ms must be above hold_ms (%d) and at most %d, not %d", key, b.HoldMS, maxStuckAfterMS, b.StuckAfterMS)
	}
	// A press and its release are two edges, and a bounce or two more: fewer than four edges
	// could not tell a finger from a loose wire.
	if b.ChatterEdges < 4 || b.ChatterEdges > maxChatterEdges {
		bad("%s.chatter_edges must be between 4 and %d, not %d", key, maxChatterEdges, b.ChatterEdges)
	}
	if b.ChatterWindowMS <= 0 || b.ChatterWindowMS > maxChatterMS {
		bad("%s.chatter_window_ms must be between 1 and %d, not %d", key, maxChatterMS, b.ChatterWindowMS)
	}
	if b.ChatterQuietMS <= 0 || b.ChatterQuietMS > maxChatterMS {
		bad("%s.chatter_quiet_ms must be between 1 and %d, not %d", key, maxChatterMS, b.ChatterQuietMS)
	}
}

// checkName accepts the names that are safe in an admin URL, a log line and an incident payload.
func checkName(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	if len(s) > maxName {
		return fmt.Errorf("%q is longer than %d characters", s, maxName)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q: only lower-case a-z, 0-9, '-' and '_' are allowed", s)
		}
	}
	return nil
}

var errNotLoopback = errors.New("must be a loopback address such as 127.0.0.1:8081: the admin endpoint can press buttons")

func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errNotLoopback
	}
	return nil
}

// LoadConfig reads, defaults and validates a YAML configuration file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := parseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func parseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("file is empty")
		}
		return Config{}, err
	}
	// Pin 0 is a real line, so a missing pin cannot be told from pin 0 after decoding; look again.
	type pinOrLine struct {
		Pin  *int    `yaml:"pin"`
		Line *string `yaml:"line"`
	}
	var presence struct {
		Buttons []pinOrLine `yaml:"buttons"`
		LEDs    []pinOrLine `yaml:"leds"`
	}
	if err := yaml.Unmarshal(data, &presence); err != nil {
		return Config{}, err
	}
	var missing []error
	checkPresence := func(key string, p pinOrLine) {
		switch {
		case p.Pin == nil && p.Line == nil:
			missing = append(missing, fmt.Errorf("%s.pin is required (or .line, the line's name)", key))
		case p.Pin != nil && p.Line != nil:
			missing = append(missing, fmt.Errorf("%s: pin and line are both set; give one", key))
		}
	}
	for i, b := range presence.Buttons {
		checkPresence(fmt.Sprintf("buttons[%d]", i), b)
	}
	for i, l := range presence.LEDs {
		checkPresence(fmt.Sprintf("leds[%d]", i), l)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		missing = append(missing, err)
	}
	if err := errors.Join(missing...); err != nil {
		return Config{}, err
	}
	return c, nil
}
