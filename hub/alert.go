package hub

import (
	"context"
	"time"
)

// AlertKind says what an Alert is about.
type AlertKind string

const (
	// AlertDeadlineBreach: an open ticket missed a deadline (Alert.Breach). It clears when the
	// ticket is acknowledged (for an acknowledgement deadline) or is no longer open.
	AlertDeadlineBreach AlertKind = "deadline_breach"
	// AlertKioskOffline: a kiosk has not been heard for longer than its supervision interval,
	// or said it went offline. It clears when the kiosk is heard again.
	AlertKioskOffline AlertKind = "kiosk_offline"
	// AlertFalseAlarmRate: a kiosk's share of false alarms over the configured window is above
	// the configured rate. It clears when the rate falls back.
	AlertFalseAlarmRate AlertKind = "false_alarm_rate"
	// AlertRoutingConfig: the routing configuration file was refused on reload; the previous
	// one is in force. It clears when a valid file is loaded.
	AlertRoutingConfig AlertKind = "routing_config"
)

// Alert is something a supervisor must look at. There is at most one active alert per kind and
// subject, and its ID says which: "deadline_breach:ack:<ticket id>", "kiosk_offline:<device>",
// "false_alarm_rate:<device>", "routing_config".
type Alert struct {
	ID           string     `json:"id"`
	Kind         AlertKind  `json:"kind"`
	DeviceID     string     `json:"device_id,omitempty"`
	TicketID     string     `json:"ticket_id,omitempty"`
	TicketNumber string     `json:"ticket_number,omitempty"`
	Agency       string     `json:"agency,omitempty"` // the ticket's agency, for agency views
	Breach       BreachKind `json:"breach,omitempty"`
	// Message says what happened, in English, for logs and notifications; a dashboard words
	// its own text from Kind and the fields.
	Message   string     `json:"message"`
	RaisedAt  time.Time  `json:"raised_at"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
}

// Active reports whether the alert has not cleared.
func (a *Alert) Active() bool { return a.ClearedAt == nil }

// AlertFilter selects alerts. Zero fields do not filter.
type AlertFilter struct {
	// IncludeCleared adds recently cleared alerts to the active ones.
	IncludeCleared bool
	Kind           AlertKind
	DeviceID       string
	Agency         string
}

// AlertService lists alerts, active first, newest first within each.
type AlertService interface {
	Alerts(ctx context.Context, f AlertFilter) []Alert
}
