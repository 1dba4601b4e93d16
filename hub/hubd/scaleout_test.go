package hubd_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/hub/storetest"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/mosquittotest"
	"github.com/kentongan/kentongan/test/poll"
)

func TestScaleOutConfig(t *testing.T) {
	t.Setenv("KENTONGAN_TEST_PG", "postgres://hub@db.example/kentongan")
	cfg, err := hubd.ParseConfig([]byte(`
mqtt: {broker_url: "tcp://broker:1883", replica_id: hub-2, share_group: hubs}
store: {postgres_url_env: KENTONGAN_TEST_PG, max_conns: 20}
leader: {retry: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.PostgresDSN() != "postgres://hub@db.example/kentongan" || cfg.MQTT.ClientID() != "kentongan-hub-hub-2" ||
		cfg.MQTT.ShareGroup != "hubs" || cfg.Leader.Retry != 2*time.Second || cfg.Store.MaxConns != 20 {
		t.Errorf("config %+v", cfg)
	}
	if def := hubd.DefaultConfig(); def.MQTT.ClientID() != "kentongan-hub" || def.Store.PostgresDSN() != "" {
		t.Errorf("defaults: client ID %q, DSN %q", def.MQTT.ClientID(), def.Store.PostgresDSN())
	}
	for _, c := range []struct{ yaml, key string }{
		{`mqtt: {replica_id: a}`, "mqtt.replica_id"},                                  // no external broker
		{`mqtt: {broker_url: "tcp://b:1883", replica_id: a}`, "mqtt.replica_id"},      // no PostgreSQL
		{`mqtt: {broker_url: "tcp://b:1883", replica_id: "a/b"}`, "mqtt.replica_id"},  // not a client-ID part
		{`mqtt: {share_group: "g/#"}`, "mqtt.share_group"},                            // not a topic level
		{`store: {postgres_url: "mysql://x/y"}`, "store.postgres_url"},                // wrong scheme
		{`store: {postgres_url: "postgres://x/y", postgres_url_env: X}`, "store"},     // both
		{`store: {postgres_url_env: KENTONGAN_TEST_UNSET}`, "store.postgres_url_env"}, // empty variable
		{`store: {max_conns: -1}`, "store.max_conns"},
		{`leader: {retry: 1ms}`, "leader.retry"},
	} {
		_, err := hubd.ParseConfig([]byte(c.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), c.key) {
			t.Errorf("%s: error %v, want one naming %s", c.yaml, err, c.key)
		}
	}
	// A password in a bad DSN stays out of the error.
	if _, err := hubd.ParseConfig([]byte(`store: {postgres_url: "mysql://u:sekret@x/y"}`)); err == nil || strings.Contains(err.Error(), "sekret") {
		t.Errorf("error %v", err)
	}

	m := hubd.NewMain()
	if err := m.ParseFlags(context.Background(), []string{"--broker", "tcp://b:1883", "--postgres", "postgres://h/db", "--replica-id", "r1"}); err != nil {
		t.Fatal(err)
	}
	if m.Config.MQTT.ReplicaID != "r1" || m.Config.Store.PostgresURL != "postgres://h/db" {
		t.Errorf("flags gave %+v", m.Config)
	}
	if err := hubd.NewMain().ParseFlags(context.Background(), []string{"--postgres", "postgres://h/db", "--postgres-env", "X"}); err == nil {
		t.Error("--postgres with --postgres-env accepted")
	}
}

// TestDeviceEnrolledElsewhere: a kiosk that enrolled through another replica is in the shared
// registry but not in this replica's ingest; its first incident here is accepted, not rejected.
func TestDeviceEnrolledElsewhere(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	m := hubd.NewMain()
	m.Logger = testLogger()
	if err := m.ParseFlags(context.Background(), []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--broker", broker.URL()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	// What another replica's enrollment leaves in the shared database.
	ctx := context.Background()
	devs := m.Store.(*sqlite.Store).Devices()
	now := time.Now().UTC()
	tok := &enroll.Token{ID: "tok-1", Prefix: "abc", Hash: "h1", CreatedBy: "admin", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := devs.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	d := &enroll.Device{ID: "binong-rw03", Name: "Pos Binong", Source: enroll.SourceEnrolled, State: enroll.StateActive,
		Hardware: enroll.Hardware{Board: "rpi", Serial: "0001"}, EnrolledAt: now, UpdatedAt: now}
	if err := devs.SaveEnrollment(ctx, tok.ID, now, d, enroll.Event{At: now, Kind: enroll.EventEnrolled, Actor: "hub-other"}); err != nil {
		t.Fatal(err)
	}

	k := newKiosk(t, broker.URL(), "binong-rw03")
	in := k.incident()
	k.send(in)
	acks := k.waitAcks("an answer", 20*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in.ID)) > 0 })
	if got := ackFor(acks, in.ID)[0]; got.Status != mqtt.AckReceived {
		t.Fatalf("ack %+v, want received", got)
	}

	// A device in no registry is still refused.
	stranger := newKiosk(t, broker.URL(), "nobody-rw01")
	in2 := stranger.incident()
	stranger.send(in2)
	acks = stranger.waitAcks("an answer", 20*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in2.ID)) > 0 })
	if got := ackFor(acks, in2.ID)[0]; got.Status != mqtt.AckRejected {
		t.Fatalf("stranger's ack %+v, want rejected", got)
	}
	if _, err := m.Store.Ticket(ctx, in2.ID); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("stranger's incident: %v", err)
	}
}

// fakeBus hands published incidents straight to ingest's handlers.
type fakeBus struct{ handlers map[string]hub.Handler }

func (b *fakeBus) Subscribe(filter string, _ byte, h hub.Handler) error {
	b.handlers[filter] = h
	return nil
}
func (b *fakeBus) Publish(context.Context, string, []byte, byte, bool) error { return nil }
func (b *fakeBus) Close() error                                              { return nil }

// TestOnlyTheLeaderMarksBreaches: ingest on a replica that does not lead leaves a missed
// deadline unmarked and unnotified (the leader marks it); once it leads, it marks and notifies.
func TestOnlyTheLeaderMarksBreaches(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.Options{Clock: clock, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var leading atomic.Bool
	var notified atomic.Int32
	bus := &fakeBus{handlers: map[string]hub.Handler{}}
	svc, err := ingest.New(ingest.Options{Store: st, Bus: bus, Clock: clock, Logger: testLogger(), ScanInterval: time.Hour,
		Devices: []hub.Device{{ID: "pos-1"}}, Leading: leading.Load,
		Notify: func(a hub.Alert) {
			if a.Kind == hub.AlertDeadlineBreach {
				notified.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	id, _ := mqtt.NewIncidentID()
	b, _ := mqtt.Encode(mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: "pos-1", Source: mqtt.SourceButton,
		Button: "darurat", OccurredAt: clock.Now(), Attempt: 1})
	bus.handlers[mqtt.Filter(mqtt.KindIncident)](hub.Message{Topic: mqtt.Topic("pos-1", mqtt.KindIncident), Payload: b})
	poll.True(t, 10*time.Second, "the ticket", func() bool { _, err := st.Ticket(ctx, id); return err == nil })

	clock.Advance(time.Hour) // past every deadline of a new ticket
	svc.Scan(ctx)
	if tk, _ := st.Ticket(ctx, id); tk.AckBreachedAt != nil || notified.Load() != 0 {
		t.Fatalf("a replica that does not lead marked %v, notified %d", tk.AckBreachedAt, notified.Load())
	}
	leading.Store(true)
	svc.Scan(ctx)
	if tk, _ := st.Ticket(ctx, id); tk.AckBreachedAt == nil || notified.Load() != 1 {
		t.Fatalf("the leader marked %v, notified %d; want marked, notified once", tk.AckBreachedAt, notified.Load())
	}
}
