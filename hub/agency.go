package hub

import (
	"context"
	"time"
)

// AgencyTriage is the agency of a ticket nobody has routed yet: a panic button without a
// category, a text the grammar could not read. It is the 112 operator's own queue.
const AgencyTriage = "triage"

// Agency is an organisation tickets are dispatched to: the police, the fire brigade, PLN. The
// routing configuration (hub/route) defines them.
type Agency struct {
	ID    string `json:"id"`    // "damkar"; a-z 0-9 -
	Name  string `json:"name"`  // "Dinas Pemadam Kebakaran dan Penyelamatan Kabupaten Tangerang"
	Short string `json:"short"` // what an SMS to a resident calls it: "Damkar"
	Phone string `json:"phone,omitempty"`
	Units []Unit `json:"units,omitempty"`
	// Webhook says whether ticket events are posted to the agency; the URL and secret stay in
	// the configuration.
	Webhook bool `json:"webhook"`
}

// Unit is the part of an agency that serves some areas: a Polsek, a PLN UP3, a fire post.
type Unit struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Areas it serves: a kecamatan ("Cikupa") or a kelurahan/desa within one ("Cikupa/Talaga").
	Areas []string `json:"areas"`
}

// Unit returns the unit of a with the given ID.
func (a *Agency) Unit(id string) (Unit, bool) {
	for _, u := range a.Units {
		if u.ID == id {
			return u, true
		}
	}
	return Unit{}, false
}

// RoutingStatus describes the routing configuration in force and the last attempt to load one.
type RoutingStatus struct {
	Path     string    `json:"path"`      // "" for the built-in default
	LoadedAt time.Time `json:"loaded_at"` // when the configuration in force was loaded
	Checksum string    `json:"checksum"`  // SHA-256 of the file in force, hex
	Agencies int       `json:"agencies"`
	// LastError is why the latest reload was refused ("" when it was not); the configuration
	// in force is then the one before. LastErrorLine is the line at fault, 0 if unknown.
	LastError     string     `json:"last_error,omitempty"`
	LastErrorLine int        `json:"last_error_line,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
}

// RoutingService exposes the routing configuration.
type RoutingService interface {
	// Agencies lists the agencies of the configuration in force, in configuration order.
	Agencies(ctx context.Context) []Agency
	// RoutingStatus says what is in force and whether the last reload failed.
	RoutingStatus(ctx context.Context) RoutingStatus
	// ReloadRouting reads the configuration file again. An invalid file is refused with an
	// invalid *Error naming the line at fault, and the configuration in force is kept.
	ReloadRouting(ctx context.Context) error
}
