package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validIncident(t *testing.T) Incident {
	t.Helper()
	id, err := NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	return Incident{
		V: SchemaVersion, ID: id, DeviceID: "ciakar-rw03", Source: SourceButton, Button: "kebakaran",
		Category: "fire", OccurredAt: time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC), Attempt: 1,
	}
}

func TestIncidentRoundTrip(t *testing.T) {
	in := validIncident(t)
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeIncident("ciakar-rw03", b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got != in {
		t.Fatalf("round trip changed the incident:\n got %+v\nwant %+v", got, in)
	}
}

func TestDecodeIncidentRejects(t *testing.T) {
	base := validIncident(t)
	enc := func(f func(*Incident)) []byte {
		in := base
		f(&in)
		b, err := Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name       string
		topic      string
		payload    []byte
		want       error
		reason     string
		incidentID string
	}{
		{"not json", "ciakar-rw03", []byte("PRESS!"), ErrMalformed, "malformed", ""},
		{"empty", "ciakar-rw03", nil, ErrMalformed, "malformed", ""},
		{"too large", "ciakar-rw03", []byte(`{"v":1,"text":"` + strings.Repeat("a", MaxPayload) + `"}`), ErrTooLarge, "too_large", ""},
		{"no version", "ciakar-rw03", []byte(`{"id":"x"}`), ErrUnknownVersion, "unknown_version", "x"},
		{"future version", "ciakar-rw03", []byte(`{"v":2,"id":"abc"}`), ErrUnknownVersion, "unknown_version", "abc"},
		{"unknown field", "ciakar-rw03", []byte(`{"v":1,"id":"abc","colour":"red"}`), ErrMalformed, "malformed", "abc"},
		{"trailing data", "ciakar-rw03", append(enc(func(*Incident) {}), []byte(`{}`)...), ErrMalformed, "malformed", ""},
		{"other device", "sukamulya-rw01", enc(func(*Incident) {}), ErrDeviceMismatch, "device_mismatch", base.ID},
		{"bad id", "ciakar-rw03", enc(func(i *Incident) { i.ID = "1" }), ErrInvalid, "invalid", "1"},
		{"bad source", "ciakar-rw03", enc(func(i *Incident) { i.Source = "telepathy" }), ErrInvalid, "invalid", base.ID},
		{"no time", "ciakar-rw03", enc(func(i *Incident) { i.OccurredAt = time.Time{} }), ErrInvalid, "invalid", base.ID},
		{"attempt zero", "ciakar-rw03", enc(func(i *Incident) { i.Attempt = 0 }), ErrInvalid, "invalid", base.ID},
		{"long text", "ciakar-rw03", enc(func(i *Incident) { i.Text = strings.Repeat("x", maxText+1) }), ErrInvalid, "invalid", base.ID},
		{"upper category", "ciakar-rw03", enc(func(i *Incident) { i.Category = "FIRE" }), ErrInvalid, "invalid", base.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeIncident(tt.topic, tt.payload)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err %T is not a *DecodeError", err)
			}
			if de.Reason() != tt.reason {
				t.Errorf("reason = %q, want %q", de.Reason(), tt.reason)
			}
			if de.IncidentID != tt.incidentID {
				t.Errorf("incident id = %q, want %q", de.IncidentID, tt.incidentID)
			}
		})
	}
}

func TestIncidentIDsAreTimeOrdered(t *testing.T) {
	prev := ""
	for range 1000 {
		id, err := NewIncidentID()
		if err != nil {
			t.Fatal(err)
		}
		if id <= prev {
			t.Fatalf("id %s does not sort after %s", id, prev)
		}
		prev = id
	}
}

func TestTopics(t *testing.T) {
	for _, k := range []Kind{KindIncident, KindAck, KindPresence, KindHeartbeat, KindCommand} {
		topic := Topic("ciakar-rw03", k)
		id, kind, err := ParseTopic(topic)
		if err != nil || id != "ciakar-rw03" || kind != k {
			t.Errorf("ParseTopic(%q) = %q, %q, %v", topic, id, kind, err)
		}
	}
	if got := Filter(KindIncident); got != "kentongan/v1/devices/+/incident" {
		t.Errorf("Filter = %q", got)
	}
	if got := SharedFilter("hub", KindIncident); got != "$share/hub/kentongan/v1/devices/+/incident" {
		t.Errorf("SharedFilter = %q", got)
	}
	for _, bad := range []string{
		"", "kentongan/v2/devices/a/incident", "kentongan/v1/devices/a", "kentongan/v1/devices/a/incident/x",
		"kentongan/v1/devices/A/incident", "kentongan/v1/devices//incident", "kentongan/v1/devices/a/selfie",
		"kentongan/v1/devices/+/incident", "kentongan/v1/devices/" + strings.Repeat("a", 65) + "/incident",
	} {
		if _, _, err := ParseTopic(bad); err == nil {
			t.Errorf("ParseTopic(%q) accepted a bad topic", bad)
		}
	}
}

func TestDecodeOthers(t *testing.T) {
	p, _ := Encode(Presence{V: 1, DeviceID: "a", State: Online, At: time.Now()})
	if _, err := DecodePresence("a", p); err != nil {
		t.Errorf("presence: %v", err)
	}
	if _, err := DecodePresence("b", p); !errors.Is(err, ErrDeviceMismatch) {
		t.Errorf("presence from another device: err = %v", err)
	}
	bad, _ := Encode(Presence{V: 1, DeviceID: "a", State: "asleep", At: time.Now()})
	if _, err := DecodePresence("a", bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("presence state asleep: err = %v", err)
	}
	h, _ := Encode(Heartbeat{V: 1, DeviceID: "a", At: time.Now(), QueueDepth: 3, Modem: &Modem{State: "ready", SignalDBm: -71}})
	hb, err := DecodeHeartbeat("a", h)
	if err != nil || hb.QueueDepth != 3 || hb.Modem.SignalDBm != -71 {
		t.Errorf("heartbeat: %+v, %v", hb, err)
	}
	a, _ := Encode(Ack{V: 1, IncidentID: "x", Status: AckReceived, TicketNumber: "112-000001", At: time.Now()})
	ack, err := DecodeAck(a)
	if err != nil || ack.TicketNumber != "112-000001" {
		t.Errorf("ack: %+v, %v", ack, err)
	}
	if _, err := DecodeAck([]byte(`{"v":1,"incident_id":"x"}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("ack without status: err = %v", err)
	}
	c, _ := Encode(Command{V: 1, ID: "c1", Name: CommandPing, At: time.Now()})
	if cmd, err := DecodeCommand(c); err != nil || cmd.Name != CommandPing {
		t.Errorf("command: %+v, %v", cmd, err)
	}
}

// FuzzDecodeIncident checks that no payload makes the decoder panic, and that whatever it accepts
// is valid and survives a round trip.
func FuzzDecodeIncident(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","device_id":"ciakar-rw03","source":"button","occurred_at":"2026-11-27T20:00:00Z","attempt":1}`))
	f.Add([]byte(`{"v":1,"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","device_id":"ciakar-rw03","source":"sms","text":"DARURAT KEBAKARAN gang 3","reporter":"+628121234567","occurred_at":"2026-11-27T20:00:00+07:00","attempt":4}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"v":1,"v":1}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		in, err := DecodeIncident("ciakar-rw03", payload)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted an invalid incident: %v", err)
		}
		b, err := Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeIncident("ciakar-rw03", b)
		if err != nil {
			t.Fatalf("re-decode of accepted incident: %v", err)
		}
		if !again.OccurredAt.Equal(in.OccurredAt) || again.ID != in.ID || again.Text != in.Text {
			t.Fatalf("round trip changed the incident: %+v vs %+v", again, in)
		}
	})
}
