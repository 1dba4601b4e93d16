// Package storetest pins down the semantics every store must have, so that each implementation
// (hub/sqlite, hub/postgres) runs through the same tests: Run for hub.Store, RunAccounts for
// account.Store and RunEnroll for enroll.Store.
package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// Opener opens one store, the same one on every call, so that Run can close and reopen it to
// check durability. The store must take its time from clock. Two handles opened by it may be
// open at once, as two hub replicas on one database (or two processes on one SQLite file)
// would be: Run checks that they ingest and change tickets correctly side by side.
type Opener func(clock hub.Clock) (hub.Store, error)

// Clock is a hub.Clock that tests set by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t.UTC()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run checks the Store semantics. newOpener must return an opener of a fresh, empty store each
// time it is called.
func Run(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open Opener)
	}{
		{"IngestCreates", testIngestCreates},
		{"ReplayReturnsSameTicket", testReplay},
		{"ReplayWithinBatch", testReplayWithinBatch},
		{"IncidentOfAnotherDevice", testIncidentOfAnotherDevice},
		{"InvalidItemDoesNotSpoilBatch", testInvalidItem},
		{"NumbersUniqueAndIncreasing", testNumbers},
		{"ConcurrentIngest", testConcurrentIngest},
		{"TwoHandlesIngestSameIncidents", testTwoHandlesIngest},
		{"TwoHandlesRaceChanges", testTwoHandlesChanges},
		{"EventLogReadInOrder", testEventLogInOrder},
		{"Acknowledge", testAcknowledge},
		{"AcknowledgeRefusals", testAcknowledgeRefusals},
		{"Transition", testTransition},
		{"LookupByIncidentAndUnverified", testLookup},
		{"OddText", testOddText},
		{"List", testList},
		{"ReopenKeepsData", testReopen},
		{"RoutingAndDeadlinesKept", testRoutingKept},
		{"LifecycleStamps", testLifecycleStamps},
		{"DispatchRules", testDispatchRules},
		{"Merge", testMerge},
		{"FalseAlarm", testFalseAlarm},
		{"Confirmation", testConfirmation},
		{"Breach", testBreach},
		{"Filters", testFilters},
		{"Counts", testCounts},
		{"EventsAfter", testEventsAfter},
		{"ConcurrentChanges", testConcurrentChanges},
		{"Deliveries", testDeliveries},
		{"DeliveriesSurviveReopen", testDeliveriesSurviveReopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each subtest has a database of its own
			tt.f(t, newOpener(t))
		})
	}
}

var epoch = time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)

func openStore(t *testing.T, open Opener, clock hub.Clock) hub.Store {
	t.Helper()
	s, err := open(clock)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// incident returns a distinct, valid NewTicket for device.
func incident(device string, n int) hub.NewTicket {
	return hub.NewTicket{
		IncidentID: fmt.Sprintf("0195a1b2-0000-7000-8000-%012d", n),
		DeviceID:   device,
		Source:     "sms",
		Category:   "flood",
		Priority:   hub.PriorityNormal,
		Text:       fmt.Sprintf("banjir setinggi lutut, laporan %d", n),
		Reporter:   "+6281200000000",
		OccurredAt: epoch.Add(-time.Duration(n) * time.Minute),
	}
}

func ingest(t *testing.T, s hub.Store, batch ...hub.NewTicket) []hub.IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), batch)
	if err != nil {
		t.Fatalf("ingest %d: %v", len(batch), err)
	}
	if len(res) != len(batch) {
		t.Fatalf("ingest %d: got %d results", len(batch), len(res))
	}
	return res
}

func mustTicket(t *testing.T, r hub.IngestResult) *hub.Ticket {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("ingest result: %v", r.Err)
	}
	if r.Ticket == nil {
		t.Fatalf("ingest result has neither ticket nor error")
	}
	return r.Ticket
}

func countTickets(t *testing.T, s hub.Store) int {
	t.Helper()
	ts, err := s.Tickets(context.Background(), hub.TicketFilter{Limit: hub.MaxLimit})
	if err != nil {
		t.Fatalf("list tickets: %v", err)
	}
	return len(ts)
}

func sameTicket(t *testing.T, what string, got, want *hub.Ticket) {
	t.Helper()
	if got.ID != want.ID || got.Number != want.Number || got.IncidentID != want.IncidentID ||
		got.Status != want.Status || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: got ticket %+v, want %+v", what, got, want)
	}
}

func testIngestCreates(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)

	in := incident("kiosk-1", 1)
	in.Test = true
	btn := incident("kiosk-1", 2)
	btn.Source, btn.Button, btn.Category, btn.Text, btn.Reporter = "button", "panic", "", "", ""
	btn.Priority = hub.PriorityEmergency

	res := ingest(t, s, in, btn)
	for i, r := range res {
		if r.Existing {
			t.Errorf("result %d: Existing on first ingest", i)
		}
	}
	tk := mustTicket(t, res[0])
	if tk.ID == "" || !strings.HasPrefix(tk.Number, "112-") {
		t.Errorf("ticket id %q number %q: want an id and a 112- number", tk.ID, tk.Number)
	}
	if tk.IncidentID != in.IncidentID || tk.DeviceID != "kiosk-1" || tk.Source != "sms" ||
		tk.Category != "flood" || tk.Priority != hub.PriorityNormal || tk.Text != in.Text ||
		tk.Reporter != in.Reporter || !tk.Test || !tk.OccurredAt.Equal(in.OccurredAt) {
		t.Errorf("ticket %+v does not carry incident %+v", tk, in)
	}
	if tk.Status != hub.StatusNew || !tk.CreatedAt.Equal(epoch) || tk.AcknowledgedAt != nil || tk.AcknowledgedBy != "" {
		t.Errorf("new ticket status %q created %v acked %v by %q", tk.Status, tk.CreatedAt, tk.AcknowledgedAt, tk.AcknowledgedBy)
	}
	tb := mustTicket(t, res[1])
	if tb.Button != "panic" || tb.Priority != hub.PriorityEmergency || tb.ID == tk.ID || tb.Number == tk.Number {
		t.Errorf("button ticket %+v", tb)
	}

	got, err := s.Ticket(context.Background(), tk.ID)
	if err != nil {
		t.Fatalf("get ticket: %v", err)
	}
	sameTicket(t, "get", got, tk)
	if got.Text != in.Text || !got.Test || !got.OccurredAt.Equal(in.OccurredAt) {
		t.Errorf("stored ticket %+v lost fields of %+v", got, in)
	}

	evs, err := s.Events(context.Background(), tk.ID)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if len(evs) != 1 || evs[0].From != "" || evs[0].To != hub.StatusNew || evs[0].Actor != "device:kiosk-1" ||
		!evs[0].At.Equal(epoch) || evs[0].TicketID != tk.ID {
		t.Errorf("creation events %+v: want one event \"\"→new by device:kiosk-1", evs)
	}

	if res, err := s.Ingest(context.Background(), nil); err != nil || len(res) != 0 {
		t.Errorf("empty batch: %v, %v", res, err)
	}
}

func testReplay(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	first := mustTicket(t, ingest(t, s, incident("kiosk-1", 1))[0])

	clock.Advance(time.Minute)
	replay := incident("kiosk-1", 1)
	replay.Text = "re-sent with different text: the first one wins"
	res := ingest(t, s, replay, incident("kiosk-1", 2))
	if !res[0].Existing {
		t.Errorf("replay not flagged Existing")
	}
	sameTicket(t, "replay", mustTicket(t, res[0]), first)
	if res[0].Ticket.Text != first.Text {
		t.Errorf("replay changed text to %q", res[0].Ticket.Text)
	}
	if res[1].Existing {
		t.Errorf("new incident in a batch with a replay flagged Existing")
	}
	if n := countTickets(t, s); n != 2 {
		t.Errorf("after a replay: %d tickets, want 2", n)
	}
	evs, err := s.Events(context.Background(), first.ID)
	if err != nil || len(evs) != 1 {
		t.Errorf("events after replay: %+v, %v; want the creation event only", evs, err)
	}
}

func testReplayWithinBatch(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	res := ingest(t, s, incident("kiosk-1", 1), incident("kiosk-1", 1))
	a, b := mustTicket(t, res[0]), mustTicket(t, res[1])
	if res[0].Existing || !res[1].Existing {
		t.Errorf("Existing = %v, %v; want false, true", res[0].Existing, res[1].Existing)
	}
	sameTicket(t, "second in batch", b, a)
	if n := countTickets(t, s); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}

func testIncidentOfAnotherDevice(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	orig := mustTicket(t, ingest(t, s, incident("kiosk-1", 1))[0])

	res := ingest(t, s, incident("kiosk-2", 1), incident("kiosk-2", 2))
	if res[0].Err == nil || hub.ErrorCode(res[0].Err) != hub.CodeConflict {
		t.Errorf("incident id of kiosk-1 sent by kiosk-2: err %v (code %q), want conflict", res[0].Err, hub.ErrorCode(res[0].Err))
	}
	if res[0].Ticket != nil {
		t.Errorf("conflict returned ticket %+v: another device's ticket must not leak", res[0].Ticket)
	}
	mustTicket(t, res[1])

	// The same within one batch: the first device to use an incident ID owns it.
	res = ingest(t, s, incident("kiosk-3", 5), incident("kiosk-4", 5))
	if mustTicket(t, res[0]).DeviceID != "kiosk-3" || hub.ErrorCode(res[1].Err) != hub.CodeConflict || res[1].Ticket != nil {
		t.Errorf("one incident id from two devices in a batch: %+v, %+v", res[0], res[1])
	}
	got, err := s.Ticket(context.Background(), orig.ID)
	if err != nil || got.DeviceID != "kiosk-1" {
		t.Errorf("original ticket after conflict: %+v, %v", got, err)
	}
}

func testInvalidItem(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	bad := incident("kiosk-1", 1)
	bad.Priority = "whenever"
	noID := incident("kiosk-1", 2)
	noID.IncidentID = ""
	res := ingest(t, s, bad, noID, incident("kiosk-1", 3))
	for i := range 2 {
		if hub.ErrorCode(res[i].Err) != hub.CodeInvalid {
			t.Errorf("result %d: err %v, want invalid", i, res[i].Err)
		}
	}
	mustTicket(t, res[2])
	if n := countTickets(t, s); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}

func seqOf(t *testing.T, number string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscanf(number, "112-%d", &n); err != nil {
		t.Fatalf("ticket number %q: %v", number, err)
	}
	return n
}

func testNumbers(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	var last int64
	seen := map[string]bool{}
	for b := range 5 {
		var batch []hub.NewTicket
		for i := range 40 {
			batch = append(batch, incident(fmt.Sprintf("kiosk-%d", i%3), b*100+i))
		}
		for _, r := range ingest(t, s, batch...) {
			tk := mustTicket(t, r)
			n := seqOf(t, tk.Number)
			if n <= last {
				t.Fatalf("number %s after %d: not increasing", tk.Number, last)
			}
			if seen[tk.ID] {
				t.Fatalf("ticket id %s issued twice", tk.ID)
			}
			seen[tk.ID] = true
			last = n
		}
	}
}

func testConcurrentIngest(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	const writers, per = 8, 25
	var wg sync.WaitGroup
	numbers := make(chan string, writers*per)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				res, err := s.Ingest(context.Background(), []hub.NewTicket{incident("kiosk-1", w*1000+i)})
				if err != nil {
					errs <- err
					return
				}
				if res[0].Err != nil {
					errs <- res[0].Err
					return
				}
				numbers <- res[0].Ticket.Number
			}
		})
	}
	wg.Wait()
	close(numbers)
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent ingest: %v", err)
	}
	seen := map[string]bool{}
	for n := range numbers {
		if seen[n] {
			t.Fatalf("number %s issued twice", n)
		}
		seen[n] = true
	}
	if len(seen) != writers*per {
		t.Fatalf("%d numbers, want %d", len(seen), writers*per)
	}
}

func testAcknowledge(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	tk := mustTicket(t, ingest(t, s, incident("kiosk-1", 1))[0])

	clock.Advance(90 * time.Second)
	acked, err := s.Acknowledge(context.Background(), tk.ID, "siti", "calling the RT head")
	if err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	want := epoch.Add(90 * time.Second)
	if acked.Status != hub.StatusAcknowledged || acked.AcknowledgedAt == nil || !acked.AcknowledgedAt.Equal(want) ||
		acked.AcknowledgedBy != "siti" || acked.ID != tk.ID || acked.Number != tk.Number {
		t.Errorf("acknowledged ticket %+v", acked)
	}
	got, err := s.Ticket(context.Background(), tk.ID)
	if err != nil || got.Status != hub.StatusAcknowledged || got.AcknowledgedBy != "siti" {
		t.Errorf("stored after ack: %+v, %v", got, err)
	}
	evs, err := s.Events(context.Background(), tk.ID)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if len(evs) != 2 {
		t.Fatalf("events %+v: want creation and acknowledgement", evs)
	}
	e := evs[1]
	if e.From != hub.StatusNew || e.To != hub.StatusAcknowledged || e.Actor != "siti" ||
		e.Note != "calling the RT head" || !e.At.Equal(want) || e.ID <= evs[0].ID {
		t.Errorf("ack event %+v", e)
	}

	// A replay after the ack still answers with the ticket as it is now.
	res := ingest(t, s, incident("kiosk-1", 1))
	if !res[0].Existing || mustTicket(t, res[0]).Status != hub.StatusAcknowledged {
		t.Errorf("replay after ack: %+v", res[0].Ticket)
	}
}

func testAcknowledgeRefusals(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	tk := mustTicket(t, ingest(t, s, incident("kiosk-1", 1))[0])
	ctx := context.Background()

	if _, err := s.Acknowledge(ctx, "no-such-ticket", "siti", ""); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("ack unknown ticket: %v, want not_found", err)
	}
	if _, err := s.Ticket(ctx, "no-such-ticket"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("get unknown ticket: %v, want not_found", err)
	}
	if _, err := s.Events(ctx, "no-such-ticket"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("events of unknown ticket: %v, want not_found", err)
	}
	// People name tickets by number.
	if got, err := s.Ticket(ctx, tk.Number); err != nil || got.ID != tk.ID {
		t.Errorf("get by number %s: %+v, %v; want ticket %s", tk.Number, got, err, tk.ID)
	}
	if _, err := s.Ticket(ctx, hub.FormatNumber(999999)); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("get unknown number: %v, want not_found", err)
	}
	if _, err := s.Acknowledge(ctx, tk.ID, "", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("ack without actor: %v, want invalid", err)
	}
	if _, err := s.Acknowledge(ctx, tk.ID, "siti", strings.Repeat("x", hub.MaxNoteLen+1)); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("ack with oversized note: %v, want invalid", err)
	}
	if _, err := s.Acknowledge(ctx, tk.ID, "siti", ""); err != nil {
		t.Fatalf("first ack: %v", err)
	}
	// new → acknowledged is legal once; acknowledged → acknowledged is not.
	_, err := s.Acknowledge(ctx, tk.ID, "budi", "")
	if hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("second ack: %v, want conflict", err)
	}
	got, _ := s.Ticket(ctx, tk.ID)
	if got.AcknowledgedBy != "siti" {
		t.Errorf("second ack overwrote acknowledged_by: %q", got.AcknowledgedBy)
	}
	evs, _ := s.Events(ctx, tk.ID)
	if len(evs) != 2 {
		t.Errorf("events after refused ack: %d, want 2 (no event for a refused transition)", len(evs))
	}
}

func testList(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	ctx := context.Background()
	var batch []hub.NewTicket
	for i := range 10 {
		batch = append(batch, incident(fmt.Sprintf("kiosk-%d", i%2), i))
	}
	res := ingest(t, s, batch...)
	for _, i := range []int{1, 4, 7} {
		if _, err := s.Acknowledge(ctx, mustTicket(t, res[i]).ID, "siti", ""); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}

	all, err := s.Tickets(ctx, hub.TicketFilter{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 10 {
		t.Fatalf("list all: %d, want 10", len(all))
	}
	for i := 1; i < len(all); i++ {
		if seqOf(t, all[i-1].Number) <= seqOf(t, all[i].Number) {
			t.Fatalf("list not newest first: %s before %s", all[i-1].Number, all[i].Number)
		}
	}

	check := func(f hub.TicketFilter, want int, ok func(*hub.Ticket) bool) {
		t.Helper()
		got, err := s.Tickets(ctx, f)
		if err != nil {
			t.Fatalf("list %+v: %v", f, err)
		}
		if len(got) != want {
			t.Errorf("list %+v: %d tickets, want %d", f, len(got), want)
		}
		for _, tk := range got {
			if !ok(tk) {
				t.Errorf("list %+v returned %+v", f, tk)
			}
		}
	}
	check(hub.TicketFilter{Status: hub.StatusAcknowledged}, 3, func(tk *hub.Ticket) bool { return tk.Status == hub.StatusAcknowledged })
	check(hub.TicketFilter{Status: hub.StatusNew}, 7, func(tk *hub.Ticket) bool { return tk.Status == hub.StatusNew })
	check(hub.TicketFilter{DeviceID: "kiosk-1"}, 5, func(tk *hub.Ticket) bool { return tk.DeviceID == "kiosk-1" })
	check(hub.TicketFilter{DeviceID: "kiosk-1", Status: hub.StatusAcknowledged}, 2, func(tk *hub.Ticket) bool {
		return tk.DeviceID == "kiosk-1" && tk.Status == hub.StatusAcknowledged
	})
	check(hub.TicketFilter{DeviceID: "nobody"}, 0, nil)
	check(hub.TicketFilter{Limit: 4}, 4, func(tk *hub.Ticket) bool { return seqOf(t, tk.Number) > seqOf(t, all[4].Number) })

	if _, err := s.Tickets(ctx, hub.TicketFilter{Status: "lost"}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("list by unknown status: %v, want invalid", err)
	}
	if _, err := s.Tickets(ctx, hub.TicketFilter{Limit: hub.MaxLimit + 1}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("list over MaxLimit: %v, want invalid", err)
	}
}

func testReopen(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s, err := open(clock)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	res := ingest(t, s, incident("kiosk-1", 1), incident("kiosk-1", 2))
	a, b := mustTicket(t, res[0]), mustTicket(t, res[1])
	if _, err := s.Acknowledge(context.Background(), a.ID, "siti", "noted"); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = openStore(t, open, clock)
	got, err := s.Ticket(context.Background(), a.ID)
	if err != nil {
		t.Fatalf("ticket after reopen: %v", err)
	}
	if got.Status != hub.StatusAcknowledged || got.Number != a.Number || got.AcknowledgedBy != "siti" {
		t.Errorf("after reopen: %+v", got)
	}
	evs, err := s.Events(context.Background(), a.ID)
	if err != nil || len(evs) != 2 {
		t.Errorf("events after reopen: %+v, %v", evs, err)
	}
	// The replay of an incident from before the restart finds its ticket, and the sequence
	// carries on rather than reissuing numbers.
	res = ingest(t, s, incident("kiosk-1", 2), incident("kiosk-1", 3))
	if !res[0].Existing || mustTicket(t, res[0]).ID != b.ID {
		t.Errorf("replay after reopen: %+v", res[0])
	}
	if c := mustTicket(t, res[1]); seqOf(t, c.Number) <= seqOf(t, b.Number) {
		t.Errorf("number after reopen %s, last before %s", c.Number, b.Number)
	}
}

func testTransition(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	tk := mustTicket(t, ingest(t, s, incident("kiosk-1", 1))[0])

	clock.Advance(time.Minute)
	got, err := s.Transition(ctx, tk.ID, hub.StatusCancelled, "sms:+6281200000000", "BATAL dari pelapor")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if got.Status != hub.StatusCancelled || got.AcknowledgedAt != nil {
		t.Errorf("cancelled ticket %+v", got)
	}
	// Applied once: a second cancel is a conflict and records nothing.
	if _, err := s.Transition(ctx, tk.ID, hub.StatusCancelled, "sms:+6281200000000", "again"); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("second cancel: %v, want conflict", err)
	}
	if _, err := s.Transition(ctx, tk.ID, hub.StatusAcknowledged, "siti", ""); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("acknowledge a cancelled ticket: %v, want conflict", err)
	}
	if _, err := s.Transition(ctx, tk.ID, hub.Status("lost"), "siti", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("unknown status: %v, want invalid", err)
	}
	evs, err := s.Events(ctx, tk.ID)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if len(evs) != 2 || evs[1].To != hub.StatusCancelled || evs[1].Actor != "sms:+6281200000000" ||
		evs[1].Note != "BATAL dari pelapor" || !evs[1].At.Equal(epoch.Add(time.Minute)) {
		t.Errorf("events %+v: want creation then one cancellation", evs)
	}
}

func testLookup(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	ctx := context.Background()
	in := incident("kiosk-1", 7)
	in.Unverified = true
	tk := mustTicket(t, ingest(t, s, in, incident("kiosk-1", 8))[0])
	for _, ref := range []string{tk.ID, tk.Number, in.IncidentID} {
		got, err := s.Ticket(ctx, ref)
		if err != nil || got.ID != tk.ID {
			t.Errorf("Ticket(%q) = %+v, %v; want ticket %s", ref, got, err, tk.Number)
			continue
		}
		if !got.Unverified {
			t.Errorf("Ticket(%q) lost the unverified mark", ref)
		}
	}
	other, err := s.Ticket(ctx, incident("kiosk-1", 8).IncidentID)
	if err != nil || other.Unverified || other.ID == tk.ID {
		t.Errorf("second ticket %+v, %v", other, err)
	}
}

// testOddText: an SMS may carry a NUL or bytes that are not UTF-8. A store that cannot hold
// them may replace them, but the report becomes a ticket, never an error (its kiosk would
// re-send it for ever), and a replay finds that ticket.
func testOddText(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	in := incident("kiosk-1", 1)
	in.Text, in.Reporter = "api\x00 di gang \xff\xfe mawar", "+62812\x00"
	tk := mustTicket(t, ingest(t, s, in)[0])
	if !strings.Contains(tk.Text, "di gang") || !strings.Contains(tk.Text, "mawar") {
		t.Errorf("text %q lost the readable part of %q", tk.Text, in.Text)
	}
	got := getTicket(t, s, tk.ID)
	if got.Text != tk.Text || got.Reporter != tk.Reporter {
		t.Errorf("stored text %q reporter %q, but ingest answered %q %q", got.Text, got.Reporter, tk.Text, tk.Reporter)
	}
	replay := ingest(t, s, in)[0]
	if replay.Err != nil || !replay.Existing || replay.Ticket.ID != tk.ID {
		t.Errorf("replay: %+v, want the same ticket", replay)
	}
}
