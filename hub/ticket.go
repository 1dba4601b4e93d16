package hub

import (
	"cmp"
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

// Open reports whether a ticket in status s still needs work: it is new, acknowledged or
// dispatched. Deadlines and breaches concern open tickets only.
func (s Status) Open() bool {
	return s == StatusNew || s == StatusAcknowledged || s == StatusDispatched
}

// OpenStatuses are the statuses for which Status.Open is true.
var OpenStatuses = []Status{StatusNew, StatusAcknowledged, StatusDispatched}

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

	// Agency is the ID of the agency the ticket is routed to (see Agency), or AgencyTriage while
	// the 112 operator must decide; dispatching may change it. Unit is the agency's unit for
	// the ticket's area, "" when the agency has none there.
	Agency string `json:"agency"`
	Unit   string `json:"unit,omitempty"`
	// Site is where the ticket's kiosk stood when the ticket was made.
	Site Site `json:"site"`

	Deadlines
	// When a deadline was found missed; nil while it is not (or cannot be any more).
	AckBreachedAt     *time.Time `json:"ack_breached_at,omitempty"`
	ResolveBreachedAt *time.Time `json:"resolve_breached_at,omitempty"`

	// When, and by whom, each later step was taken (AcknowledgedAt above is the first). The
	// audit trail (Events) has every change with its note; these are for queues and timers.
	DispatchedAt *time.Time `json:"dispatched_at,omitempty"`
	DispatchedBy string     `json:"dispatched_by,omitempty"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy   string     `json:"resolved_by,omitempty"`
	ClosedAt     *time.Time `json:"closed_at,omitempty"`
	ClosedBy     string     `json:"closed_by,omitempty"`
	CancelledAt  *time.Time `json:"cancelled_at,omitempty"`
	CancelledBy  string     `json:"cancelled_by,omitempty"`

	// DuplicateOf is the ID of the ticket this one was merged into (status duplicate).
	DuplicateOf string `json:"duplicate_of,omitempty"`

	// FalseAlarm is set by an operator, with a reason: a prank or a press by mistake. It counts
	// against the kiosk's false-alarm rate.
	FalseAlarm       bool       `json:"false_alarm"`
	FalseAlarmReason string     `json:"false_alarm_reason,omitempty"`
	FalseAlarmBy     string     `json:"false_alarm_by,omitempty"`
	FalseAlarmAt     *time.Time `json:"false_alarm_at,omitempty"`

	// Confirmation is what the post's RT/RW heads answered when asked by SMS whether a panic
	// button press is a real emergency.
	Confirmation Confirmation `json:"confirmation"`

	// UpdatedAt is the time of the last change; Version counts changes (1 when created), so that
	// a client holding two copies knows which is newer.
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

// Deadlines are when a ticket must be acknowledged and resolved, computed when it is made (see
// hub/deadline). A nil deadline does not apply: test tickets have none.
type Deadlines struct {
	// QueuedUntil is set for a non-emergency that arrived outside working hours: working hours
	// start then, and its deadlines count from there.
	QueuedUntil *time.Time `json:"queued_until,omitempty"`
	AckDue      *time.Time `json:"ack_due,omitempty"`
	ResolveDue  *time.Time `json:"resolve_due,omitempty"`
}

// BreachKind names a deadline.
type BreachKind string

const (
	BreachAck     BreachKind = "ack"     // not acknowledged by AckDue
	BreachResolve BreachKind = "resolve" // not resolved by ResolveDue
)

// Valid reports whether k is a known deadline.
func (k BreachKind) Valid() bool { return k == BreachAck || k == BreachResolve }

// Overdue returns the deadlines t has missed at now and that are not yet marked as breached.
// Only open tickets miss deadlines, and only a new ticket misses its acknowledgement deadline.
func (t *Ticket) Overdue(now time.Time) []BreachKind {
	if !t.Status.Open() {
		return nil
	}
	var out []BreachKind
	if t.AckDue != nil && t.Status == StatusNew && t.AckBreachedAt == nil && now.After(*t.AckDue) {
		out = append(out, BreachAck)
	}
	if t.ResolveDue != nil && t.ResolveBreachedAt == nil && now.After(*t.ResolveDue) {
		out = append(out, BreachResolve)
	}
	return out
}

// ConfirmState is where the RT/RW heads' confirmation of a ticket stands.
type ConfirmState string

const (
	ConfirmNone     ConfirmState = ""         // nobody was asked
	ConfirmPending  ConfirmState = "pending"  // asked, no answer yet
	ConfirmYes      ConfirmState = "yes"      // every answer says it is a real emergency
	ConfirmNo       ConfirmState = "no"       // every answer says it is not
	ConfirmDisputed ConfirmState = "disputed" // the heads disagree
)

// ConfirmAnswer is one RT/RW head's answer: ConfirmYes or ConfirmNo.
type ConfirmAnswer = ConfirmState

// Confirmation is the state of a ticket's confirmation by the post's RT/RW heads. It never
// changes the ticket's status or priority: an answer informs the operator, who decides.
type Confirmation struct {
	State   ConfirmState `json:"state,omitempty"`
	AskedAt *time.Time   `json:"asked_at,omitempty"`
	Asked   int          `json:"asked,omitempty"` // how many heads were texted
	Yes     int          `json:"yes,omitempty"`   // heads who answered YA
	No      int          `json:"no,omitempty"`    // heads who answered TIDAK
	By      string       `json:"by,omitempty"`    // the number of the latest answer
	At      *time.Time   `json:"at,omitempty"`    // the time of the latest answer
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

// Event is one entry of a ticket's audit trail. Creation is a status event from "" to new.
type Event struct {
	ID       int64     `json:"id"` // increasing across all tickets: the order changes were made in
	TicketID string    `json:"ticket_id"`
	At       time.Time `json:"at"`
	// Actor is an operator's name, "device:<id>" for what a kiosk did, "sms:<number>" for what
	// a resident texted, and "hub" for what the hub did itself (deadline breaches).
	Actor string    `json:"actor"`
	Kind  EventKind `json:"kind"`
	// From and To are the ticket's status before and after; equal for events that change no
	// status.
	From Status `json:"from"`
	To   Status `json:"to"`
	Note string `json:"note,omitempty"`
	// Agency is the ticket's agency after the event, so that an agency's feed (webhooks, the
	// agency view) can be cut from the trail.
	Agency string `json:"agency,omitempty"`
	// Detail is the machine-readable part of events other than status changes: the answer
	// ("yes", "no") of EventConfirmation, the deadline ("ack", "resolve") of EventBreach, the
	// other ticket's ID of EventMerged, the number of heads asked of EventConfirmRequested.
	Detail string `json:"detail,omitempty"`
}

// EventKind says what an Event records.
type EventKind string

const (
	EventStatus           EventKind = "status"            // From → To, with the agency for dispatch
	EventReassigned       EventKind = "reassigned"        // a dispatched ticket sent to another agency
	EventMerged           EventKind = "merged"            // another ticket (Detail) was merged into this one
	EventFalseAlarm       EventKind = "false_alarm"       // marked a false alarm; Note is the reason
	EventConfirmRequested EventKind = "confirm_requested" // RT/RW heads were asked to confirm
	EventConfirmation     EventKind = "confirmation"      // an RT/RW head answered (Detail yes/no)
	EventBreach           EventKind = "deadline_breached" // a deadline (Detail) was missed
)

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

	// Set by routing and deadlines at ingest; see Ticket.
	Agency string
	Unit   string
	Site   Site
	Deadlines
}

// NewTicketFromIncident maps a decoded incident to a ticket request. Routing (hub/route) later
// fills Agency, Unit and may change Priority; until then the ticket is the operator's to triage.
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
		Agency:     AgencyTriage,
	}
}

// kioskSources are the sources of incidents that come from a kiosk.
var kioskSources = map[string]bool{mqtt.SourceButton: true, mqtt.SourceSMS: true, mqtt.SourceTamper: true}

// Validate checks what a store relies on; the wire protocol has checked the rest.
func (n *NewTicket) Validate() error {
	switch {
	case n.IncidentID == "":
		return Errorf(CodeInvalid, "incident id is missing")
	case n.DeviceID == "" && kioskSources[n.Source]:
		// Tickets filed through the API (Open311) come from no kiosk.
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

// TicketFilter selects tickets. Zero fields do not filter; set fields must all match.
type TicketFilter struct {
	Status   Status
	DeviceID string
	Agency   string // an agency ID, or AgencyTriage
	Priority Priority
	Category string
	Source   string
	// Open keeps tickets that still need work (Status.Open).
	Open bool
	// Breached keeps tickets with a deadline marked as missed.
	Breached bool
	// Overdue, when not zero, keeps open tickets that have missed a deadline by then, marked
	// or not: a new ticket past AckDue, or any open ticket past ResolveDue.
	Overdue time.Time
	Limit   int // at most this many, newest first; 0 means DefaultLimit
}

// Listing limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// TicketService is what operators do with tickets. Every change is checked and recorded in one
// transaction (who, when, why), refused with a conflict *Error when the ticket has moved on, and
// then told to the ticket's kiosk (its LEDs), its SMS reporter and the event feed. by is the
// acting user's name (required); note is their reason, shown in the audit trail.
type TicketService interface {
	Ticket(ctx context.Context, id string) (*Ticket, error)
	Tickets(ctx context.Context, f TicketFilter) ([]*Ticket, error)
	Events(ctx context.Context, ticketID string) ([]Event, error)

	// Acknowledge: new → acknowledged; the operator has taken the ticket on.
	Acknowledge(ctx context.Context, ticketID, by, note string) (*Ticket, error)
	// Dispatch: acknowledged → dispatched to agency (an Agency ID; "" keeps the routed one).
	// A dispatched ticket may be dispatched again to another agency (EventReassigned);
	// dispatching it again to the same agency is a conflict.
	Dispatch(ctx context.Context, ticketID, agency, by, note string) (*Ticket, error)
	// Resolve: acknowledged or dispatched → resolved.
	Resolve(ctx context.Context, ticketID, by, note string) (*Ticket, error)
	// CloseTicket: resolved, cancelled or duplicate → closed. (Not Close, which the
	// implementations use for shutting down.)
	CloseTicket(ctx context.Context, ticketID, by, note string) (*Ticket, error)
	// Cancel: new, acknowledged or dispatched → cancelled.
	Cancel(ctx context.Context, ticketID, by, note string) (*Ticket, error)
	// MergeDuplicate: a new or acknowledged ticket → duplicate of intoID, which must be
	// another ticket that is not itself a duplicate nor cancelled or closed; the survivor's
	// trail records the merge (EventMerged). It returns the duplicate.
	MergeDuplicate(ctx context.Context, ticketID, intoID, by, note string) (*Ticket, error)
	// MarkFalseAlarm records that the ticket was a false alarm, with a reason (required); an
	// open ticket is cancelled at the same time. Marking one twice is a conflict.
	MarkFalseAlarm(ctx context.Context, ticketID, by, reason string) (*Ticket, error)
	// Transition is the general move, as CheckTransition allows; the methods above are it
	// with their rules.
	Transition(ctx context.Context, ticketID string, to Status, by, note string) (*Ticket, error)
}

// Ticket is the ticket a store makes of nt: new, numbered from seq, created at now, in triage
// unless routed, with every time in UTC. Each store calls it, so that they make the same ticket.
func (nt NewTicket) Ticket(id string, seq int64, now time.Time) *Ticket {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return &Ticket{
		ID:         id,
		Number:     FormatNumber(seq),
		IncidentID: nt.IncidentID,
		DeviceID:   nt.DeviceID,
		Source:     nt.Source,
		Button:     nt.Button,
		Category:   nt.Category,
		Priority:   nt.Priority,
		Status:     StatusNew,
		Text:       nt.Text,
		Reporter:   nt.Reporter,
		Test:       nt.Test,
		Unverified: nt.Unverified,
		OccurredAt: nt.OccurredAt.UTC(),
		CreatedAt:  now,
		Agency:     cmp.Or(nt.Agency, AgencyTriage),
		Unit:       nt.Unit,
		Site:       nt.Site,
		Deadlines: Deadlines{QueuedUntil: utc(nt.Deadlines.QueuedUntil), AckDue: utc(nt.Deadlines.AckDue),
			ResolveDue: utc(nt.Deadlines.ResolveDue)},
		UpdatedAt: now,
		Version:   1,
	}
}
