package hub

import (
	"context"
	"encoding/json"
	"time"
)

// DeliveryState is where a webhook delivery stands.
type DeliveryState string

const (
	DeliveryPending   DeliveryState = "pending"   // not yet accepted; retried at NextAt
	DeliveryDelivered DeliveryState = "delivered" // the receiver answered 2xx
	// DeliveryFailed: given up after the last attempt allowed. It is kept, shown, and may be
	// retried by hand (WebhookService.RetryDelivery).
	DeliveryFailed DeliveryState = "failed"
)

// Delivery is one ticket event to be posted to one agency's webhook. It is made in the same
// transaction that moves the fan-out cursor past the event, so no event is lost or posted twice
// to the same agency by a restart; the receiver deduplicates retries by ID.
type Delivery struct {
	ID       int64           `json:"id"`
	Agency   string          `json:"agency"`
	EventID  int64           `json:"event_id"`
	TicketID string          `json:"ticket_id"`
	Kind     string          `json:"kind"`    // the event's kind as the payload names it
	Payload  json.RawMessage `json:"payload"` // the exact body posted, every attempt alike
	State    DeliveryState   `json:"state"`
	Attempts int             `json:"attempts"`
	// NextAt is when a pending delivery is next tried.
	NextAt    time.Time  `json:"next_at"`
	CreatedAt time.Time  `json:"created_at"`
	LastAt    *time.Time `json:"last_at,omitempty"`
	// LastStatus is the HTTP status of the last attempt (0: no answer); LastError why it failed.
	LastStatus  int        `json:"last_status,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// NewDelivery is a delivery to be made; the store sets the rest.
type NewDelivery struct {
	Agency   string
	EventID  int64
	TicketID string
	Kind     string
	Payload  json.RawMessage
	NextAt   time.Time
}

// DeliveryAttempt is the outcome of one attempt.
type DeliveryAttempt struct {
	At     time.Time
	Status int    // HTTP status; 0 when there was no answer
	Error  string // "" on success
	// Delivered: the receiver took it. Otherwise NextAt is the next try, or GiveUp ends it.
	Delivered bool
	NextAt    time.Time
	GiveUp    bool
}

// DeliveryFilter selects deliveries. Zero fields do not filter.
type DeliveryFilter struct {
	Agency string
	State  DeliveryState
	// Failing keeps deliveries that are failed, or pending after at least one failed attempt:
	// what a supervisor should see.
	Failing bool
	Limit   int // newest first; 0 means DefaultLimit
}

// WebhookService shows the agencies' webhook deliveries.
type WebhookService interface {
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// RetryDelivery makes a failed (or pending) delivery due now. A delivered one is a conflict.
	RetryDelivery(ctx context.Context, id int64) (*Delivery, error)
}
