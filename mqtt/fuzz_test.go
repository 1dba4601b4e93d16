package mqtt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The payloads a kiosk and the hub read from the broker come from the other end, or from
// whoever else managed to publish: each decoder must refuse rather than panic, say why with a
// *DecodeError, and accept only what it would write again the same way.

// fuzzDevice is the device whose topic the fuzzed payloads arrive on.
const fuzzDevice = "ciakar-rw03"

// checkRefusal fails unless err is a *DecodeError of kind with a known reason.
func checkRefusal(t *testing.T, kind Kind, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T (%v) is not a *DecodeError", err, err)
	}
	if de.Kind != kind {
		t.Fatalf("error names kind %q, want %q", de.Kind, kind)
	}
	switch de.Reason() {
	case "too_large", "unknown_version", "device_mismatch", "invalid", "malformed":
	default:
		t.Fatalf("unknown reason %q", de.Reason())
	}
}

// checkStable encodes what a decoder accepted, decodes that again and checks that the second
// encoding is the first: a payload that changes meaning on a re-send (the outbox re-encodes,
// the hub stores and re-publishes) would be a different message.
func checkStable[T any](t *testing.T, v T, decode func([]byte) (T, error)) {
	t.Helper()
	b, err := Encode(v)
	if err != nil {
		t.Fatalf("encode of an accepted payload: %v", err)
	}
	again, err := decode(b)
	if err != nil {
		t.Fatalf("re-decode of %s: %v", b, err)
	}
	b2, err := Encode(again)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the payload:\n%s\n%s", b, b2)
	}
}

// FuzzDecodeAck: the kiosk reads acks from the hub.
func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"v":1,"incident_id":"019ac3f2-5b1e-7d3a-9c4e-2f6a8b0d1e3f","ticket_id":"019ac3f2-5b9c-70aa-8e61-3c1d0f7b2a45","ticket_number":"112-000123","status":"received","at":"2026-11-27T13:14:05.131Z"}`))
	f.Add([]byte(`{"v":1,"incident_id":"019ac3f2-5b1e-7d3a-9c4e-2f6a8b0d1e3f","status":"rejected","at":"2026-11-27T13:14:05.131Z","error":"device \"ciakar-rw03\" is not registered at this hub"}`))
	f.Add([]byte(`{"v":1,"status":"acknowledged","at":"2026-11-27T20:14:05+07:00"}`))
	f.Add([]byte(`{"v":1,"incident_id":"x"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := DecodeAck(payload)
		if err != nil {
			checkRefusal(t, KindAck, err)
			return
		}
		if a.Status == "" || a.V != SchemaVersion {
			t.Fatalf("accepted %+v", a)
		}
		checkStable(t, a, DecodeAck)
	})
}

// FuzzDecodeCommand: the kiosk reads commands, and sms_send ones make it send an SMS.
func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"c-0001","name":"ping","at":"2026-11-27T13:05:00Z"}`))
	f.Add([]byte(`{"v":1,"id":"sms-019ac3f2","name":"sms_send","args":{"to":"+6281212345678","text":"Laporan Anda diterima: tiket 112-000123.","ticket":"112-000123"},"at":"2026-11-27T13:05:00Z"}`))
	f.Add([]byte(`{"v":1,"id":"c","name":"sms_send","args":{"to":"0812","text":"  "},"at":"2026-11-27T13:05:00Z"}`))
	f.Add([]byte(`{"v":1,"id":"c","name":"sms_send","args":[],"at":"2026-11-27T13:05:00Z"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := DecodeCommand(payload)
		if err != nil {
			checkRefusal(t, KindCommand, err)
			return
		}
		if c.Name == "" {
			t.Fatalf("accepted a command without a name: %+v", c)
		}
		checkStable(t, c, DecodeCommand)
		s, err := DecodeSMSSend(c)
		if err != nil {
			checkRefusal(t, KindCommand, err)
			return
		}
		if c.Name != CommandSMSSend || s.To == "" || strings.TrimSpace(s.Text) == "" || len([]rune(s.Text)) > maxSMSText {
			t.Fatalf("accepted sms_send %+v from %+v", s, c)
		}
	})
}

// FuzzDecodeHeartbeat: the hub reads heartbeats.
func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add([]byte(`{"v":1,"device_id":"ciakar-rw03","at":"2026-11-27T13:00:30Z","seq":42,"uptime_s":1260,"queue_depth":0,"led_state":"idle","firmware":"0.1.0","modem":{"state":"ready","signal_dbm":-71,"operator":"TELKOMSEL","registration":"home","sim":"ready","storage_used":0,"storage_total":30,"sms_queued":0}}`))
	f.Add([]byte(`{"v":1,"device_id":"ciakar-rw03","at":"2026-11-27T13:00:30Z","seq":1,"uptime_s":3,"queue_depth":7,"led_state":"fault","fault":"disk_full"}`))
	f.Add([]byte(`{"v":1,"device_id":"other-rw01","at":"2026-11-27T13:00:30Z","seq":1,"uptime_s":3,"queue_depth":0,"led_state":"idle"}`))
	f.Add([]byte(`{"v":1,"device_id":"ciakar-rw03","modem":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := DecodeHeartbeat(fuzzDevice, payload)
		if err != nil {
			checkRefusal(t, KindHeartbeat, err)
			return
		}
		if h.DeviceID != fuzzDevice {
			t.Fatalf("accepted a heartbeat of %q on %q's topic", h.DeviceID, fuzzDevice)
		}
		checkStable(t, h, func(b []byte) (Heartbeat, error) { return DecodeHeartbeat(fuzzDevice, b) })
	})
}

// FuzzDecodePresence: the hub reads presence, including Last Wills.
func FuzzDecodePresence(f *testing.F) {
	f.Add([]byte(`{"v":1,"device_id":"ciakar-rw03","state":"online","at":"2026-11-27T13:00:00Z","firmware":"0.1.0"}`))
	f.Add([]byte(`{"v":1,"device_id":"ciakar-rw03","state":"offline","at":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":1,"device_id":"ciakar-rw03","state":"asleep","at":"2026-11-27T13:00:00Z"}`))
	f.Add([]byte(`{"v":1,"device_id":"sukamulya-rw01","state":"offline","at":"2026-11-27T13:00:00Z"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := DecodePresence(fuzzDevice, payload)
		if err != nil {
			checkRefusal(t, KindPresence, err)
			return
		}
		if p.DeviceID != fuzzDevice || (p.State != Online && p.State != Offline) {
			t.Fatalf("accepted %+v", p)
		}
		checkStable(t, p, func(b []byte) (Presence, error) { return DecodePresence(fuzzDevice, b) })
	})
}

// FuzzParseTopic: the hub learns the device from the topic, which the publisher chose; what
// it accepts must name the same topic again and be a valid device.
func FuzzParseTopic(f *testing.F) {
	f.Add("kentongan/v1/devices/ciakar-rw03/incident")
	f.Add("kentongan/v1/devices/ciakar-rw03/heartbeat")
	f.Add("kentongan/v1/devices/../ack")
	f.Add("kentongan/v1/devices/ciakar-rw03/incident/extra")
	f.Add("kentongan/v1/devices/CIAKAR/presence")
	f.Fuzz(func(t *testing.T, topic string) {
		dev, kind, err := ParseTopic(topic)
		if err != nil {
			if !errors.Is(err, ErrBadTopic) && !errors.Is(err, ErrBadDeviceID) {
				t.Fatalf("error %v wraps neither ErrBadTopic nor ErrBadDeviceID", err)
			}
			return
		}
		if ValidateDeviceID(dev) != nil {
			t.Fatalf("accepted device %q", dev)
		}
		if Topic(dev, kind) != topic {
			t.Fatalf("%q parsed as %q %q, which is topic %q", topic, dev, kind, Topic(dev, kind))
		}
	})
}
