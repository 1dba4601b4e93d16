// Package hub is the domain of kentongan-hub, the 112 operators' side of Kentongan: tickets made
// from kiosk incidents, the devices that send them, and the interfaces the hub's parts meet at.
//
// It holds types and interfaces only, with no dependency beyond the wire protocol, so that
// implementations (hub/sqlite, hub/mochi, hub/paho, hub/http, hub/ingest, hub/route,
// hub/deadline, hub/webhook) can be swapped and tested against each other; hub/hubd wires them
// into the program. docs/routing.md describes the rules the domain follows.
package hub

import (
	"context"
	"time"
)

// Clock tells the hub's time. It is injected so that tests can pin CreatedAt and friends.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC so that stored times compare and print one way.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Message is one MQTT message as the hub sees it, whichever broker carried it.
type Message struct {
	Topic   string
	Payload []byte
}

// Handler receives messages from a Bus. It may block: the bus then holds back the publisher
// (embedded broker) or the acknowledgement to the broker (external broker) instead of dropping.
type Handler func(Message)

// Bus is how the hub talks MQTT: an embedded broker or a client of an external one.
type Bus interface {
	// Subscribe delivers every message matching filter to h, at qos where the bus needs it.
	Subscribe(filter string, qos byte, h Handler) error
	// Publish sends a message; it returns once the bus has taken it on, not when delivered.
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	Close() error
}
