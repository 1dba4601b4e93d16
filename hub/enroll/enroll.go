// Package enroll is how a kiosk becomes a device the hub trusts: one-time enrollment tokens
// that an administrator scopes to a site, the persisted device registry with each device's
// hardware identity, firmware and provisioning history, the hub's own certificate authority
// that signs each device's client certificate, revocation, and re-provisioning after an
// administrator allows it.
//
// The wire contract of POST /api/v1/enroll (Request, Response, ErrorBody) is here so that the
// laptop side of provisioning (kentonganctl provision) and the hub share one definition.
// hub/sqlite stores the registry (Store); Service is the logic; hub/http serves it.
package enroll

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// EnrollPath is the enrollment endpoint. It is authenticated by the enrollment token in the
// request body, not by a user's session or API token.
const EnrollPath = "/api/v1/enroll"

// Hardware is a kiosk's hardware identity as the device reports it: the board model (from
// /proc/device-tree/model) and the CPU serial (from /proc/cpuinfo). The pair names one board.
type Hardware struct {
	Board  string `json:"board"`
	Serial string `json:"serial"`
}

func (h Hardware) String() string { return h.Board + " serial " + h.Serial }

// Request is the body of POST /api/v1/enroll, sent by kentonganctl provision on the device's
// behalf. The device's private key never leaves it: only its CSR does.
type Request struct {
	Token    string   `json:"token"`
	Hardware Hardware `json:"hardware"`
	Firmware string   `json:"firmware"`
	// CSRPEM is a PEM "CERTIFICATE REQUEST" signed by the device's key (ECDSA P-256
	// recommended). Its subject is ignored: the hub names the device.
	CSRPEM string `json:"csr_pem"`
	// Site, if given, is what the technician was told to set up (kentonganctl provision
	// --site): its kecamatan, kelurahan, RW and RT must match the token's site, so that a token
	// for one post is not spent at another by mistake. Non-zero Lat and Lon measured on the
	// spot replace the token's coordinates.
	Site *hub.Site `json:"site,omitempty"`
}

// Response is the answer to a successful enrollment (200). A retry with the same token, the
// same hardware and the same CSR public key after a lost answer gets the same device and the
// same certificate.
type Response struct {
	DeviceID string   `json:"device_id"`
	Name     string   `json:"name"`
	Site     hub.Site `json:"site"`
	// CertPEM is the device's client certificate, signed by the hub's CA; CAPEM is that CA,
	// which the device uses to verify the broker's server certificate.
	CertPEM string `json:"cert_pem"`
	CAPEM   string `json:"ca_pem"`
	// BrokerURL is the device listener: mqtts://host:port, TLS with client certificates.
	BrokerURL string       `json:"broker_url"`
	Config    DeviceConfig `json:"config"`
}

// DeviceConfig is the kiosk's operational configuration that the hub hands out: the wiring
// and timings the device's kentongand config is made from.
type DeviceConfig struct {
	Buttons []Button `json:"buttons"`
	LEDs    []LED    `json:"leds"`
	// SMSAllow are the RT/RW heads' numbers (modem.allow in kentongand's config).
	SMSAllow []string `json:"sms_allow"`
	// SupervisionInterval is how long the hub lets the kiosk be silent before raising
	// kiosk_offline; HeartbeatInterval (kentongand's heartbeat_interval) is well within it.
	SupervisionInterval Duration `json:"supervision_interval"`
	HeartbeatInterval   Duration `json:"heartbeat_interval"`
}

// Button is one panic button or tamper switch, as in kentongand's config "buttons".
type Button struct {
	Name     string `json:"name" yaml:"name"`
	Category string `json:"category,omitempty" yaml:"category"`
	Pin      int    `json:"pin" yaml:"pin"`
	Line     string `json:"line,omitempty" yaml:"line"`
	HoldMS   int    `json:"hold_ms,omitempty" yaml:"hold_ms"`
	Kind     string `json:"kind,omitempty" yaml:"kind"` // "button" (default) or "tamper"
}

// LED is one status LED or buzzer, as in kentongand's config "leds".
type LED struct {
	Name     string            `json:"name" yaml:"name"`
	Pin      int               `json:"pin" yaml:"pin"`
	Line     string            `json:"line,omitempty" yaml:"line"`
	Kind     string            `json:"kind,omitempty" yaml:"kind"` // "led" (default) or "buzzer"
	Patterns map[string]string `json:"patterns,omitempty" yaml:"patterns"`
}

// Duration is a time.Duration written in JSON as Go's duration text ("30s", "1m30s").
type Duration time.Duration

// MarshalText writes the duration as "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Reasons say why an enrollment was refused, in ErrorBody's "reason"; each has a sentinel
// error below, which *Error matches with errors.Is.
const (
	ReasonTokenUnknown       = "token_unknown"       // 401: no such token (mistyped?)
	ReasonTokenExpired       = "token_expired"       // 401: ask the administrator for a new one
	ReasonTokenUsed          = "token_used"          // 409: spent on another device
	ReasonTokenRevoked       = "token_revoked"       // 401: the administrator withdrew it
	ReasonSiteMismatch       = "site_mismatch"       // 409: the token is for another post
	ReasonAlreadyProvisioned = "already_provisioned" // 409: this board is a device already, and no re-provisioning was allowed
	ReasonDeviceRevoked      = "device_revoked"      // 409: this board's device was revoked, and no re-provisioning was allowed
	ReasonBadCSR             = "bad_csr"             // 400: the CSR is not valid or not signed by its key
	ReasonBadRequest         = "bad_request"         // 400: a missing or malformed field
	ReasonEnrollmentDisabled = "enrollment_disabled" // 503: this hub cannot issue credentials
	ReasonTooMany            = "too_many"            // 429: too many refused attempts from this address
)

// Sentinel errors, one per reason.
var (
	ErrTokenUnknown       = errors.New("enrollment token unknown")
	ErrTokenExpired       = errors.New("enrollment token expired")
	ErrTokenUsed          = errors.New("enrollment token already used")
	ErrTokenRevoked       = errors.New("enrollment token revoked")
	ErrSiteMismatch       = errors.New("enrollment token is for another site")
	ErrAlreadyProvisioned = errors.New("device already provisioned")
	ErrDeviceRevoked      = errors.New("device revoked")
	ErrBadCSR             = errors.New("bad certificate request")
	ErrBadRequest         = errors.New("bad enrollment request")
	ErrDisabled           = errors.New("enrollment disabled")
)

var reasonErrs = map[string]error{
	ReasonTokenUnknown: ErrTokenUnknown, ReasonTokenExpired: ErrTokenExpired, ReasonTokenUsed: ErrTokenUsed,
	ReasonTokenRevoked: ErrTokenRevoked, ReasonSiteMismatch: ErrSiteMismatch,
	ReasonAlreadyProvisioned: ErrAlreadyProvisioned, ReasonDeviceRevoked: ErrDeviceRevoked,
	ReasonBadCSR: ErrBadCSR, ReasonBadRequest: ErrBadRequest, ReasonEnrollmentDisabled: ErrDisabled,
}

// ErrorBody is the JSON of a refused enrollment: the API's usual error shape with a reason.
//
//	{"error": {"code": "unauthorized", "reason": "token_expired", "message": "..."}}
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Reason  string `json:"reason,omitempty"`
		Message string `json:"message"`
	} `json:"error"`
}

// Error is a refused enrollment, on the hub (where Service returns it) and in the client
// (where Client.Enroll decodes it). errors.Is matches it to the sentinel of its Reason.
type Error struct {
	Status  int    // HTTP status; 0 on the hub side, before it is answered
	Code    string // hub.Code*
	Reason  string // Reason*
	Message string // for the technician
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("enrollment refused (%d %s): %s", e.Status, e.Reason, e.Message)
	}
	return "enrollment refused (" + e.Reason + "): " + e.Message
}

// Is matches the sentinel of e's reason.
func (e *Error) Is(target error) bool {
	s, ok := reasonErrs[e.Reason]
	return ok && s == target
}

// HubError is e as the hub's *hub.Error, for the API's status mapping.
func (e *Error) HubError() *hub.Error { return &hub.Error{Code: e.Code, Message: e.Message, Err: e} }

func refuse(reason, format string, args ...any) *Error {
	code := hub.CodeInvalid
	switch reason {
	case ReasonTokenUnknown, ReasonTokenExpired, ReasonTokenRevoked:
		code = hub.CodeUnauthorized
	case ReasonTokenUsed, ReasonSiteMismatch, ReasonAlreadyProvisioned, ReasonDeviceRevoked:
		code = hub.CodeConflict
	case ReasonEnrollmentDisabled:
		code = hub.CodeUnavailable
	}
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ParseSite reads a site written as "kecamatan/kelurahan/RW/RT", e.g.
// "Panongan/Ciakar/03/02", the form kentonganctl's --site flags take. RW and RT are kept as
// written, minus blanks; coordinates are left zero.
func ParseSite(s string) (hub.Site, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return hub.Site{}, fmt.Errorf("site %q: write it as kecamatan/kelurahan/RW/RT, e.g. Panongan/Ciakar/03/02", s)
	}
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			return hub.Site{}, fmt.Errorf("site %q: part %d of kecamatan/kelurahan/RW/RT is empty", s, i+1)
		}
	}
	return hub.Site{Kecamatan: parts[0], Kelurahan: parts[1], RW: parts[2], RT: parts[3]}, nil
}

// FormatSite is ParseSite's inverse.
func FormatSite(s hub.Site) string { return s.Kecamatan + "/" + s.Kelurahan + "/" + s.RW + "/" + s.RT }
