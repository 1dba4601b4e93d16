package hub

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/mqtt"
)

// Status is where a ticket is in its life.
type Status string

const (
	StatusNew          Status = "new"
	StatusAcknowledged Status = "acknowledged"
	StatusDispatched   Status = "dispatched"
	StatusResolved     Status = "resolved"
	StatusClosed       Status = "closed"
	StatusCancelled    Status = "cancelled"
	StatusDuplicate    Status = "duplicate"
)

// transitions lists, for each status, the statuses a ticket may move to. Everything not listed is
// refused, so that a bug or a race between two operators cannot, say, reopen a closed ticket.
var transitions = map[Status][]Status{
	StatusNew:          {StatusAcknowledged, StatusCancelled, StatusDuplicate},
	StatusAcknowledged: {StatusDispatched, StatusResolved, StatusCancelled, StatusDuplicate},
	StatusDispatched:   {StatusResolved, StatusCancelled},
	StatusResolved:     {StatusClosed},
	StatusCancelled:    {StatusClosed},
	StatusDuplicate:    {StatusClosed},
	StatusClosed:       nil,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// CheckTransition returns nil if a ticket may move from one status to another, and a conflict
// *Error saying why not otherwise.
func CheckTransition(from, to Status) error {
	if !from.Valid() {
		return Errorf(CodeInvalid, "unknown ticket status %q", from)
	}
	if !to.Valid() {
		return Errorf(CodeInvalid, "unknown ticket status %q", to)
	}
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	if from == to {
		return Errorf(CodeConflict, "ticket is already %s", from)
	}
	return Errorf(CodeConflict, "a %s ticket cannot become %s", from, to)
}

// AckStatus is the status a device is told when its ticket reaches s. The protocol names
// statuses as tickets do, except that a new ticket is "received".
func (s Status) AckStatus() mqtt.AckStatus {
	if s == StatusNew {
		return mqtt.AckReceived
	}
	return mqtt.AckStatus(s)
}

// Priority orders the operators' queue.
type Priority string

const (
	PriorityEmergency Priority = "emergency"
	PriorityNormal    Priority = "normal"
)

// emergencyCategories are the categories that are emergencies even from SMS. Routing by category
// is a later issue; until then this only decides which tickets go to the top.
var emergencyCategories = map[string]bool{
	"panic":    true,
	"fire":     true,
	"medical":  true,
	"crime":    true,
	"accident": true,
	"disaster": true,
}

// PriorityFor returns an incident's priority. A button press is always an emergency: nobody
// presses a kiosk's panic button to ask a question; so is a report its sender calls one.
func PriorityFor(source, category string, emergency bool) Priority {
	if source == mqtt.SourceButton || emergency || emergencyCategories[category] {
		return PriorityEmergency
	}
	return PriorityNormal
}

// Ticket is an incident accepted by the hub, and what operators work on.
type Ticket struct {
	ID             string     `json:"id"`
	Number         string     `json:"number"` // for people: "112-000123", from a durable sequence
	IncidentID     string     `json:"incident_id"`
	DeviceID       string     `json:"device_id"`
	Source         string     `json:"source"`
	Button         string     `json:"button,omitempty"`
	Category       string     `json:"category"`
	Priority       Priority   `json:"priority"`
	Status         Status     `json:"status"`
	Text           string     `json:"text,omitempty"`
	Reporter       string     `json:"reporter,omitempty"`
	Test           bool       `json:"test"`
	OccurredAt     time.Time  `json:"occurred_at"` // the device's clock, which may be wrong
	CreatedAt      time.Time  `json:"created_at"`  // the hub's clock
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	// Unverified: an SMS from a number not on its kiosk's list of RT/RW heads.
	Unverified bool `json:"unverified,omitempty"`
}

// FormatNumber formats a ticket sequence number for people.
func FormatNumber(seq int64) string {
	return fmt.Sprintf("112-%06d", seq)
}

// ParseNumber reads a ticket number as FormatNumber writes it ("112-000123"), so that people
// can name a ticket by the number they were told on the phone or by SMS.
func ParseNumber(s string) (seq int64, ok bool) {
	digits, found := strings.CutPrefix(s, "112-")
	if !found || len(digits) < 6 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || FormatNumber(n) != s {
		return 0, false
	}
	return n, true
}

// Event is one entry of a ticket's audit trail. Creation is an event from "" to new.
type Event struct {
	ID       int64     `json:"id"`
	TicketID string    `json:"ticket_id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"` // an operator's name, or "device:<id>" for creation
	From     Status    `json:"from"`
	To       Status    `json:"to"`
	Note     string    `json:"note,omitempty"`
}

// Limits on operator-supplied text.
const (
	MaxActorLen = 128
	MaxNoteLen  = 1024
)

// NewTicket is what ingest asks the store to turn into a ticket.
type NewTicket struct {
	IncidentID string
	DeviceID   string
	Source     string
	Button     string
	Category   string
	Priority   Priority
	Text       string
	Reporter   string
	Test       bool
	Unverified bool
	OccurredAt time.Time
}

// NewTicketFromIncident maps a decoded incident to a ticket request.
func NewTicketFromIncident(in mqtt.Incident) NewTicket {
	return NewTicket{
		IncidentID: in.ID,
		DeviceID:   in.DeviceID,
		Source:     in.Source,
		Button:     in.Button,
		Category:   in.Category,
		Priority:   PriorityFor(in.Source, in.Category, in.Emergency),
		Text:       in.Text,
		Reporter:   in.Reporter,
		Test:       in.Test,
		Unverified: in.Unverified,
		OccurredAt: in.OccurredAt,
	}
}

// Validate checks what a store relies on; the wire protocol has checked the rest.
func (n *NewTicket) Validate() error {
	switch {
	case n.IncidentID == "":
		return Errorf(CodeInvalid, "incident id is missing")
	case n.DeviceID == "":
		return Errorf(CodeInvalid, "incident %s: device id is missing", n.IncidentID)
	case n.Source == "":
		return Errorf(CodeInvalid, "incident %s: source is missing", n.IncidentID)
	case n.Priority != PriorityEmergency && n.Priority != PriorityNormal:
		return Errorf(CodeInvalid, "incident %s: unknown priority %q", n.IncidentID, n.Priority)
	case n.OccurredAt.IsZero():
		return Errorf(CodeInvalid, "incident %s: occurred_at is missing", n.IncidentID)
	}
	return nil
}

// IngestResult is the outcome for one NewTicket of a batch. Exactly one of Ticket and Err is set.
type IngestResult struct {
	Ticket   *Ticket
	Existing bool  // the incident was a replay; Ticket is the one made the first time
	Err      error // this incident only; the rest of the batch is unaffected
}

// TicketFilter selects tickets. Zero fields do not filter.
type TicketFilter struct {
	Status   Status
	DeviceID string
	Limit    int // at most this many, newest first; 0 means DefaultLimit
}

// Listing limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// TicketService is what operators do with tickets. Acknowledge, unlike the Store's, also tells
// the ticket's device.
type TicketService interface {
	Ticket(ctx context.Context, id string) (*Ticket, error)
	Tickets(ctx context.Context, f TicketFilter) ([]*Ticket, error)
	Events(ctx context.Context, ticketID string) ([]Event, error)
	Acknowledge(ctx context.Context, ticketID, by, note string) (*Ticket, error)
	Transition(ctx context.Context, ticketID string, to Status, by, note string) (*Ticket, error)
}
