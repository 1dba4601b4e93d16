package hub

import (
	"context"
	"time"
)

// FeedKind says what a FeedEvent reports.
type FeedKind string

const (
	FeedTicketCreated FeedKind = "ticket_created" // Ticket is the new ticket
	FeedTicketChanged FeedKind = "ticket_changed" // Ticket is the ticket after the change, Event the change
	FeedDeviceChanged FeedKind = "device_changed" // Device is the device's new state
	FeedAlertRaised   FeedKind = "alert_raised"   // Alert is the alert
	FeedAlertCleared  FeedKind = "alert_cleared"  // Alert is the alert, with ClearedAt
)

// FeedEvent is one change the dashboard shows live. Exactly one of Ticket, Device and Alert is
// set (and Event with FeedTicketChanged when the change has an audit entry).
type FeedEvent struct {
	Kind   FeedKind      `json:"kind"`
	At     time.Time     `json:"at"`
	Ticket *Ticket       `json:"ticket,omitempty"`
	Event  *Event        `json:"event,omitempty"`
	Device *DeviceStatus `json:"device,omitempty"`
	Alert  *Alert        `json:"alert,omitempty"`
}

// EventFeed delivers changes as they happen, for server-sent events.
type EventFeed interface {
	// Subscribe returns a channel of every change from now on. The channel is closed when ctx
	// ends, when the hub stops, or when the subscriber falls too far behind to be kept (it
	// should then read the state afresh and subscribe again: nothing is dropped silently).
	Subscribe(ctx context.Context) <-chan FeedEvent
}
