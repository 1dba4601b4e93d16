package hub

import (
	"context"
	"time"

	"github.com/kentongan/kentongan/mqtt"
)

// Device is a kiosk the hub knows. Incidents from devices not in the registry are rejected.
type Device struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name" yaml:"name"`
	Site Site   `json:"site" yaml:"site"`
	// RTRWHeads are the phone numbers of the post's RT/RW heads, who are asked by SMS through
	// the kiosk to confirm a panic-button press, and whose YA/TIDAK answers count.
	RTRWHeads []string `json:"rt_rw_heads,omitempty" yaml:"rt_rw_heads"`
	// SupervisionSec is how long the kiosk may be silent before it is reported offline; 0 means
	// the hub's default.
	SupervisionSec int `json:"supervision_s,omitempty" yaml:"supervision_s"`
}

// Site is where a kiosk stands, in the administrative units operators dispatch by.
type Site struct {
	Kecamatan string  `json:"kecamatan" yaml:"kecamatan"`
	Kelurahan string  `json:"kelurahan" yaml:"kelurahan"` // kelurahan or desa
	RW        string  `json:"rw" yaml:"rw"`
	RT        string  `json:"rt" yaml:"rt"`
	Lat       float64 `json:"lat" yaml:"lat"`
	Lon       float64 `json:"lon" yaml:"lon"`
}

// Presence states of a device as the hub sees it.
const (
	PresenceUnknown = "unknown" // nothing heard since the hub started
	PresenceOnline  = "online"
	PresenceOffline = "offline"
)

// DeviceState is what the hub last heard from a device. It lives in memory only: heartbeats are
// frequent, and after a restart presence is republished (retained) and heartbeats resume.
type DeviceState struct {
	Presence      string     `json:"presence"`
	PresenceAt    *time.Time `json:"presence_at"`    // hub clock
	LastHeartbeat *time.Time `json:"last_heartbeat"` // hub clock
	HeartbeatSeq  uint64     `json:"heartbeat_seq"`
	UptimeSec     int64      `json:"uptime_s"`
	QueueDepth    int        `json:"queue_depth"` // incidents the device has not had received
	LEDState      string     `json:"led_state,omitempty"`
	Fault         string     `json:"fault,omitempty"`
	Firmware      string     `json:"firmware,omitempty"`
	// Modem is the GSM modem's health from the last heartbeat; nil for a kiosk without one.
	Modem *mqtt.Modem `json:"modem,omitempty"`

	// LastHeard is when anything last came from the device (hub clock).
	LastHeard *time.Time `json:"last_heard,omitempty"`
	// Silent is set when supervision found the device unheard for longer than its interval
	// (the kiosk_offline alert); Presence is then offline too.
	Silent bool `json:"silent,omitempty"`

	// The device's false alarms among its tickets over the hub's false-alarm window, and
	// whether that rate is over the limit (the false_alarm_rate alert).
	WindowTickets     int  `json:"window_tickets"`
	WindowFalseAlarms int  `json:"window_false_alarms"`
	FalseAlarmFlagged bool `json:"false_alarm_flagged,omitempty"`
}

// DeviceStatus is a registered device with its live state.
type DeviceStatus struct {
	Device
	State DeviceState `json:"state"`
}

// DeviceService lists the registry with live state, and reaches devices.
type DeviceService interface {
	Devices(ctx context.Context) []DeviceStatus
	// Ping sends the device a ping command; a kiosk answers with a heartbeat at once, so an
	// operator can check a kiosk without waiting for its next heartbeat. It returns the
	// command's ID, or a not_found *Error for a device not in the registry.
	Ping(ctx context.Context, deviceID string) (commandID string, err error)
}
