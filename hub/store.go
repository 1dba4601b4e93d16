package hub

import (
	"context"
	"time"
)

// Store keeps tickets and their audit trail durably. It is deliberately small, and its semantics
// are pinned by hub/storetest, which every implementation must pass.
type Store interface {
	// Ingest turns a batch of incidents into tickets in one transaction (group commit), returning
	// one result per input in order. It is idempotent on IncidentID: a replay returns the ticket
	// made the first time, with Existing set, and never creates another. A per-incident problem
	// is reported in that result's Err; the returned error means nothing was committed.
	Ingest(ctx context.Context, batch []NewTicket) ([]IngestResult, error)

	// Ticket returns one ticket by its ID, its number ("112-000123") or the ID of the incident
	// it was made from, or a not_found *Error.
	Ticket(ctx context.Context, id string) (*Ticket, error)

	// Tickets returns tickets matching f, newest first.
	Tickets(ctx context.Context, f TicketFilter) ([]*Ticket, error)

	// Events returns a ticket's audit trail, oldest first, or a not_found *Error.
	Events(ctx context.Context, ticketID string) ([]Event, error)

	// Acknowledge moves a new ticket to acknowledged and records who did it. Acknowledging a
	// ticket that is not new is a conflict and records nothing.
	Acknowledge(ctx context.Context, ticketID, by, note string) (*Ticket, error)

	// Transition moves a ticket to another status and records who did it and why, or refuses
	// with a conflict *Error (see CheckTransition) and records nothing.
	Transition(ctx context.Context, ticketID string, to Status, by, note string) (*Ticket, error)

	// Dispatch moves an acknowledged ticket to dispatched, assigned to agency and unit, or
	// reassigns a dispatched one to another agency (EventReassigned). agency must not be "" or
	// AgencyTriage; dispatching again to the same agency and unit is a conflict.
	Dispatch(ctx context.Context, ticketID, agency, unit, by, note string) (*Ticket, error)

	// Merge marks a ticket a duplicate of intoID and records EventMerged on the survivor, in
	// one transaction. See TicketService.MergeDuplicate for the rules. It returns both.
	Merge(ctx context.Context, ticketID, intoID, by, note string) (dup, survivor *Ticket, err error)

	// MarkFalseAlarm flags a ticket a false alarm with a reason (required) and cancels it if it
	// is open, in one transaction. Flagging one twice is a conflict.
	MarkFalseAlarm(ctx context.Context, ticketID, by, reason string) (*Ticket, error)

	// RequestConfirmation records that asked RT/RW heads were texted about a ticket; it sets the
	// confirmation pending unless an answer came already. A second request records nothing and
	// returns the ticket unchanged, so that repeating one is harmless.
	RequestConfirmation(ctx context.Context, ticketID string, asked int) (*Ticket, error)

	// RecordConfirmation records one head's answer (ConfirmYes or ConfirmNo; a head may change
	// their answer). changed is false when the same head had already given the same answer.
	RecordConfirmation(ctx context.Context, ticketID, number string, answer ConfirmAnswer) (t *Ticket, changed bool, err error)

	// MarkBreach records that an open ticket missed a deadline, once: marked is false when it
	// was already marked or the deadline is not missed (the ticket moved on in time).
	MarkBreach(ctx context.Context, ticketID string, kind BreachKind) (t *Ticket, marked bool, err error)

	// TicketCounts counts all tickets by status and priority.
	TicketCounts(ctx context.Context) ([]TicketCount, error)

	// DeviceCounts counts each device's tickets made since, and its false alarms among them;
	// test tickets do not count. Devices without tickets are absent.
	DeviceCounts(ctx context.Context, since time.Time) (map[string]DeviceTicketCount, error)

	// EventsAfter returns audit events of all tickets with IDs above afterID, oldest first, at
	// most limit (0 means DefaultLimit).
	EventsAfter(ctx context.Context, afterID int64, limit int) ([]Event, error)

	DeliveryStore

	Close() error
}

// TicketCount is the number of tickets with one status and priority.
type TicketCount struct {
	Status   Status
	Priority Priority
	Count    int
}

// DeviceTicketCount is what a device's false-alarm rate is made of.
type DeviceTicketCount struct {
	Tickets     int
	FalseAlarms int
}

// DeliveryStore keeps the webhook deliveries (hub/webhook) durably.
type DeliveryStore interface {
	// DeliveryCursor is the ID of the last event fanned out into deliveries. A new store starts
	// it at the last event it holds, so that history is not posted.
	DeliveryCursor(ctx context.Context) (int64, error)
	// EnqueueDeliveries stores deliveries and moves the cursor to cursor, in one transaction;
	// a cursor that is not ahead of the stored one is a conflict and stores nothing.
	EnqueueDeliveries(ctx context.Context, cursor int64, ds []NewDelivery) error
	// DueDeliveries returns pending deliveries due at now, by agency and then oldest first, at
	// most limit. An agency's deliveries go in order: while its oldest pending delivery waits
	// for a retry, none of its others is due, so that a receiver that is down is tried once per
	// back-off and gets events in the order they happened.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// NextDeliveryAt is when the next delivery is due by those rules; ok is false when none is
	// pending.
	NextDeliveryAt(ctx context.Context) (at time.Time, ok bool, err error)
	// RecordAttempt records the outcome of an attempt at a pending delivery.
	RecordAttempt(ctx context.Context, id int64, a DeliveryAttempt) (*Delivery, error)
	// Deliveries lists deliveries matching f, newest first.
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// RetryDelivery makes a pending or failed delivery due at now; a delivered one is a conflict.
	RetryDelivery(ctx context.Context, id int64, now time.Time) (*Delivery, error)
}
