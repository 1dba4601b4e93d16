package hubd_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/mqtt"
)

func received(a mqtt.Ack) bool { return a.Status == mqtt.AckReceived }

func TestIncidentIdempotentOverMQTT(t *testing.T) {
	m := startHub(t, t.TempDir(), "ciakar-rw03")
	k := newKiosk(t, m.BrokerURL(), "ciakar-rw03")

	in := k.incident()
	k.send(in)
	in.Attempt = 2 // a re-send after a lost ack
	k.send(in)

	acks := k.waitAcks("two acks", 10*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in.ID)) >= 2 })
	got := ackFor(acks, in.ID)
	a, b := got[0], got[1]
	if a.Status != mqtt.AckReceived || a.TicketID == "" || !strings.HasPrefix(a.TicketNumber, "112-") {
		t.Fatalf("first ack %+v: want received with ticket id and number", a)
	}
	if b.Status != a.Status || b.TicketID != a.TicketID || b.TicketNumber != a.TicketNumber || b.IncidentID != a.IncidentID || b.Error != "" {
		t.Fatalf("replay ack %+v differs from first %+v", b, a)
	}

	tickets, err := m.Store.Tickets(context.Background(), hub.TicketFilter{DeviceID: "ciakar-rw03"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tickets) != 1 || tickets[0].ID != a.TicketID || tickets[0].IncidentID != in.ID {
		t.Fatalf("tickets %+v: want exactly the one ticket %s", tickets, a.TicketID)
	}
	if tk := tickets[0]; tk.Priority != hub.PriorityEmergency || tk.Source != mqtt.SourceButton || tk.Button != "darurat" {
		t.Errorf("ticket %+v: a button press must be an emergency from source button", tk)
	}
	st := m.Service.Stats(context.Background())
	if st.Incidents.Accepted != 1 || st.Incidents.Replays != 1 {
		t.Errorf("stats %+v: want 1 accepted, 1 replay", st.Incidents)
	}
}

// TestBurstDropsNothing is the reason the ingest path is an inline subscription: many kiosks
// publishing QoS 1 as fast as they can, every incident must become exactly one ticket and be
// acked to its kiosk.
func TestBurstDropsNothing(t *testing.T) {
	const kiosks, per = 20, 1000
	ids := make([]string, kiosks)
	for i := range ids {
		ids[i] = fmt.Sprintf("burst-%02d", i)
	}
	dir := t.TempDir()
	m := startHub(t, dir, ids...)
	ks := make([]*kiosk, kiosks)
	for i, id := range ids {
		ks[i] = newKiosk(t, m.BrokerURL(), id)
	}
	sent := make([]map[string]bool, kiosks)
	payloads := make([][][]byte, kiosks)
	for i, k := range ks {
		sent[i] = map[string]bool{}
		for range per {
			in := k.incident()
			sent[i][in.ID] = true
			payloads[i] = append(payloads[i], encode(t, in))
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, kiosks)
	for i, k := range ks {
		wg.Go(func() {
			toks := make([]paho.Token, 0, per)
			for _, p := range payloads[i] {
				toks = append(toks, k.c.Publish(mqtt.Topic(k.id, mqtt.KindIncident), 1, false, p))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
					errs <- fmt.Errorf("kiosk %s: publish: %v", k.id, tok.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	published := time.Since(start)

	numbers := map[string]bool{}
	for i, k := range ks {
		acks := k.waitAcks(fmt.Sprintf("%d received acks", per), 60*time.Second, func(a []mqtt.Ack) bool { return len(a) >= per })
		seen := map[string]bool{}
		for _, a := range acks {
			if !received(a) || !sent[i][a.IncidentID] || a.TicketNumber == "" {
				t.Fatalf("kiosk %s: unexpected ack %+v", k.id, a)
			}
			if seen[a.IncidentID] {
				t.Fatalf("kiosk %s: incident %s acked twice", k.id, a.IncidentID)
			}
			seen[a.IncidentID] = true
			if numbers[a.TicketNumber] {
				t.Fatalf("ticket number %s given to two incidents", a.TicketNumber)
			}
			numbers[a.TicketNumber] = true
		}
	}
	acked := time.Since(start)

	st := m.Service.Stats(context.Background())
	if st.Incidents.Accepted != kiosks*per || st.Incidents.Replays != 0 || st.Incidents.RejectedTotal != 0 || st.Incidents.Unanswered != 0 {
		t.Errorf("stats %+v: want %d accepted and nothing else", st.Incidents, kiosks*per)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, hubd.DBFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, distinct int
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT incident_id) FROM tickets`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != kiosks*per || distinct != kiosks*per {
		t.Errorf("database holds %d tickets (%d distinct incidents), want %d", n, distinct, kiosks*per)
	}
	met := newAPI(t, m).metrics()
	for _, line := range []string{
		"kentongan_hub_broker_messages_dropped_total 0",
		"kentongan_hub_broker_inflight_dropped_total 0",
		fmt.Sprintf(`kentongan_hub_incidents_total{result="accepted"} %d`, kiosks*per),
	} {
		if !metricLine(met, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	t.Logf("burst: %d kiosks × %d QoS 1 incidents = %d; all PUBACKed in %v, all tickets acked in %v (%.0f/s), %d commits",
		kiosks, per, kiosks*per, published.Round(time.Millisecond), acked.Round(time.Millisecond),
		float64(kiosks*per)/acked.Seconds(), st.Queue.Batches)
}

func TestBadInputIsRejectedAndOthersGoThrough(t *testing.T) {
	m := startHub(t, t.TempDir(), "bad-1", "bad-2", "good-1")
	bad := newKiosk(t, m.BrokerURL(), "bad-1")
	ghost := newKiosk(t, m.BrokerURL(), "ghost") // not registered
	good := newKiosk(t, m.BrokerURL(), "good-1")

	// A good kiosk keeps reporting while the bad ones misbehave, and must not notice.
	const goodN = 50
	goodIDs := map[string]bool{}
	goodPayloads := make([][]byte, 0, goodN)
	for range goodN {
		in := good.incident()
		goodIDs[in.ID] = true
		goodPayloads = append(goodPayloads, encode(t, in))
	}
	goodErr := make(chan error, 1)
	go func() {
		for _, p := range goodPayloads {
			tok := good.c.Publish(mqtt.Topic("good-1", mqtt.KindIncident), 1, false, p)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				goodErr <- fmt.Errorf("good kiosk publish: %v", tok.Error())
				return
			}
		}
		goodErr <- nil
	}()

	uuid := func() string { id, _ := mqtt.NewIncidentID(); return id }
	v2ID, mismatchID, invalidID := uuid(), uuid(), uuid()
	cases := []struct {
		name       string
		k          *kiosk
		payload    []byte
		reason     string
		incidentID string
	}{
		{"malformed", bad, []byte(`{"v":1,"id":`), "malformed", ""},
		{"oversized", bad, []byte(`{"v":1,"text":"` + strings.Repeat("x", mqtt.MaxPayload) + `"}`), "too_large", ""},
		{"v2", bad, fmt.Appendf(nil, `{"v":2,"id":%q,"device_id":"bad-1","source":"button","occurred_at":"2026-11-27T13:00:00Z","attempt":1,"priority":"high"}`, v2ID), "unknown_version", v2ID},
		{"device mismatch", bad, encode(t, mqtt.Incident{V: 1, ID: mismatchID, DeviceID: "bad-2", Source: "button", OccurredAt: time.Now(), Attempt: 1}), "device_mismatch", mismatchID},
		{"invalid field", bad, encode(t, mqtt.Incident{V: 1, ID: invalidID, DeviceID: "bad-1", Source: "pigeon", OccurredAt: time.Now(), Attempt: 1}), "invalid", invalidID},
	}
	for _, c := range cases {
		c.k.publishRaw(mqtt.KindIncident, c.payload)
	}
	ghostIn := ghost.incident()
	ghost.send(ghostIn)

	acks := bad.waitAcks("rejections", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= len(cases) })
	for i, c := range cases {
		a := acks[i] // one publisher, one subscriber: answers come in order
		if a.Status != mqtt.AckRejected || a.IncidentID != c.incidentID || a.Error == "" || a.TicketID != "" {
			t.Errorf("%s: ack %+v, want rejected for incident %q with an error", c.name, a, c.incidentID)
		}
	}
	ga := ghost.waitAcks("rejection", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 1 })[0]
	if ga.Status != mqtt.AckRejected || ga.IncidentID != ghostIn.ID || !strings.Contains(ga.Error, "not registered") {
		t.Errorf("unknown device: ack %+v", ga)
	}

	if err := <-goodErr; err != nil {
		t.Fatal(err)
	}
	gacks := good.waitAcks("good acks", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= goodN })
	for _, a := range gacks {
		if !received(a) || !goodIDs[a.IncidentID] {
			t.Errorf("good kiosk got %+v", a)
		}
	}

	var st hub.Stats
	if code := newAPI(t, m).do("GET", "/api/v1/status", "", &st); code != 200 {
		t.Fatalf("status: %d", code)
	}
	want := map[string]uint64{"malformed": 1, "too_large": 1, "unknown_version": 1, "device_mismatch": 1, "invalid": 1, "unknown_device": 1}
	for reason, n := range want {
		if st.Incidents.Rejected[reason] != n {
			t.Errorf("status rejected[%s] = %d, want %d (all: %v)", reason, st.Incidents.Rejected[reason], n, st.Incidents.Rejected)
		}
	}
	if st.Incidents.RejectedTotal != 6 || st.Incidents.Accepted != goodN {
		t.Errorf("status incidents %+v: want 6 rejected, %d accepted", st.Incidents, goodN)
	}
	met := newAPI(t, m).metrics()
	for reason, n := range want {
		line := fmt.Sprintf(`kentongan_hub_incidents_rejected_total{reason=%q} %d`, reason, n)
		if !metricLine(met, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if n, _ := m.Store.Tickets(context.Background(), hub.TicketFilter{DeviceID: "bad-1"}); len(n) != 0 {
		t.Errorf("bad input made %d tickets", len(n))
	}
}

type ticketJSON struct {
	hub.Ticket
	Events []hub.Event `json:"events"`
}

func TestHTTPAPI(t *testing.T) {
	m := startHub(t, t.TempDir(), "api-1", "api-2")
	api := newAPIAs(t, m, "siti")
	k := newKiosk(t, m.BrokerURL(), "api-1")

	// Presence and heartbeat feed the device list without touching the store.
	k.c.Publish(mqtt.Topic("api-1", mqtt.KindPresence), 1, true,
		encode(t, mqtt.Presence{V: 1, DeviceID: "api-1", State: mqtt.Online, At: time.Now(), Firmware: "0.1.0"})).Wait()
	k.c.Publish(mqtt.Topic("api-1", mqtt.KindHeartbeat), 0, false,
		encode(t, mqtt.Heartbeat{V: 1, DeviceID: "api-1", At: time.Now(), Seq: 7, UptimeSec: 60, QueueDepth: 2, LEDState: "idle", Fault: "sd card"})).Wait()
	waitFor(t, "device state", 10*time.Second, func() (bool, string) {
		var ds []hub.DeviceStatus
		api.do("GET", "/api/v1/devices", "", &ds)
		if len(ds) != 2 || ds[0].ID != "api-1" || ds[1].ID != "api-2" {
			return false, fmt.Sprintf("%+v", ds)
		}
		s := ds[0].State
		ok := s.Presence == hub.PresenceOnline && s.HeartbeatSeq == 7 && s.QueueDepth == 2 && s.Fault == "sd card" &&
			s.Firmware == "0.1.0" && s.LastHeartbeat != nil && ds[1].State.Presence == hub.PresenceUnknown
		return ok, fmt.Sprintf("%+v", ds)
	})

	in := k.incident()
	in.Source, in.Button, in.Category, in.Text, in.Reporter = mqtt.SourceSMS, "", "fire", "kebakaran di gang 3", "+6281212345678"
	k.send(in)
	first := k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 1 })[0]

	var list []hub.Ticket
	if code := api.do("GET", "/api/v1/tickets?status=new&device_id=api-1&limit=10", "", &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	if len(list) != 1 || list[0].ID != first.TicketID || list[0].Number != first.TicketNumber || list[0].IncidentID != in.ID ||
		list[0].Category != "fire" || list[0].Priority != hub.PriorityEmergency || list[0].Status != hub.StatusNew ||
		list[0].AcknowledgedAt != nil || list[0].CreatedAt.IsZero() {
		t.Fatalf("list %+v", list)
	}
	var other []hub.Ticket
	api.do("GET", "/api/v1/tickets?device_id=api-2", "", &other)
	if len(other) != 0 {
		t.Errorf("filter by device: %+v", other)
	}

	var got ticketJSON
	if code := api.do("GET", "/api/v1/tickets/"+first.TicketID, "", &got); code != 200 {
		t.Fatalf("get: %d", code)
	}
	if got.ID != first.TicketID || got.Text != in.Text || len(got.Events) != 1 || got.Events[0].To != hub.StatusNew {
		t.Fatalf("get %+v", got)
	}

	for _, c := range []struct{ name, body, wantCode string }{
		{"bad JSON", `{"by":`, "invalid"},
		{"unknown field", `{"by":"siti","notes":"typo"}`, "invalid"},
		{"trailing data", `{"by":"siti"} {}`, "invalid"},
	} {
		var e apiError
		if code := api.do("POST", "/api/v1/tickets/"+first.TicketID+"/ack", c.body, &e); code != 400 || e.Error.Code != c.wantCode || e.Error.Message == "" {
			t.Errorf("ack with %s: %d %s, want 400 %s", c.name, code, e, c.wantCode)
		}
	}

	var acked hub.Ticket
	if code := api.do("POST", "/api/v1/tickets/"+first.TicketID+"/ack", `{"by":"siti","note":"damkar berangkat"}`, &acked); code != 200 {
		t.Fatalf("ack: %d", code)
	}
	if acked.Status != hub.StatusAcknowledged || acked.AcknowledgedBy != "siti" || acked.AcknowledgedAt == nil {
		t.Errorf("acked ticket %+v", acked)
	}
	acks := k.waitAcks("acknowledged", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 2 })
	if a := acks[1]; a.Status != mqtt.AckAcknowledged || a.IncidentID != in.ID || a.TicketID != first.TicketID || a.TicketNumber != first.TicketNumber {
		t.Errorf("device got %+v, want acknowledged for its ticket", a)
	}

	var e apiError
	if code := newAPIAs(t, m, "budi").do("POST", "/api/v1/tickets/"+first.TicketID+"/ack", `{"by":"budi"}`, &e); code != 409 || e.Error.Code != "conflict" {
		t.Errorf("second ack: %d %s, want 409 conflict", code, e)
	}
	if code := api.do("POST", "/api/v1/tickets/no-such-ticket/ack", "", &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("ack unknown: %d %s, want 404 not_found", code, e)
	}
	if code := api.do("GET", "/api/v1/tickets/no-such-ticket", "", &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("get unknown: %d %s, want 404 not_found", code, e)
	}
	for _, q := range []string{"limit=abc", "limit=0", "limit=1001", "status=lost"} {
		if code := api.do("GET", "/api/v1/tickets?"+q, "", &e); code != 400 || e.Error.Code != "invalid" {
			t.Errorf("list ?%s: %d %s, want 400 invalid", q, code, e)
		}
	}
	if code := api.do("GET", "/api/v1/tickets/"+first.TicketID, "", &got); code != 200 || len(got.Events) != 2 ||
		got.Events[1].Actor != "siti" || got.Events[1].Note != "damkar berangkat" || got.Events[1].From != hub.StatusNew {
		t.Errorf("events after ack: %+v", got.Events)
	}
	time.Sleep(100 * time.Millisecond) // let a stray second "acknowledged" arrive, if there were one
	if n := len(k.snapshot()); n != 2 {
		t.Errorf("device got %d acks, want received and acknowledged only: %+v", n, k.snapshot())
	}

	// Without a body the actor is the signed-in user.
	in2 := k.incident()
	k.send(in2)
	second := k.waitAcks("second received", 10*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in2.ID)) >= 1 })
	tid := ackFor(second, in2.ID)[0].TicketID
	if code := api.do("POST", "/api/v1/tickets/"+tid+"/ack", "", &acked); code != 200 || acked.AcknowledgedBy != "siti" {
		t.Errorf("ack without body: %d %+v", code, acked)
	}

	var st hub.Stats
	api.do("GET", "/api/v1/status", "", &st)
	if st.Incidents.Accepted != 2 || st.Messages.Presence < 1 || st.Messages.Heartbeats != 1 || st.Devices.Registered != 2 ||
		st.Devices.Online != 1 || st.Queue.Capacity == 0 {
		t.Errorf("status %+v", st)
	}
	var health map[string]string
	if code := api.do("GET", "/healthz", "", &health); code != 200 || health["status"] != "ok" {
		t.Errorf("healthz: %d %v", code, health)
	}
	if !metricLine(api.metrics(), `kentongan_hub_incidents_total{result="accepted"} 2`) {
		t.Errorf("metrics lack the accepted count")
	}
}

// TestRestartKeepsTickets closes a hub and runs the same Main again on the same data dir: tickets
// survive, a replay from before the restart gets its old ticket, and numbering carries on.
func TestRestartKeepsTickets(t *testing.T) {
	dir := t.TempDir()
	m := newHub(t, dir, "pos-1")
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	k := newKiosk(t, m.BrokerURL(), "pos-1")
	in := k.incident()
	k.send(in)
	before := k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 1 })[0]

	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if m.HTTPAddr() != "" || m.MQTTAddr() != "" {
		t.Errorf("closed hub still reports addresses %q %q", m.HTTPAddr(), m.MQTTAddr())
	}

	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run again: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.Run(context.Background()); err == nil {
		t.Errorf("Run on a running hub succeeded")
	}
	var got hub.Ticket
	if code := newAPI(t, m).do("GET", "/api/v1/tickets/"+before.TicketID, "", &got); code != 200 || got.Number != before.TicketNumber {
		t.Fatalf("ticket after restart: %d %+v", code, got)
	}
	k2 := newKiosk(t, m.BrokerURL(), "pos-1")
	k2.send(in) // the kiosk's outbox replays after reconnecting
	next := k2.incident()
	k2.send(next)
	acks := k2.waitAcks("two acks", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 2 })
	replay, fresh := ackFor(acks, in.ID), ackFor(acks, next.ID)
	if len(replay) != 1 || replay[0].TicketID != before.TicketID || replay[0].TicketNumber != before.TicketNumber {
		t.Errorf("replay after restart: %+v, want ticket %s", replay, before.TicketNumber)
	}
	if len(fresh) != 1 || fresh[0].TicketNumber <= before.TicketNumber {
		t.Errorf("new incident after restart: %+v, want a number after %s", fresh, before.TicketNumber)
	}
}

// TestReplayOfAcknowledgedTicket: a kiosk that missed "received" re-sends after the operator has
// acknowledged; it gets "received" and then the current status, so its LED does not go back.
func TestReplayOfAcknowledgedTicket(t *testing.T) {
	m := startHub(t, t.TempDir(), "pos-1")
	k := newKiosk(t, m.BrokerURL(), "pos-1")
	in := k.incident()
	k.send(in)
	first := k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 1 })[0]
	if _, err := m.Service.Acknowledge(context.Background(), first.TicketID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	k.waitAcks("acknowledged", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 2 })
	k.send(in)
	acks := k.waitAcks("replay answers", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 4 })
	if acks[2].Status != mqtt.AckReceived || acks[3].Status != mqtt.AckAcknowledged || acks[3].TicketID != first.TicketID {
		t.Errorf("answers to a replay of an acknowledged ticket: %+v", acks[2:])
	}
}

func TestExternalBroker(t *testing.T) {
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: testLogger()})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "ext", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url := "tcp://" + tcp.Address()

	m := newHub(t, t.TempDir(), "pos-1")
	if err := m.ParseFlags(context.Background(), []string{"--data", m.Config.DataDir, "--http", "127.0.0.1:0", "--broker", url}); err != nil {
		t.Fatal(err)
	}
	m.Config.Devices = []hubd.DeviceConfig{{ID: "pos-1"}}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run with external broker: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if m.MQTTAddr() != "" || m.BrokerURL() != url {
		t.Errorf("MQTTAddr %q BrokerURL %q: want none and %s", m.MQTTAddr(), m.BrokerURL(), url)
	}

	k := newKiosk(t, url, "pos-1")
	in := k.incident()
	k.send(in)
	a := k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 1 })[0]
	if a.Status != mqtt.AckReceived || a.IncidentID != in.ID {
		t.Fatalf("ack via external broker: %+v", a)
	}
	if _, err := m.Service.Acknowledge(context.Background(), a.TicketID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	acks := k.waitAcks("acknowledged", 10*time.Second, func(a []mqtt.Ack) bool { return len(a) >= 2 })
	if acks[1].Status != mqtt.AckAcknowledged {
		t.Errorf("operator ack via external broker: %+v", acks[1])
	}
}

func TestDemoHook(t *testing.T) {
	m := newHub(t, t.TempDir())
	if err := m.ParseFlags(context.Background(), []string{"--data", m.Config.DataDir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--demo"}); err != nil {
		t.Fatal(err)
	}
	if !m.Demo {
		t.Fatal("--demo did not set Demo")
	}
	var order []string
	m.DemoFunc = func(ctx context.Context, m *hubd.Main) error {
		if m.HTTPAddr() == "" || !strings.HasPrefix(m.BrokerURL(), "tcp://127.0.0.1:") {
			t.Errorf("demo called before the hub listens: http %q broker %q", m.HTTPAddr(), m.BrokerURL())
		}
		m.DeferClose(func() error {
			order = append(order, "demo closed")
			if m.HTTPAddr() == "" {
				t.Errorf("demo closed after the hub")
			}
			return nil
		})
		return nil
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if len(order) != 1 {
		t.Errorf("deferred closers ran %d times, want 1", len(order))
	}

	m2 := newHub(t, t.TempDir())
	m2.Demo = true
	m2.DemoFunc = func(context.Context, *hubd.Main) error { return fmt.Errorf("no kiosks today") }
	if err := m2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no kiosks today") {
		t.Errorf("failing demo: Run = %v", err)
	}
	if m2.HTTPAddr() != "" {
		t.Errorf("a failed Run left the hub listening on %s", m2.HTTPAddr())
	}
}
