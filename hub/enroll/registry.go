package enroll

import (
	"context"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// Token is an enrollment token as the hub keeps it: the secret itself is shown once, when it
// is made, and only its SHA-256 is stored.
type Token struct {
	ID     string `json:"id"`
	Prefix string `json:"prefix"` // the secret's first characters, to tell tokens apart
	Hash   string `json:"-"`
	// Site is the post the token may enroll a kiosk for; Name, if set, names the device.
	Site      hub.Site  `json:"site"`
	Name      string    `json:"name,omitempty"`
	SMSAllow  []string  `json:"sms_allow,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// UsedAt and DeviceID are set by the enrollment that spent the token.
	UsedAt    *time.Time `json:"used_at,omitempty"`
	DeviceID  string     `json:"device_id,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Device states.
const (
	StateActive  = "active"
	StateRevoked = "revoked"
)

// Device sources: enrolled through the API, or listed in the hub's config file (which holds
// no credentials and connects only to the plain listener).
const (
	SourceEnrolled = "enrolled"
	SourceConfig   = "config"
)

// Device is a registry entry.
type Device struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Site     hub.Site `json:"site"`
	Source   string   `json:"source"`
	State    string   `json:"state"`
	Hardware Hardware `json:"hardware"`
	Firmware string   `json:"firmware,omitempty"`
	SMSAllow []string `json:"sms_allow,omitempty"`
	// ReprovisionAllowed is set by an administrator; the next enrollment of this board takes
	// it, and clears it.
	ReprovisionAllowed bool `json:"reprovision_allowed"`

	// The current certificate. Any other certificate the CA ever issued for this device is
	// refused by the broker: re-provisioning supersedes the old one.
	CertSerial      string    `json:"cert_serial,omitempty"`
	CertFingerprint string    `json:"cert_sha256,omitempty"` // SHA-256 of the DER, hex
	CertNotAfter    time.Time `json:"cert_not_after,omitzero"`
	KeyFingerprint  string    `json:"key_sha256,omitempty"` // SHA-256 of the public key's PKIX DER, hex
	CertPEM         string    `json:"-"`
	TokenID         string    `json:"token_id,omitempty"` // the token of the last enrollment

	EnrolledAt time.Time  `json:"enrolled_at,omitzero"`
	UpdatedAt  time.Time  `json:"updated_at,omitzero"`
	LastSeen   *time.Time `json:"last_seen,omitempty"` // last connection to the broker
	History    []Event    `json:"history"`
}

// Provisioning history event kinds.
const (
	EventEnrolled           = "enrolled"            // first enrollment
	EventReissued           = "reissued"            // a retried enrollment with a new key got a new certificate
	EventReprovisioned      = "reprovisioned"       // enrolled again after an administrator allowed it
	EventRevoked            = "revoked"             // credentials withdrawn
	EventReprovisionAllowed = "reprovision_allowed" // an administrator allowed the next enrollment
)

// Event is one step of a device's provisioning history.
type Event struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Actor    string    `json:"actor"`
	Detail   string    `json:"detail,omitempty"`
	Firmware string    `json:"firmware,omitempty"`
}

// Store keeps tokens and the registry. Implementations return *hub.Error not_found for a
// missing token or device, and conflict where documented.
type Store interface {
	CreateToken(ctx context.Context, t *Token) error
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	Token(ctx context.Context, id string) (*Token, error)
	Tokens(ctx context.Context) ([]*Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error

	// SaveEnrollment, in one transaction, marks the token used by d (a conflict if another
	// device used it), inserts d or replaces the device with d's ID, and appends ev.
	SaveEnrollment(ctx context.Context, tokenID string, at time.Time, d *Device, ev Event) error
	// UpdateDevice replaces a device's state and appends ev, in one transaction.
	UpdateDevice(ctx context.Context, d *Device, ev Event) error
	// TouchDevice sets a device's last connection time; an unknown ID is ignored.
	TouchDevice(ctx context.Context, id string, at time.Time) error

	// Device and DeviceByHardware return the device with its history.
	Device(ctx context.Context, id string) (*Device, error)
	DeviceByHardware(ctx context.Context, h Hardware) (*Device, error)
	// Devices lists every enrolled device with its history, by ID.
	Devices(ctx context.Context) ([]*Device, error)
}
