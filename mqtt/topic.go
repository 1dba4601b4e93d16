// Package mqtt is Kentongan's wire protocol: the topics and JSON payloads that kiosks (kentongand)
// and the 112 hub exchange over MQTT. It knows nothing of hardware, tickets or storage, so that
// both ends, tests and third-party tools can speak it.
//
// Every topic lives under Root and names the device it concerns:
//
//	kentongan/v1/devices/{device_id}/incident   device → hub, QoS 1
//	kentongan/v1/devices/{device_id}/ack        hub → device, QoS 1
//	kentongan/v1/devices/{device_id}/presence   device → all, QoS 1, retained, also the Last Will
//	kentongan/v1/devices/{device_id}/heartbeat  device → hub, QoS 0
//	kentongan/v1/devices/{device_id}/command    hub → device, QoS 1
//
// docs/protocol.md describes each payload with examples.
package mqtt

import (
	"errors"
	"fmt"
	"strings"
)

// Root is the prefix of every Kentongan topic. The version in it changes only when a topic's
// meaning changes; payload changes are signalled by SchemaVersion instead.
const Root = "kentongan/v1"

// Kind is the last segment of a device topic: what the message is.
type Kind string

const (
	KindIncident  Kind = "incident"
	KindAck       Kind = "ack"
	KindPresence  Kind = "presence"
	KindHeartbeat Kind = "heartbeat"
	KindCommand   Kind = "command"
)

// QoS levels per kind. Incidents, acks, presence and commands must arrive; a lost heartbeat is
// replaced by the next one.
const (
	QoSIncident  byte = 1
	QoSAck       byte = 1
	QoSPresence  byte = 1
	QoSHeartbeat byte = 0
	QoSCommand   byte = 1
)

// ErrBadTopic reports a topic that is not a Kentongan device topic.
var ErrBadTopic = errors.New("not a kentongan device topic")

// Topic returns the topic of the given kind for one device.
func Topic(deviceID string, kind Kind) string {
	return Root + "/devices/" + deviceID + "/" + string(kind)
}

// Filter returns the subscription filter matching the given kind for every device.
func Filter(kind Kind) string {
	return Root + "/devices/+/" + string(kind)
}

// SharedFilter returns Filter(kind) as an MQTT 5 shared subscription, so that several hub
// replicas behind one external broker each receive a share of the messages.
func SharedFilter(group string, kind Kind) string {
	return "$share/" + group + "/" + Filter(kind)
}

// ParseTopic splits a device topic into its device ID and kind.
func ParseTopic(topic string) (deviceID string, kind Kind, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/devices/")
	if !ok {
		return "", "", fmt.Errorf("parse topic %q: %w", topic, ErrBadTopic)
	}
	id, k, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(k, "/") {
		return "", "", fmt.Errorf("parse topic %q: %w", topic, ErrBadTopic)
	}
	if err := ValidateDeviceID(id); err != nil {
		return "", "", fmt.Errorf("parse topic %q: %w", topic, err)
	}
	switch Kind(k) {
	case KindIncident, KindAck, KindPresence, KindHeartbeat, KindCommand:
		return id, Kind(k), nil
	}
	return "", "", fmt.Errorf("parse topic %q: unknown kind %q: %w", topic, k, ErrBadTopic)
}

// ErrBadDeviceID reports a device ID that cannot be used in a topic.
var ErrBadDeviceID = errors.New("invalid device id")

// ValidateDeviceID checks that id is 1–64 characters of lower-case letters, digits, '-' and '_',
// so that it is safe as a topic segment, a file name and a URL path segment.
func ValidateDeviceID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w %q: must be 1 to 64 characters", ErrBadDeviceID, id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return fmt.Errorf("%w %q: only a-z, 0-9, '-' and '_' are allowed", ErrBadDeviceID, id)
		}
	}
	return nil
}
