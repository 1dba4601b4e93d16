package provisioning

import (
	"errors"
	"fmt"
	"time"
)

// Protocol versions. A side speaks every version from its Min to its Version; the handshake
// settles on the highest both speak.
const (
	Version    = 1
	MinVersion = 1
)

// Hello opens a session (laptop → device).
type Hello struct {
	MinVersion int    `json:"min_version"`
	MaxVersion int    `json:"max_version"`
	Client     string `json:"client"` // "kentonganctl v…", for the device's log
}

// Hardware is the board's identity: the model from /proc/device-tree/model and the CPU serial
// from /proc/cpuinfo.
type Hardware struct {
	Board  string `json:"board"`
	Serial string `json:"serial"`
}

// Device states in HelloReply.
const (
	StateBlank       = "blank"       // never provisioned, or reset
	StateProvisioned = "provisioned" // holds a configuration and credentials
)

// HelloReply is the device's answer to Hello.
type HelloReply struct {
	Version  int      `json:"version"` // the version the session speaks
	Hardware Hardware `json:"hardware"`
	Firmware string   `json:"firmware"`
	State    string   `json:"state"`
	// DeviceID and Name are set when provisioned.
	DeviceID string `json:"device_id,omitempty"`
	Name     string `json:"name,omitempty"`
	// Reset: the kiosk was booted with its reset button held, so it takes credentials from any
	// hub, not only from the one that provisioned it.
	Reset bool `json:"reset,omitempty"`
	// FreeBytes is the free space where the device keeps its configuration; -1 if unknown.
	FreeBytes int64 `json:"free_bytes"`
}

// CSRReply carries the device's certificate request. The private key stays on the device; the
// same key is used again when the request is repeated, so a retried enrollment is recognised.
type CSRReply struct {
	CSRPEM string `json:"csr_pem"`
}

// Site is where the kiosk stands.
type Site struct {
	Kecamatan string  `json:"kecamatan"`
	Kelurahan string  `json:"kelurahan"`
	RW        string  `json:"rw"`
	RT        string  `json:"rt"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
}

// Button is one input of the kiosk's wiring.
type Button struct {
	Name     string `json:"name"`
	Category string `json:"category,omitempty"`
	Pin      int    `json:"pin"`
	Line     string `json:"line,omitempty"`
	HoldMS   int    `json:"hold_ms,omitempty"`
	Kind     string `json:"kind,omitempty"`
}

// LED is one output of the kiosk's wiring.
type LED struct {
	Name     string            `json:"name"`
	Pin      int               `json:"pin"`
	Line     string            `json:"line,omitempty"`
	Kind     string            `json:"kind,omitempty"`
	Patterns map[string]string `json:"patterns,omitempty"`
}

// Install is what the hub issued for the device, relayed by the laptop: the device stores it
// all, or nothing.
type Install struct {
	DeviceID  string   `json:"device_id"`
	Name      string   `json:"name"`
	Site      Site     `json:"site"`
	CertPEM   string   `json:"cert_pem"`
	CAPEM     string   `json:"ca_pem"`
	BrokerURL string   `json:"broker_url"`
	Buttons   []Button `json:"buttons"`
	LEDs      []LED    `json:"leds"`
	SMSAllow  []string `json:"sms_allow,omitempty"`
	// HeartbeatInterval in Go's duration text; empty keeps kentongand's default.
	HeartbeatInterval string `json:"heartbeat_interval,omitempty"`
}

// InstallReply says what the device did with an Install.
type InstallReply struct {
	// Unchanged: the device already held exactly these credentials (a repeated install).
	Unchanged bool `json:"unchanged,omitempty"`
}

// SelfTest starts the self-test (laptop → device).
type SelfTest struct {
	// PressTimeoutMS bounds the wait for each button press; 0 is the device's default.
	PressTimeoutMS int `json:"press_timeout_ms,omitempty"`
}

// Poll asks for the self-test's steps from index After on.
type Poll struct {
	After int `json:"after"`
}

// Step statuses.
const (
	StepRunning = "running"
	StepPrompt  = "prompt" // waiting for the technician: press Button
	StepOK      = "ok"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// Self-test step names.
const (
	StepLEDs     = "leds"
	StepButton   = "button"
	StepModem    = "modem"
	StepHub      = "hub"
	StepIncident = "test_incident"
)

// Event is one change of a self-test step. The same step (name and button) appears again when
// its status changes.
type Event struct {
	Step   string `json:"step"`
	Button string `json:"button,omitempty"`
	Status string `json:"status"`
	// Detail says what was found, in English, for the summary and the log ("signal -71 dBm").
	Detail string `json:"detail,omitempty"`
}

// PollReply carries the events from Poll.After on, and whether the self-test is over.
type PollReply struct {
	Events []Event `json:"events"`
	Done   bool    `json:"done"`
	// Passed is set once Done: every step passed or was skipped.
	Passed bool `json:"passed"`
}

// Error codes in ErrorReply.
const (
	CodeVersion     = "version"     // no protocol version in common
	CodeBadRequest  = "bad_request" // a request the device cannot read
	CodeProvisioned = "provisioned" // already provisioned: the hub or a reset must allow it
	CodeCredentials = "credentials" // the certificate does not fit the device's key or CA
	CodeConfig      = "config"      // the configuration is not valid for this kiosk
	CodeDiskFull    = "disk_full"   // no space to store the configuration
	CodeStorage     = "storage"     // another storage failure
	CodeState       = "state"       // a request out of order (a self-test before provisioning)
	CodeInternal    = "internal"    // anything else
	CodeUnsupported = "unsupported" // a request type the device does not know
	CodeBusy        = "busy"        // a self-test is already running
)

// ErrorReply is the payload of TypeError.
type ErrorReply struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Min and Max are the device's versions, with CodeVersion.
	Min int `json:"min,omitempty"`
	Max int `json:"max,omitempty"`
}

// Errors of a session.
var (
	// ErrNoAnswer: nothing at all came back.
	ErrNoAnswer = errors.New("no answer from the device")
	// ErrGarbage: bytes came back, but no frame: a wrong baud rate, or not a provisioning port.
	ErrGarbage = errors.New("garbage on the line")
	// ErrClosed: the line was closed or the cable pulled.
	ErrClosed = errors.New("line closed")
	// ErrRefused is wrapped by every *RemoteError.
	ErrRefused = errors.New("refused by the device")
)

// RemoteError is a request the device refused.
type RemoteError struct {
	Request Type
	ErrorReply
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s refused by the device (%s): %s", e.Request, e.Code, e.Message)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RemoteError) Unwrap() error { return ErrRefused }

// LineError says why a request got no answer, with what the line carried meanwhile.
type LineError struct {
	Request  Type
	Attempts int
	// Received and Skipped count the bytes that came back and those that were noise.
	Received, Skipped int64
	Err               error // ErrNoAnswer, ErrGarbage or ErrClosed, possibly wrapping the cause
}

func (e *LineError) Error() string {
	switch {
	case errors.Is(e.Err, ErrGarbage):
		return fmt.Sprintf("%s: %d attempts, %d bytes came back and none made a frame: %v", e.Request, e.Attempts, e.Received, e.Err)
	case errors.Is(e.Err, ErrNoAnswer):
		return fmt.Sprintf("%s: %d attempts, nothing came back: %v", e.Request, e.Attempts, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Request, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Timing of a session's requests.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultAttempts = 5
)
