package daemon

import (
	"time"

	"github.com/kentongan/kentongan/daemon/report"
)

// ModemConfig is the GSM modem through which RT/RW heads text reports to the kiosk. With no
// device the kiosk has no modem, and the rest of this section is ignored.
type ModemConfig struct {
	// Device is the modem's serial port: /dev/serial0 for a modem on the Pi's UART, /dev/ttyUSB0
	// or a /dev/serial/by-id/… path for a USB modem.
	Device string `yaml:"device"`
	Baud   int    `yaml:"baud"`
	// PIN is entered once if the SIM asks for it. A wrong PIN stops the modem with a fault rather
	// than being tried again: three wrong tries lock the SIM.
	PIN string `yaml:"pin"`
	// PowerPin, if set, is a GPIO output that switches the modem's power (or pulses its PWRKEY);
	// the kiosk cycles it when the modem stops answering and reopening the port does not help.
	PowerPin *int `yaml:"power_pin"`
	// Allow lists the numbers of the post's RT/RW heads. Numbers may be written +62…, 62… or 08….
	Allow []string `yaml:"allow"`
	// UnknownSenders says what happens to an SMS from a number not on Allow: "unverified" raises
	// it as a report marked unverified, "instruct" answers with instructions and raises nothing.
	UnknownSenders string `yaml:"unknown_senders"`
	// RateBurst and RateEvery bound each sender: RateBurst messages at once, then one per
	// RateEvery. Beyond it an unknown sender's messages are dropped (logged and counted); an
	// allowed sender's reports are still raised, but they get no more replies.
	RateBurst int           `yaml:"rate_burst"`
	RateEvery time.Duration `yaml:"rate_every"`
	// ReassemblyTimeout is how long the parts of a long SMS are awaited before what arrived is
	// raised as it is.
	ReassemblyTimeout time.Duration `yaml:"reassembly_timeout"`
	// Lang is the language of the kiosk's own replies (help, instructions): "id" or "en".
	Lang string `yaml:"lang"`
	// CommandTimeout bounds an AT command (sending an SMS has its own, longer bound).
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// HealthInterval is how often signal, registration and SIM storage are polled.
	HealthInterval time.Duration `yaml:"health_interval"`
}

// Unknown-sender policies.
const (
	UnknownUnverified = "unverified"
	UnknownInstruct   = "instruct"
)

// Modem defaults.
const (
	DefaultModemBaud         = 115200
	DefaultRateBurst         = 5
	DefaultRateEvery         = 2 * time.Minute
	DefaultReassemblyTimeout = 5 * time.Minute
	DefaultCommandTimeout    = 5 * time.Second
	DefaultHealthInterval    = 30 * time.Second
)

// Enabled reports whether the kiosk has a modem.
func (m ModemConfig) Enabled() bool { return m.Device != "" }

func (m *ModemConfig) applyDefaults() {
	if m.Baud == 0 {
		m.Baud = DefaultModemBaud
	}
	if m.UnknownSenders == "" {
		m.UnknownSenders = UnknownUnverified
	}
	if m.RateBurst == 0 {
		m.RateBurst = DefaultRateBurst
	}
	if m.RateEvery == 0 {
		m.RateEvery = DefaultRateEvery
	}
	if m.ReassemblyTimeout == 0 {
		m.ReassemblyTimeout = DefaultReassemblyTimeout
	}
	if m.Lang == "" {
		m.Lang = "id"
	}
	if m.CommandTimeout == 0 {
		m.CommandTimeout = DefaultCommandTimeout
	}
	if m.HealthInterval == 0 {
		m.HealthInterval = DefaultHealthInterval
	}
}

func (m *ModemConfig) validate(bad func(format string, args ...any)) {
	if !m.Enabled() {
		return
	}
	if m.Baud <= 0 {
		bad("modem.baud must be positive, not %d", m.Baud)
	}
	for i, n := range m.Allow {
		if _, err := report.NormalizeNumber(n); err != nil {
			bad("modem.allow[%d] %q: %w", i, n, err)
		}
	}
	if m.UnknownSenders != UnknownUnverified && m.UnknownSenders != UnknownInstruct {
		bad("modem.unknown_senders must be %q or %q, not %q", UnknownUnverified, UnknownInstruct, m.UnknownSenders)
	}
	if m.RateBurst < 1 {
		bad("modem.rate_burst must be at least 1, not %d", m.RateBurst)
	}
	if m.Lang != "id" && m.Lang != "en" {
		bad("modem.lang must be \"id\" or \"en\", not %q", m.Lang)
	}
	for key, d := range map[string]time.Duration{
		"modem.rate_every": m.RateEvery, "modem.reassembly_timeout": m.ReassemblyTimeout,
		"modem.command_timeout": m.CommandTimeout, "modem.health_interval": m.HealthInterval,
	} {
		if d <= 0 {
			bad("%s must be positive, not %s", key, d)
		}
	}
	if m.PowerPin != nil && *m.PowerPin < 0 {
		bad("modem.power_pin must not be negative")
	}
}
