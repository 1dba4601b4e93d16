package outbox_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/mqtt"
)

var t0 = time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *outbox.Store {
	t.Helper()
	s, err := outbox.Open(dir, outbox.WithLockTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func incident(t *testing.T, button string) mqtt.Incident {
	t.Helper()
	id, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	return mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: "ciakar-rw03", Source: mqtt.SourceButton,
		Button: button, Category: "fire", OccurredAt: t0}
}

func ids(es []outbox.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Incident.ID)
	}
	return out
}

func incIDs(ins []mqtt.Incident) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPendingReplaysInCreationOrder(t *testing.T) {
	s := open(t, t.TempDir())
	var made []mqtt.Incident
	for range 5 {
		made = append(made, incident(t, "darurat"))
	}
	// Stored out of order: replay order must follow creation, not storage.
	for _, i := range []int{3, 0, 4, 1, 2} {
		if err := s.Put(made[i], t0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if want := incIDs(made); !equal(ids(got), want) {
		t.Fatalf("pending %v, want %v", ids(got), want)
	}
	if n, _ := s.Len(); n != 5 {
		t.Fatalf("Len %d", n)
	}
	if err := s.Put(made[0], t0); err == nil {
		t.Fatal("second Put of the same ID succeeded")
	}
}

func TestClaimCountsAttempts(t *testing.T) {
	s := open(t, t.TempDir())
	a, b := incident(t, "medis"), incident(t, "medis")
	if err := s.Put(a, t0); err != nil {
		t.Fatal(err)
	}

	got, err := s.Claim(t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != a.ID || got[0].Attempt != 1 {
		t.Fatalf("first claim %+v, want a at attempt 1", got)
	}
	if got, _ := s.Claim(t0, time.Time{}); len(got) != 0 {
		t.Fatalf("new-only claim returned already-sent %v", incIDs(got))
	}

	if err := s.Put(b, t0); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(10 * time.Second)
	// Retry tick: only what was sent 15 s ago or earlier, plus never-sent.
	got, _ = s.Claim(t1, t1.Add(-15*time.Second))
	if !equal(incIDs(got), []string{b.ID}) || got[0].Attempt != 1 {
		t.Fatalf("retry claim %+v, want only b at attempt 1", got)
	}
	t2 := t0.Add(20 * time.Second)
	got, _ = s.Claim(t2, t2.Add(-15*time.Second))
	if !equal(incIDs(got), []string{a.ID}) || got[0].Attempt != 2 {
		t.Fatalf("retry claim %+v, want a at attempt 2", got)
	}
	// Reconnect: everything, in order.
	got, _ = s.Claim(t2, t2)
	if !equal(incIDs(got), []string{a.ID, b.ID}) || got[0].Attempt != 3 || got[1].Attempt != 2 {
		t.Fatalf("replay %+v", got)
	}
}

// PutSent stores an incident counted as published once, so that the caller's first publish costs
// no second commit; it is due again like any other after the retry interval or at a reconnect.
func TestPutSentCountsFirstPublish(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	a := incident(t, "kebakaran")
	got, err := s.PutSent(a, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != a.ID || got.Attempt != 1 {
		t.Fatalf("PutSent returned %+v, want a at attempt 1", got)
	}
	if c, _ := s.Claim(t0, time.Time{}); len(c) != 0 {
		t.Fatalf("new-only claim returned the incident just sent: %v", incIDs(c))
	}
	if c, _ := s.Claim(t0.Add(5*time.Second), t0.Add(-10*time.Second)); len(c) != 0 {
		t.Fatalf("retry claim before the interval returned %v", incIDs(c))
	}
	if _, err := s.PutSent(a, t0); err == nil {
		t.Fatal("PutSent stored the same incident id twice")
	}
	// After a restart it is pending like anything else, and a reconnect re-sends it as attempt 2.
	s.Close()
	s = open(t, dir)
	p, err := s.Pending()
	if err != nil || !equal(ids(p), []string{a.ID}) {
		t.Fatalf("pending after reopen = %v, %v", ids(p), err)
	}
	t1 := t0.Add(time.Minute)
	c, _ := s.Claim(t1, t1)
	if !equal(incIDs(c), []string{a.ID}) || c[0].Attempt != 2 {
		t.Fatalf("reconnect claim %+v, want a at attempt 2", c)
	}
}

func TestAckLifecycle(t *testing.T) {
	s := open(t, t.TempDir())
	a := incident(t, "kebakaran")
	if err := s.Put(a, t0); err != nil {
		t.Fatal(err)
	}
	ack := func(st mqtt.AckStatus, at time.Time) outbox.AckResult {
		t.Helper()
		res, err := s.Ack(mqtt.Ack{V: 1, IncidentID: a.ID, TicketID: "tk-1", TicketNumber: "112-0007", Status: st, At: at}, at)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	res := ack(mqtt.AckRejected, t0.Add(time.Second))
	if !res.Rejected || res.Received {
		t.Fatalf("rejected: %+v", res)
	}
	p, _ := s.Pending()
	if len(p) != 1 || p[0].LastError == "" {
		t.Fatalf("rejection dropped the incident or its reason: %+v", p)
	}

	res = ack(mqtt.AckReceived, t0.Add(2*time.Second))
	if !res.WasPending || !res.Received {
		t.Fatalf("received: %+v", res)
	}
	if n, _ := s.Len(); n != 0 {
		t.Fatalf("%d pending after received", n)
	}
	rec, _ := s.Recent(t0.Add(3 * time.Second))
	if len(rec) != 1 || rec[0].Status != mqtt.AckReceived || rec[0].TicketNumber != "112-0007" || rec[0].Button != "kebakaran" {
		t.Fatalf("recent after received: %+v", rec)
	}

	if res := ack(mqtt.AckAcknowledged, t0.Add(4*time.Second)); !res.Updated {
		t.Fatalf("acknowledged: %+v", res)
	}
	// A repeated received (the hub answering a retry) and a stale rejection change nothing.
	if res := ack(mqtt.AckReceived, t0.Add(5*time.Second)); res.Updated || res.Received {
		t.Fatalf("late received: %+v", res)
	}
	if res := ack(mqtt.AckRejected, t0.Add(5*time.Second)); res.Rejected || res.Updated {
		t.Fatalf("late rejected: %+v", res)
	}
	rec, _ = s.Recent(t0.Add(6 * time.Second))
	if rec[0].Status != mqtt.AckAcknowledged {
		t.Fatalf("status went back to %s", rec[0].Status)
	}
	if n, _ := s.Len(); n != 0 {
		t.Fatal("late ack resurrected a pending incident")
	}
	ack(mqtt.AckResolved, t0.Add(7*time.Second))
	rec, _ = s.Recent(t0.Add(8 * time.Second))
	if rec[0].Status != mqtt.AckResolved {
		t.Fatalf("status %s, want resolved", rec[0].Status)
	}

	res, err := s.Ack(mqtt.Ack{V: 1, IncidentID: "0190b6a4-0000-7000-8000-000000000000", Status: mqtt.AckReceived}, t0)
	if err != nil || !res.Unknown {
		t.Fatalf("unknown incident: %+v %v", res, err)
	}
}

func TestStatusBeyondReceivedAlsoReceives(t *testing.T) {
	s := open(t, t.TempDir())
	a := incident(t, "darurat")
	if err := s.Put(a, t0); err != nil {
		t.Fatal(err)
	}
	// The received ack was lost; the operator's acknowledgement proves the hub holds it.
	res, err := s.Ack(mqtt.Ack{V: 1, IncidentID: a.ID, Status: mqtt.AckAcknowledged, At: t0}, t0)
	if err != nil || !res.Received {
		t.Fatalf("%+v %v", res, err)
	}
	// A status from a newer hub that this code does not know must not drop a pending incident.
	b := incident(t, "darurat")
	if err := s.Put(b, t0); err != nil {
		t.Fatal(err)
	}
	if res, _ := s.Ack(mqtt.Ack{V: 1, IncidentID: b.ID, Status: "triaged"}, t0); res.Received {
		t.Fatal("unknown status dropped the incident")
	}
	if n, _ := s.Len(); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := incident(t, "darurat"), incident(t, "medis")
	for _, in := range []mqtt.Incident{a, b} {
		if err := s.Put(in, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Claim(t0, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(mqtt.Ack{V: 1, IncidentID: a.ID, TicketNumber: "112-1", Status: mqtt.AckReceived}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, dir)
	p, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].Incident.ID != b.ID || p[0].Incident.Attempt != 1 || !p[0].LastSentAt.Equal(t0) {
		t.Fatalf("pending after reopen: %+v", p)
	}
	rec, _ := s.Recent(t0)
	if len(rec) != 1 || rec[0].IncidentID != a.ID || rec[0].TicketNumber != "112-1" {
		t.Fatalf("recent after reopen: %+v", rec)
	}
}

func TestRecentPrunedAfterRetention(t *testing.T) {
	s := open(t, t.TempDir())
	old, fresh := incident(t, "darurat"), incident(t, "medis")
	for _, in := range []mqtt.Incident{old, fresh} {
		if err := s.Put(in, t0); err != nil {
			t.Fatal(err)
		}
	}
	s.Ack(mqtt.Ack{V: 1, IncidentID: old.ID, Status: mqtt.AckReceived}, t0)
	s.Ack(mqtt.Ack{V: 1, IncidentID: fresh.ID, Status: mqtt.AckReceived}, t0.Add(2*time.Hour))

	now := t0.Add(25 * time.Hour)
	rec, _ := s.Recent(now)
	if len(rec) != 1 || rec[0].IncidentID != fresh.ID {
		t.Fatalf("recent at +25h: %+v", rec)
	}
	n, err := s.Prune(now)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	// A late ack for the pruned incident is harmless.
	res, err := s.Ack(mqtt.Ack{V: 1, IncidentID: old.ID, Status: mqtt.AckResolved}, now)
	if err != nil || !res.Unknown {
		t.Fatalf("late ack after prune: %+v %v", res, err)
	}
	if n, _ := s.Prune(now); n != 0 {
		t.Fatalf("second prune deleted %d", n)
	}
}

func TestWriteFailuresAreErrors(t *testing.T) {
	dir := t.TempDir()
	s, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.Open(dir, outbox.WithLockTimeout(50*time.Millisecond)); err == nil {
		t.Fatal("second Open of a held store succeeded")
	}
	s.Close()
	if err := s.Put(incident(t, "darurat"), t0); !errors.Is(err, outbox.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Claim(t0, t0); !errors.Is(err, outbox.ErrClosed) {
		t.Fatalf("Claim after Close: %v", err)
	}

	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.Open(file); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}
