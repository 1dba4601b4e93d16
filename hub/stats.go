package hub

import (
	"context"
	"time"
)

// Rejection reasons beyond mqtt.DecodeError.Reason's: they label both the status counters and
// the Prometheus metric.
const (
	ReasonUnknownDevice = "unknown_device" // the topic names a device not in the registry
	ReasonBadTopic      = "bad_topic"      // the topic does not name a valid device
	ReasonConflict      = "conflict"       // the incident ID belongs to another device's ticket
	ReasonStore         = "store"          // the store refused the incident itself
)

// Stats are the hub's counters since it started, for GET /api/v1/status.
type Stats struct {
	StartedAt time.Time       `json:"started_at"`
	Incidents IncidentCounts  `json:"incidents"`
	Queue     QueueStatus     `json:"queue"`
	Devices   DeviceCounts    `json:"devices"`
	Messages  MessageCounters `json:"messages"`
}

// IncidentCounts counts incidents by outcome.
type IncidentCounts struct {
	Accepted      uint64            `json:"accepted"` // new tickets
	Replays       uint64            `json:"replays"`  // answered with an existing ticket
	Rejected      map[string]uint64 `json:"rejected"` // by reason
	RejectedTotal uint64            `json:"rejected_total"`
	// Unanswered incidents got no ack because the store failed or the hub was stopping; the
	// device re-sends them.
	Unanswered uint64 `json:"unanswered"`
}

// QueueStatus describes the ingest queue between the bus and the store.
type QueueStatus struct {
	Depth    int    `json:"depth"`
	Capacity int    `json:"capacity"`
	Batches  uint64 `json:"batches"` // store commits so far
}

// DeviceCounts summarises the registry.
type DeviceCounts struct {
	Registered int `json:"registered"`
	Online     int `json:"online"`
}

// MessageCounters counts the other device messages.
type MessageCounters struct {
	Presence   uint64 `json:"presence"`
	Heartbeats uint64 `json:"heartbeats"`
	Ignored    uint64 `json:"ignored"` // unreadable, or from unregistered devices
}

// StatsService reports the counters.
type StatsService interface {
	Stats(ctx context.Context) Stats
}
