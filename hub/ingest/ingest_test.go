package ingest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// fakeBus delivers synchronously, as the embedded broker does, and records what is published.
type fakeBus struct {
	mu        sync.Mutex
	handlers  map[mqtt.Kind]hub.Handler
	published []hub.Message
}

func (b *fakeBus) Subscribe(filter string, _ byte, h hub.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handlers == nil {
		b.handlers = map[mqtt.Kind]hub.Handler{}
	}
	kind := mqtt.Kind(filter[strings.LastIndex(filter, "/")+1:])
	b.handlers[kind] = h
	return nil
}

func (b *fakeBus) Publish(_ context.Context, topic string, payload []byte, _ byte, _ bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, hub.Message{Topic: topic, Payload: payload})
	return nil
}

func (b *fakeBus) Close() error { return nil }

func (b *fakeBus) deliver(kind mqtt.Kind, device string, payload []byte) {
	b.deliverTopic(kind, mqtt.Topic(device, kind), payload)
}

func (b *fakeBus) deliverTopic(kind mqtt.Kind, topic string, payload []byte) {
	b.mu.Lock()
	h := b.handlers[kind]
	b.mu.Unlock()
	h(hub.Message{Topic: topic, Payload: payload})
}

// acks returns the acks published so far to device.
func (b *fakeBus) acks(t *testing.T, device string) []mqtt.Ack {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []mqtt.Ack
	for _, m := range b.published {
		if m.Topic != mqtt.Topic(device, mqtt.KindAck) {
			continue
		}
		a, err := mqtt.DecodeAck(m.Payload)
		if err != nil {
			t.Fatalf("hub published an unreadable ack %s: %v", m.Payload, err)
		}
		out = append(out, a)
	}
	return out
}

func (b *fakeBus) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.published)
}

// gateStore wraps a Store, recording batch sizes and, while gated, holding Ingest until released.
type gateStore struct {
	hub.Store
	mu      sync.Mutex
	sizes   []int
	gate    chan struct{} // nil: not gated
	entered chan struct{}
	fail    error
}

func (s *gateStore) Ingest(ctx context.Context, batch []hub.NewTicket) ([]hub.IngestResult, error) {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(batch))
	gate, fail := s.gate, s.fail
	s.mu.Unlock()
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	return s.Store.Ingest(ctx, batch)
}

func (s *gateStore) batchSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T, opts ingest.Options) (*ingest.Service, *fakeBus, *gateStore) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{Clock: opts.Clock, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	gs, ok := opts.Store.(*gateStore)
	if !ok {
		gs = &gateStore{}
	}
	gs.Store = st
	bus := &fakeBus{}
	opts.Store, opts.Bus, opts.Logger = gs, bus, discard
	opts.DrainTimeout = 5 * time.Second // a failed test's held store must not hang Close for long
	if opts.Devices == nil {
		opts.Devices = []hub.Device{{ID: "pos-1"}, {ID: "pos-2"}}
	}
	s, err := ingest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, bus, gs
}

func incident(t *testing.T, device string) (mqtt.Incident, []byte) {
	t.Helper()
	id, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	in := mqtt.Incident{V: 1, ID: id, DeviceID: device, Source: mqtt.SourceSMS, Category: "fire", OccurredAt: time.Now(), Attempt: 1}
	b, err := mqtt.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, b
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 10*time.Second, what, cond)
}

// TestGroupCommitAcksAfterCommit: incidents arriving while a commit is in progress are committed
// together in the next one, and no "received" leaves before its commit.
func TestGroupCommitAcksAfterCommit(t *testing.T) {
	gs := &gateStore{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	s, bus, _ := setup(t, ingest.Options{Store: gs, BatchMax: 64})

	_, p := incident(t, "pos-1")
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	<-gs.entered // the worker is committing the first incident, held
	for range 100 {
		_, p := incident(t, "pos-1")
		bus.deliver(mqtt.KindIncident, "pos-1", p)
	}
	if n := bus.count(); n != 0 {
		t.Fatalf("%d acks published before any commit finished", n)
	}
	close(gs.gate)
	eventually(t, "101 acks", func() bool { return len(bus.acks(t, "pos-1")) == 101 })
	if got := gs.batchSizes(); len(got) != 3 || got[0] != 1 || got[1] != 64 || got[2] != 36 {
		t.Errorf("batch sizes %v, want [1 64 36]", got)
	}
	for _, a := range bus.acks(t, "pos-1") {
		if a.Status != mqtt.AckReceived || a.TicketID == "" {
			t.Fatalf("ack %+v", a)
		}
	}
	if st := s.Stats(context.Background()); st.Incidents.Accepted != 101 || st.Queue.Batches != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestFullQueueHoldsPublisher: with the queue full, the delivering goroutine waits rather than
// dropping, and everything is committed once the store moves again.
func TestFullQueueHoldsPublisher(t *testing.T) {
	gs := &gateStore{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	_, bus, _ := setup(t, ingest.Options{Store: gs, QueueSize: 2, BatchMax: 10})

	_, p := incident(t, "pos-1")
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	<-gs.entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			_, p := incident(t, "pos-1")
			bus.deliver(mqtt.KindIncident, "pos-1", p)
		}
	}()
	select {
	case <-done:
		t.Fatal("5 incidents went into a queue of 2 while the store was held")
	case <-time.After(100 * time.Millisecond):
	}
	close(gs.gate)
	<-done
	eventually(t, "6 acks", func() bool { return len(bus.acks(t, "pos-1")) == 6 })
}

// TestCloseDrainsQueue: what was queued when Close began is committed and acked; what comes
// after is left for the device to re-send.
func TestCloseDrainsQueue(t *testing.T) {
	gs := &gateStore{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	s, bus, _ := setup(t, ingest.Options{Store: gs})
	for range 5 {
		_, p := incident(t, "pos-1")
		bus.deliver(mqtt.KindIncident, "pos-1", p)
	}
	<-gs.entered
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = s.Close()
	}()
	time.Sleep(20 * time.Millisecond)
	close(gs.gate)
	<-closed
	if n := len(bus.acks(t, "pos-1")); n != 5 {
		t.Fatalf("%d acks after Close, want all 5 queued incidents acked", n)
	}
	_, p := incident(t, "pos-1")
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	if n := len(bus.acks(t, "pos-1")); n != 5 {
		t.Errorf("incident after Close was answered")
	}
	if st := s.Stats(context.Background()); st.Incidents.Unanswered != 1 || st.Incidents.Accepted != 5 {
		t.Errorf("stats %+v", st.Incidents)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStoreFailureLeavesIncidentUnanswered(t *testing.T) {
	gs := &gateStore{fail: errors.New("disk I/O error")}
	s, bus, _ := setup(t, ingest.Options{Store: gs})
	_, p := incident(t, "pos-1")
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	eventually(t, "the failed commit", func() bool { return s.Stats(context.Background()).Incidents.Unanswered == 1 })
	if n := bus.count(); n != 0 {
		t.Errorf("%d acks for an incident that was not committed", n)
	}
}

func TestRejections(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, bus, _ := setup(t, ingest.Options{Registerer: reg})

	in, p := incident(t, "pos-1")
	bus.deliver(mqtt.KindIncident, "ghost", []byte(strings.Replace(string(p), `"pos-1"`, `"ghost"`, 1)))
	bus.deliverTopic(mqtt.KindIncident, "kentongan/v1/devices/NOT VALID/incident", p)
	bus.deliver(mqtt.KindIncident, "pos-1", []byte("not json"))
	a := bus.acks(t, "ghost")
	if len(a) != 1 || a[0].Status != mqtt.AckRejected || a[0].IncidentID != in.ID || !strings.Contains(a[0].Error, "not registered") {
		t.Errorf("unknown device acks %+v", a)
	}
	if a := bus.acks(t, "pos-1"); len(a) != 1 || a[0].Status != mqtt.AckRejected || a[0].IncidentID != "" {
		t.Errorf("malformed acks %+v", a)
	}
	if n := bus.count(); n != 2 {
		t.Errorf("%d messages published; a bad topic names no device to answer", n)
	}

	// An incident ID already used by another device is refused after the store sees it.
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	eventually(t, "received", func() bool { return len(bus.acks(t, "pos-1")) == 2 })
	stolen := strings.Replace(string(p), `"pos-1"`, `"pos-2"`, 1)
	bus.deliver(mqtt.KindIncident, "pos-2", []byte(stolen))
	eventually(t, "conflict", func() bool { return len(bus.acks(t, "pos-2")) == 1 })
	if a := bus.acks(t, "pos-2")[0]; a.Status != mqtt.AckRejected || a.TicketID != "" {
		t.Errorf("reused incident id: %+v", a)
	}

	st := s.Stats(context.Background())
	for reason, n := range map[string]uint64{"unknown_device": 1, "bad_topic": 1, "malformed": 1, "conflict": 1} {
		if st.Incidents.Rejected[reason] != n {
			t.Errorf("rejected[%s] = %d, want %d", reason, st.Incidents.Rejected[reason], n)
		}
	}
	if st.Incidents.RejectedTotal != 4 {
		t.Errorf("rejected total %d", st.Incidents.RejectedTotal)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var promTotal float64
	for _, mf := range mfs {
		if mf.GetName() == "kentongan_hub_incidents_rejected_total" {
			for _, m := range mf.GetMetric() {
				promTotal += m.GetCounter().GetValue()
			}
		}
	}
	if promTotal != 4 {
		t.Errorf("Prometheus counts %v rejections, status counts 4", promTotal)
	}
}

func TestDeviceState(t *testing.T) {
	s, bus, _ := setup(t, ingest.Options{})
	enc := func(v any) []byte {
		b, err := mqtt.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bus.deliver(mqtt.KindHeartbeat, "pos-1", enc(mqtt.Heartbeat{V: 1, DeviceID: "pos-1", Seq: 3, QueueDepth: 4, LEDState: "pending", Firmware: "0.2.0"}))
	bus.deliver(mqtt.KindPresence, "pos-2", enc(mqtt.Presence{V: 1, DeviceID: "pos-2", State: mqtt.Online}))
	bus.deliver(mqtt.KindPresence, "pos-2", enc(mqtt.Presence{V: 1, DeviceID: "pos-2", State: mqtt.Offline}))
	bus.deliver(mqtt.KindPresence, "ghost", enc(mqtt.Presence{V: 1, DeviceID: "ghost", State: mqtt.Online}))
	bus.deliver(mqtt.KindHeartbeat, "pos-1", []byte(`{"v":1,"device_id":"pos-2"}`))

	ds := s.Devices(context.Background())
	if len(ds) != 2 || ds[0].ID != "pos-1" || ds[1].ID != "pos-2" {
		t.Fatalf("devices %+v", ds)
	}
	p1, p2 := ds[0].State, ds[1].State
	if p1.Presence != hub.PresenceOnline || p1.HeartbeatSeq != 3 || p1.QueueDepth != 4 || p1.LEDState != "pending" || p1.Firmware != "0.2.0" || p1.LastHeartbeat == nil {
		t.Errorf("pos-1 after a heartbeat: %+v", p1)
	}
	if p2.Presence != hub.PresenceOffline || p2.PresenceAt == nil || p2.LastHeartbeat != nil {
		t.Errorf("pos-2 after online, offline: %+v", p2)
	}
	st := s.Stats(context.Background())
	if st.Messages.Heartbeats != 1 || st.Messages.Presence != 2 || st.Messages.Ignored != 2 || st.Devices.Online != 1 || st.Devices.Registered != 2 {
		t.Errorf("stats %+v %+v", st.Messages, st.Devices)
	}
	if bus.count() != 0 {
		t.Errorf("device state messages were answered")
	}

	if err := s.RegisterDevice(hub.Device{ID: "pos-1"}); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("register twice: %v", err)
	}
	if err := s.RegisterDevice(hub.Device{ID: "Bad ID"}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("register invalid: %v", err)
	}
	if err := s.RegisterDevice(hub.Device{ID: "pos-3"}); err != nil {
		t.Fatal(err)
	}
	_, p := incident(t, "pos-3")
	bus.deliver(mqtt.KindIncident, "pos-3", p)
	eventually(t, "an incident of a device registered at run time", func() bool {
		a := bus.acks(t, "pos-3")
		return len(a) == 1 && a[0].Status == mqtt.AckReceived
	})
}
