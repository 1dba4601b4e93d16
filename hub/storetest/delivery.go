package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
)

func newDelivery(agency string, e hub.Event, next time.Time) hub.NewDelivery {
	body, _ := json.Marshal(map[string]any{"event": e.ID, "agency": agency})
	return hub.NewDelivery{Agency: agency, EventID: e.ID, TicketID: e.TicketID, Kind: string(e.Kind), Payload: body, NextAt: next}
}

func testDeliveries(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()

	// A new store starts its cursor at the last event: history is not posted.
	res := ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency))
	cur, err := s.DeliveryCursor(ctx)
	if err != nil || cur != 0 {
		t.Fatalf("cursor of a new store: %d, %v; want 0 (it had no events when made)", cur, err)
	}
	tk := mustTicket(t, res[0])
	if _, err := s.Acknowledge(ctx, tk.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	evs, err := s.EventsAfter(ctx, cur, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events: %+v, %v", evs, err)
	}
	if _, ok, err := s.NextDeliveryAt(ctx); ok || err != nil {
		t.Errorf("next delivery with none: %v, %v", ok, err)
	}

	d1, d2 := newDelivery("damkar", evs[0], clock.Now()), newDelivery("damkar", evs[1], clock.Now())
	if err := s.EnqueueDeliveries(ctx, evs[1].ID, []hub.NewDelivery{d1, d2}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if c, _ := s.DeliveryCursor(ctx); c != evs[1].ID {
		t.Errorf("cursor after enqueue: %d, want %d", c, evs[1].ID)
	}
	// The cursor only moves forward: a second fan-out of the same events stores nothing.
	if err := s.EnqueueDeliveries(ctx, evs[1].ID, []hub.NewDelivery{d1}); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("enqueue at the same cursor: %v, want conflict", err)
	}
	if all, _ := s.Deliveries(ctx, hub.DeliveryFilter{}); len(all) != 2 {
		t.Errorf("%d deliveries after a refused fan-out, want 2", len(all))
	}
	if err := s.EnqueueDeliveries(ctx, evs[1].ID+1, []hub.NewDelivery{{Agency: "damkar", EventID: evs[1].ID + 1}}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("enqueue without ticket or payload: %v, want invalid", err)
	}

	due, err := s.DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(due) != 2 || due[0].EventID != evs[0].ID || due[1].EventID != evs[1].ID || due[0].State != hub.DeliveryPending || due[0].Attempts != 0 {
		t.Fatalf("due now: %+v, %v; want both, oldest first", due, err)
	}
	if string(due[0].Payload) != string(d1.Payload) || due[0].Agency != "damkar" || due[0].TicketID != tk.ID || due[0].Kind != string(evs[0].Kind) {
		t.Errorf("stored delivery %+v lost fields of %+v", due[0], d1)
	}
	if next, ok, _ := s.NextDeliveryAt(ctx); !ok || !next.Equal(clock.Now()) {
		t.Errorf("next delivery at %v, %v; want now", next, ok)
	}

	// A failed attempt waits; the record says why.
	clock.Advance(time.Second)
	retryAt := clock.Now().Add(10 * time.Second)
	got, err := s.RecordAttempt(ctx, due[0].ID, hub.DeliveryAttempt{At: clock.Now(), Status: 503, Error: "receiver answered 503", NextAt: retryAt})
	if err != nil || got.State != hub.DeliveryPending || got.Attempts != 1 || got.LastStatus != 503 || !got.NextAt.Equal(retryAt) {
		t.Fatalf("record failure: %+v, %v", got, err)
	}
	if _, err := s.RecordAttempt(ctx, due[0].ID, hub.DeliveryAttempt{At: clock.Now(), Error: "x"}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("failure without next time: %v, want invalid", err)
	}
	if failing, _ := s.Deliveries(ctx, hub.DeliveryFilter{Failing: true}); len(failing) != 1 || failing[0].LastError != "receiver answered 503" {
		t.Errorf("failing: %+v", failing)
	}
	// While the oldest waits, the agency's next is held back though due itself: the agency
	// gets its events in order, and a receiver that is down is tried once per back-off.
	if due, _ := s.DueDeliveries(ctx, clock.Now(), 10); len(due) != 0 {
		t.Errorf("due during the oldest's back-off: %+v", due)
	}
	if next, ok, _ := s.NextDeliveryAt(ctx); !ok || !next.Equal(retryAt) {
		t.Errorf("next delivery at %v, want the oldest's retry at %v", next, retryAt)
	}
	// Another agency is not held back by it.
	plnT := mustTicket(t, ingest(t, s, routed("kiosk-2", 7, "pln", hub.PriorityNormal))[0])
	plnEv := lastEvent(t, s, plnT.ID)
	if err := s.EnqueueDeliveries(ctx, plnEv.ID, []hub.NewDelivery{newDelivery("pln", plnEv, clock.Now())}); err != nil {
		t.Fatal(err)
	}
	pd, _ := s.DueDeliveries(ctx, clock.Now(), 10)
	if len(pd) != 1 || pd[0].Agency != "pln" {
		t.Fatalf("due with damkar waiting: %+v, want pln's", pd)
	}
	if _, err := s.RecordAttempt(ctx, pd[0].ID, hub.DeliveryAttempt{At: clock.Now(), Status: 200, Delivered: true}); err != nil {
		t.Fatal(err)
	}

	clock.Advance(10 * time.Second)
	due, _ = s.DueDeliveries(ctx, clock.Now(), 10)
	if len(due) != 2 || due[0].EventID != evs[0].ID || due[1].EventID != evs[1].ID {
		t.Fatalf("due after back-off: %+v; want both, oldest first", due)
	}
	got, err = s.RecordAttempt(ctx, due[0].ID, hub.DeliveryAttempt{At: clock.Now(), Status: 200, Delivered: true})
	if err != nil || got.State != hub.DeliveryDelivered || got.Attempts != 2 || !timesEqual(got.DeliveredAt, ptr(clock.Now())) || got.LastError != "" {
		t.Fatalf("record delivery: %+v, %v", got, err)
	}
	if _, err := s.RecordAttempt(ctx, due[0].ID, hub.DeliveryAttempt{At: clock.Now(), Delivered: true}); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("attempt at a delivered one: %v, want conflict", err)
	}
	if _, err := s.RetryDelivery(ctx, due[0].ID, clock.Now()); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("retry a delivered one: %v, want conflict", err)
	}

	// Given up: failed, shown, and retried by hand.
	got, err = s.RecordAttempt(ctx, due[1].ID, hub.DeliveryAttempt{At: clock.Now(), Error: "connection refused", GiveUp: true})
	if err != nil || got.State != hub.DeliveryFailed {
		t.Fatalf("give up: %+v, %v", got, err)
	}
	if failed, _ := s.Deliveries(ctx, hub.DeliveryFilter{State: hub.DeliveryFailed}); len(failed) != 1 || failed[0].ID != due[1].ID {
		t.Errorf("failed filter: %+v", failed)
	}
	if failing, _ := s.Deliveries(ctx, hub.DeliveryFilter{Failing: true, Agency: "damkar"}); len(failing) != 1 || failing[0].ID != due[1].ID {
		t.Errorf("failing after one delivered: %+v", failing)
	}
	if _, ok, _ := s.NextDeliveryAt(ctx); ok {
		t.Errorf("a failed delivery is still due")
	}
	clock.Advance(time.Hour)
	got, err = s.RetryDelivery(ctx, due[1].ID, clock.Now())
	if err != nil || got.State != hub.DeliveryPending || !got.NextAt.Equal(clock.Now()) {
		t.Fatalf("retry by hand: %+v, %v", got, err)
	}
	if due, _ := s.DueDeliveries(ctx, clock.Now(), 10); len(due) != 1 || due[0].ID != got.ID {
		t.Errorf("due after retry: %+v", due)
	}
	if _, err := s.RetryDelivery(ctx, 999999, clock.Now()); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("retry unknown: %v, want not_found", err)
	}
	if _, err := s.Deliveries(ctx, hub.DeliveryFilter{State: "lost"}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("unknown state: %v, want invalid", err)
	}
	if all, _ := s.Deliveries(ctx, hub.DeliveryFilter{Agency: "pln"}); len(all) != 1 || all[0].State != hub.DeliveryDelivered {
		t.Errorf("pln's deliveries: %+v", all)
	}
}

// testDeliveriesSurviveReopen: a delivery and the cursor outlive the store being closed, as
// they must outlive a hub restart.
func testDeliveriesSurviveReopen(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s, err := open(clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency))
	evs, err := s.EventsAfter(ctx, 0, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events: %+v, %v", evs, err)
	}
	if err := s.EnqueueDeliveries(ctx, evs[0].ID, []hub.NewDelivery{newDelivery("damkar", evs[0], clock.Now())}); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueDeliveries(ctx, clock.Now(), 1)
	if _, err := s.RecordAttempt(ctx, due[0].ID, hub.DeliveryAttempt{At: clock.Now(), Error: "timeout", NextAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, open, clock)
	if c, err := s.DeliveryCursor(ctx); err != nil || c != evs[0].ID {
		t.Errorf("cursor after reopen: %d, %v", c, err)
	}
	clock.Advance(time.Minute)
	due, err = s.DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "timeout" {
		t.Errorf("due after reopen: %+v, %v", due, err)
	}
}
