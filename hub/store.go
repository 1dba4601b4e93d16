package hub

import "context"

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

	Close() error
}
