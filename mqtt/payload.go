package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the payload schema this code writes and the only one it reads. Every payload
// carries it in "v" so that a hub can refuse, rather than misread, a newer kiosk.
const SchemaVersion = 1

// MaxPayload is the largest payload either end accepts. An incident is a few hundred bytes;
// the limit leaves room for a long SMS text and keeps a hostile payload from costing memory.
const MaxPayload = 16 << 10

// Limits on free-text fields, in bytes.
const (
	maxText  = 4096
	maxShort = 128
)

// Sources of an incident.
const (
	SourceButton = "button"
	SourceSMS    = "sms"
	// SourceTamper: the kiosk's enclosure was opened. It is reported like an incident so that it
	// is never lost, and triaged by the operator.
	SourceTamper = "tamper"
)

// Requests an incident may carry instead of a new report. The hub answers them and makes no ticket.
const (
	// RequestStatus asks for the status of the ticket named by Target (a ticket number).
	RequestStatus = "status"
	// RequestCancel cancels the ticket named by Target: a ticket number (an SMS "BATAL"), or the
	// incident ID of the press being cancelled (a second press within the cancel window).
	RequestCancel = "cancel"
	// RequestConfirm and RequestDeny are an RT/RW head's answer (an SMS "YA …" or "TIDAK …") to
	// the hub's question whether a panic-button press is a real emergency. Target names the
	// ticket, or is empty when the answer named none: the hub then takes the latest press it
	// asked that head about.
	RequestConfirm = "confirm"
	RequestDeny    = "deny"
)

// Incident is a report made at a kiosk: a panic-button press or an SMS from an RT/RW head.
// The device creates ID before the incident is first written to disk, and every re-send carries
// the same ID, so the hub recognises a replay.
type Incident struct {
	V          int       `json:"v"`
	ID         string    `json:"id"`
	DeviceID   string    `json:"device_id"`
	Source     string    `json:"source"`
	Button     string    `json:"button,omitempty"`
	Category   string    `json:"category,omitempty"` // empty: the 112 operator triages it
	Text       string    `json:"text,omitempty"`
	Reporter   string    `json:"reporter,omitempty"` // the SMS sender's number
	OccurredAt time.Time `json:"occurred_at"`        // device clock, which may be wrong
	Attempt    int       `json:"attempt"`            // 1 on first publish, then counts re-sends
	Test       bool      `json:"test,omitempty"`     // a self-test incident: never routed
	// Unverified: the SMS sender is not on the kiosk's allow-list, and the kiosk's policy is to
	// accept such reports marked as unverified.
	Unverified bool `json:"unverified,omitempty"`
	// Emergency: the reporter said it is one (an SMS starting DARURAT), whatever its category.
	Emergency bool `json:"emergency,omitempty"`
	// Request, when set, makes this a request about an existing ticket (RequestStatus,
	// RequestCancel) rather than a new report; Target names the ticket.
	Request string `json:"request,omitempty"`
	Target  string `json:"target,omitempty"`
}

// AckStatus is what the hub says about an incident, and later about its ticket.
type AckStatus string

const (
	// AckReceived: the hub has committed the incident as a ticket.
	AckReceived AckStatus = "received"
	// AckAcknowledged: an operator has taken the ticket on.
	AckAcknowledged AckStatus = "acknowledged"
	AckDispatched   AckStatus = "dispatched"
	AckResolved     AckStatus = "resolved"
	AckClosed       AckStatus = "closed"
	AckCancelled    AckStatus = "cancelled"
	AckDuplicate    AckStatus = "duplicate"
	// AckRejected: the hub could not accept the incident. The device keeps it and says so.
	AckRejected AckStatus = "rejected"
)

// Ack is the hub's answer about one incident. The hub sends AckReceived only after the ticket is
// durable, and sends the same ticket for every replay of the same incident ID.
type Ack struct {
	V            int       `json:"v"`
	IncidentID   string    `json:"incident_id,omitempty"` // empty only when the payload was unreadable
	TicketID     string    `json:"ticket_id,omitempty"`
	TicketNumber string    `json:"ticket_number,omitempty"`
	Status       AckStatus `json:"status"`
	At           time.Time `json:"at"`
	Error        string    `json:"error,omitempty"` // with AckRejected: why
}

// Presence states.
const (
	Online  = "online"
	Offline = "offline"
)

// Presence is published retained on connect, and registered as the Last Will so that the broker
// publishes Offline when the kiosk vanishes without saying goodbye.
type Presence struct {
	V        int       `json:"v"`
	DeviceID string    `json:"device_id"`
	State    string    `json:"state"`
	At       time.Time `json:"at"`
	Firmware string    `json:"firmware,omitempty"`
}

// Heartbeat reports a kiosk's health at a fixed interval.
type Heartbeat struct {
	V          int       `json:"v"`
	DeviceID   string    `json:"device_id"`
	At         time.Time `json:"at"`
	Seq        uint64    `json:"seq"`
	UptimeSec  int64     `json:"uptime_s"`
	QueueDepth int       `json:"queue_depth"`     // incidents not yet received by the hub
	LEDState   string    `json:"led_state"`       // what the status LEDs show now
	Fault      string    `json:"fault,omitempty"` // empty when healthy
	Firmware   string    `json:"firmware,omitempty"`
	Modem      *Modem    `json:"modem,omitempty"`
}

// Modem is the GSM modem's health as reported in a heartbeat.
type Modem struct {
	State        string `json:"state"` // "ready", "no_sim", "sim_locked", "searching", "absent", …
	SignalDBm    int    `json:"signal_dbm,omitempty"`
	Operator     string `json:"operator,omitempty"`
	Registration string `json:"registration,omitempty"`
	SIM          string `json:"sim,omitempty"` // "ready", "pin_required", "not_inserted", …
	StorageUsed  int    `json:"storage_used,omitempty"`
	StorageTotal int    `json:"storage_total,omitempty"`
	Error        string `json:"error,omitempty"` // the modem's last error, while it is not ready
	// SMSQueued counts replies waiting on the kiosk to be sent.
	SMSQueued int `json:"sms_queued,omitempty"`
}

// Command is a hub→device instruction. Name says what; Args is the command's own JSON.
type Command struct {
	V    int             `json:"v"`
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
	At   time.Time       `json:"at"`
}

// Command names understood by kentongand.
const (
	CommandPing = "ping"
	// CommandSMSSend asks the kiosk to send an SMS through its modem; Args is an SMSSend. The
	// kiosk stores it durably and sends it once, however often the command is repeated with the
	// same ID: the hub repeats its replies after a reconnect rather than keep a queue of its own.
	CommandSMSSend = "sms_send"
)

// SMSSend is the argument of CommandSMSSend.
type SMSSend struct {
	To   string `json:"to"`
	Text string `json:"text"`
	// Ticket is the ticket the SMS is about, for logs and the kiosk's status page.
	Ticket string `json:"ticket,omitempty"`
}

// Limits on an SMS the hub asks a kiosk to send: at most five concatenated parts.
const (
	maxSMSText = 5 * 153
	maxCmdID   = 128
)

// DecodeSMSSend reads and checks the arguments of an sms_send command.
func DecodeSMSSend(c Command) (SMSSend, error) {
	var s SMSSend
	fail := func(err error) (SMSSend, error) {
		return SMSSend{}, &DecodeError{Kind: KindCommand, Err: err}
	}
	if c.Name != CommandSMSSend {
		return fail(fmt.Errorf("%w: command %q is not %q", ErrInvalid, c.Name, CommandSMSSend))
	}
	if c.ID == "" || len(c.ID) > maxCmdID {
		return fail(fmt.Errorf("%w: command id must be 1 to %d bytes", ErrInvalid, maxCmdID))
	}
	dec := json.NewDecoder(bytes.NewReader(c.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fail(fmt.Errorf("%w: sms_send args: %v", ErrMalformed, err))
	}
	switch {
	case s.To == "" || len(s.To) > maxShort:
		return fail(fmt.Errorf("%w: sms_send: recipient must be 1 to %d bytes", ErrInvalid, maxShort))
	case strings.TrimSpace(s.Text) == "":
		return fail(fmt.Errorf("%w: sms_send: text is empty", ErrInvalid))
	case len([]rune(s.Text)) > maxSMSText:
		return fail(fmt.Errorf("%w: sms_send: text is longer than %d characters", ErrInvalid, maxSMSText))
	}
	return s, nil
}

// NewIncidentID returns a UUIDv7: unique, and ordered by creation time when compared as strings,
// which lets a device's outbox replay incidents in the order they were made.
func NewIncidentID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new incident id: %w", err)
	}
	return id.String(), nil
}

// Errors returned by the Decode functions. A *DecodeError wraps one of them.
var (
	ErrTooLarge        = errors.New("payload too large")
	ErrMalformed       = errors.New("malformed payload")
	ErrUnknownVersion  = errors.New("unknown schema version")
	ErrInvalid         = errors.New("invalid field")
	ErrDeviceMismatch  = errors.New("device id in payload does not match topic")
	errTrailingPayload = errors.New("data after the JSON object")
)

// DecodeError says which payload could not be read and why. IncidentID is set when the payload
// was readable far enough to name its incident, so that the hub can address its rejection.
type DecodeError struct {
	Kind       Kind
	IncidentID string
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s: %v", e.Kind, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Reason is a short, stable label for metrics and logs.
func (e *DecodeError) Reason() string {
	switch {
	case errors.Is(e.Err, ErrTooLarge):
		return "too_large"
	case errors.Is(e.Err, ErrUnknownVersion):
		return "unknown_version"
	case errors.Is(e.Err, ErrDeviceMismatch):
		return "device_mismatch"
	case errors.Is(e.Err, ErrInvalid):
		return "invalid"
	default:
		return "malformed"
	}
}

// Encode marshals a payload. It exists so that both ends write payloads one way.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return b, nil
}

// decode reads one JSON object of the current schema version into v, refusing unknown fields so
// that a misspelt field is an error rather than a silently lost value.
func decode(kind Kind, payload []byte, v any) error {
	if len(payload) > MaxPayload {
		return &DecodeError{Kind: kind, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), MaxPayload)}
	}
	var head struct {
		V  *int   `json:"v"`
		ID string `json:"id"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return &DecodeError{Kind: kind, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	if head.V == nil {
		return &DecodeError{Kind: kind, IncidentID: head.ID, Err: fmt.Errorf("%w: field \"v\" is missing", ErrUnknownVersion)}
	}
	if *head.V != SchemaVersion {
		return &DecodeError{Kind: kind, IncidentID: head.ID, Err: fmt.Errorf("%w: v=%d, this end speaks v=%d", ErrUnknownVersion, *head.V, SchemaVersion)}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &DecodeError{Kind: kind, IncidentID: head.ID, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	if dec.More() {
		return &DecodeError{Kind: kind, IncidentID: head.ID, Err: fmt.Errorf("%w: %v", ErrMalformed, errTrailingPayload)}
	}
	return nil
}

// DecodeIncident reads an incident published on topicDevice's incident topic and checks it.
func DecodeIncident(topicDevice string, payload []byte) (Incident, error) {
	var in Incident
	if err := decode(KindIncident, payload, &in); err != nil {
		return Incident{}, err
	}
	fail := func(err error) (Incident, error) {
		return Incident{}, &DecodeError{Kind: KindIncident, IncidentID: in.ID, Err: err}
	}
	if in.DeviceID != topicDevice {
		return fail(fmt.Errorf("%w: payload says %q, topic says %q", ErrDeviceMismatch, in.DeviceID, topicDevice))
	}
	if err := in.Validate(); err != nil {
		return fail(err)
	}
	return in, nil
}

// Validate checks the fields a hub relies on.
func (in *Incident) Validate() error {
	if _, err := uuid.Parse(in.ID); err != nil || len(in.ID) != 36 {
		return fmt.Errorf("%w: id %q is not a UUID", ErrInvalid, in.ID)
	}
	if err := ValidateDeviceID(in.DeviceID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch in.Source {
	case SourceButton, SourceSMS, SourceTamper:
	default:
		return fmt.Errorf("%w: source %q is not one of %q, %q, %q", ErrInvalid, in.Source, SourceButton, SourceSMS, SourceTamper)
	}
	switch in.Request {
	case "":
		if in.Target != "" {
			return fmt.Errorf("%w: target without a request", ErrInvalid)
		}
	case RequestStatus, RequestCancel:
		if in.Target == "" {
			return fmt.Errorf("%w: request %q needs a target", ErrInvalid, in.Request)
		}
	case RequestConfirm, RequestDeny:
		if in.Reporter == "" {
			return fmt.Errorf("%w: request %q needs the answering reporter", ErrInvalid, in.Request)
		}
	default:
		return fmt.Errorf("%w: unknown request %q", ErrInvalid, in.Request)
	}
	if in.OccurredAt.IsZero() {
		return fmt.Errorf("%w: occurred_at is missing", ErrInvalid)
	}
	if in.Attempt < 1 {
		return fmt.Errorf("%w: attempt must be at least 1", ErrInvalid)
	}
	for name, v := range map[string]string{"button": in.Button, "category": in.Category, "reporter": in.Reporter, "target": in.Target} {
		if len(v) > maxShort {
			return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, name, maxShort)
		}
	}
	if len(in.Text) > maxText {
		return fmt.Errorf("%w: text is longer than %d bytes", ErrInvalid, maxText)
	}
	if in.Category != "" && strings.ToLower(in.Category) != in.Category {
		return fmt.Errorf("%w: category %q must be lower case", ErrInvalid, in.Category)
	}
	return nil
}

// DecodeAck reads an acknowledgement.
func DecodeAck(payload []byte) (Ack, error) {
	var a Ack
	if err := decode(KindAck, payload, &a); err != nil {
		return Ack{}, err
	}
	if a.Status == "" {
		return Ack{}, &DecodeError{Kind: KindAck, IncidentID: a.IncidentID, Err: fmt.Errorf("%w: status is missing", ErrInvalid)}
	}
	return a, nil
}

// DecodePresence reads a presence message published on topicDevice's presence topic.
func DecodePresence(topicDevice string, payload []byte) (Presence, error) {
	var p Presence
	if err := decode(KindPresence, payload, &p); err != nil {
		return Presence{}, err
	}
	if p.DeviceID != topicDevice {
		return Presence{}, &DecodeError{Kind: KindPresence, Err: fmt.Errorf("%w: payload says %q, topic says %q", ErrDeviceMismatch, p.DeviceID, topicDevice)}
	}
	if p.State != Online && p.State != Offline {
		return Presence{}, &DecodeError{Kind: KindPresence, Err: fmt.Errorf("%w: state %q", ErrInvalid, p.State)}
	}
	return p, nil
}

// DecodeHeartbeat reads a heartbeat published on topicDevice's heartbeat topic.
func DecodeHeartbeat(topicDevice string, payload []byte) (Heartbeat, error) {
	var h Heartbeat
	if err := decode(KindHeartbeat, payload, &h); err != nil {
		return Heartbeat{}, err
	}
	if h.DeviceID != topicDevice {
		return Heartbeat{}, &DecodeError{Kind: KindHeartbeat, Err: fmt.Errorf("%w: payload says %q, topic says %q", ErrDeviceMismatch, h.DeviceID, topicDevice)}
	}
	return h, nil
}

// DecodeCommand reads a command.
func DecodeCommand(payload []byte) (Command, error) {
	var c Command
	if err := decode(KindCommand, payload, &c); err != nil {
		return Command{}, err
	}
	if c.Name == "" {
		return Command{}, &DecodeError{Kind: KindCommand, Err: fmt.Errorf("%w: name is missing", ErrInvalid)}
	}
	return c, nil
}
