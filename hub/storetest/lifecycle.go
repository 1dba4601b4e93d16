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

// The semantics of issue 5: routing and deadlines kept with a ticket, the whole lifecycle with
// its stamps and audit trail, merges, false alarms, RT/RW confirmation, breaches, the filters
// and counts the dashboard and metrics use, and the event log webhooks fan out from.

func ptr(t time.Time) *time.Time { return &t }

func timesEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// routed is a NewTicket as ingest makes it after routing.
func routed(device string, n int, agency string, p hub.Priority) hub.NewTicket {
	nt := incident(device, n)
	nt.Agency, nt.Priority = agency, p
	nt.Site = hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "01", Lat: -6.2745, Lon: 106.5223}
	nt.Deadlines = hub.Deadlines{AckDue: ptr(epoch.Add(5 * time.Minute)), ResolveDue: ptr(epoch.Add(4 * time.Hour))}
	return nt
}

func lastEvent(t *testing.T, s hub.Store, ticketID string) hub.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), ticketID)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of %s: %+v, %v", ticketID, evs, err)
	}
	return evs[len(evs)-1]
}

func countEvents(t *testing.T, s hub.Store, ticketID string) int {
	t.Helper()
	evs, err := s.Events(context.Background(), ticketID)
	if err != nil {
		t.Fatalf("events of %s: %v", ticketID, err)
	}
	return len(evs)
}

func testRoutingKept(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	nt := routed("kiosk-1", 1, "damkar", hub.PriorityEmergency)
	nt.Unit = "pos-barat"
	nt.Deadlines.QueuedUntil = ptr(epoch.Add(time.Hour))
	plain := incident("kiosk-1", 2) // no agency: the store puts it in triage
	res := ingest(t, s, nt, plain)
	tk, tp := mustTicket(t, res[0]), mustTicket(t, res[1])
	for _, got := range []*hub.Ticket{tk, getTicket(t, s, tk.ID)} {
		if got.Agency != "damkar" || got.Unit != "pos-barat" || got.Site != nt.Site ||
			!timesEqual(got.AckDue, nt.AckDue) || !timesEqual(got.ResolveDue, nt.ResolveDue) || !timesEqual(got.QueuedUntil, nt.QueuedUntil) {
			t.Errorf("routed ticket %+v lost routing or deadlines of %+v", got, nt)
		}
		if got.Version != 1 || !got.UpdatedAt.Equal(epoch) || got.FalseAlarm || got.Confirmation.State != hub.ConfirmNone ||
			got.AckBreachedAt != nil || got.DuplicateOf != "" {
			t.Errorf("new ticket %+v: want version 1, updated at creation, nothing else set", got)
		}
	}
	if tp.Agency != hub.AgencyTriage || getTicket(t, s, tp.ID).Agency != hub.AgencyTriage || tp.AckDue != nil {
		t.Errorf("unrouted ticket agency %q due %v: want triage and no deadline", tp.Agency, tp.AckDue)
	}
	if e := lastEvent(t, s, tk.ID); e.Kind != hub.EventStatus || e.Agency != "damkar" {
		t.Errorf("creation event %+v: want kind status, agency damkar", e)
	}
}

func getTicket(t *testing.T, s hub.Store, id string) *hub.Ticket {
	t.Helper()
	got, err := s.Ticket(context.Background(), id)
	if err != nil {
		t.Fatalf("get ticket %s: %v", id, err)
	}
	return got
}

func testLifecycleStamps(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	tk := mustTicket(t, ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency))[0])

	steps := []struct {
		do   func() (*hub.Ticket, error)
		want hub.Status
		at   func(*hub.Ticket) (*time.Time, string)
	}{
		{func() (*hub.Ticket, error) { return s.Acknowledge(ctx, tk.ID, "siti", "saya tangani") }, hub.StatusAcknowledged,
			func(t *hub.Ticket) (*time.Time, string) { return t.AcknowledgedAt, t.AcknowledgedBy }},
		{func() (*hub.Ticket, error) { return s.Dispatch(ctx, tk.ID, "", "", "siti", "mobil 2 berangkat") }, hub.StatusDispatched,
			func(t *hub.Ticket) (*time.Time, string) { return t.DispatchedAt, t.DispatchedBy }},
		{func() (*hub.Ticket, error) { return s.Transition(ctx, tk.ID, hub.StatusResolved, "budi", "api padam") }, hub.StatusResolved,
			func(t *hub.Ticket) (*time.Time, string) { return t.ResolvedAt, t.ResolvedBy }},
		{func() (*hub.Ticket, error) { return s.Transition(ctx, tk.ID, hub.StatusClosed, "supervisor", "") }, hub.StatusClosed,
			func(t *hub.Ticket) (*time.Time, string) { return t.ClosedAt, t.ClosedBy }},
	}
	for i, st := range steps {
		clock.Advance(time.Minute)
		got, err := st.do()
		if err != nil {
			t.Fatalf("step %d to %s: %v", i, st.want, err)
		}
		now := clock.Now()
		for _, g := range []*hub.Ticket{got, getTicket(t, s, tk.ID)} {
			at, by := st.at(g)
			if g.Status != st.want || at == nil || !at.Equal(now) || by == "" || g.Version != int64(i+2) || !g.UpdatedAt.Equal(now) {
				t.Errorf("after step to %s: status %s at %v by %q version %d updated %v", st.want, g.Status, at, by, g.Version, g.UpdatedAt)
			}
		}
		e := lastEvent(t, s, tk.ID)
		if e.Kind != hub.EventStatus || e.To != st.want || !e.At.Equal(now) || e.Agency != "damkar" {
			t.Errorf("event of step to %s: %+v", st.want, e)
		}
	}
	if n := countEvents(t, s, tk.ID); n != 5 {
		t.Errorf("%d events, want creation and four steps", n)
	}
	// Transition cannot make a duplicate: that needs Merge, which says of what.
	other := mustTicket(t, ingest(t, s, routed("kiosk-1", 2, "damkar", hub.PriorityEmergency))[0])
	if _, err := s.Transition(ctx, other.ID, hub.StatusDuplicate, "siti", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("Transition to duplicate: %v, want invalid", err)
	}
}

func testDispatchRules(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	res := ingest(t, s, incident("kiosk-1", 1), routed("kiosk-1", 2, "pln", hub.PriorityNormal))
	triage, pln := mustTicket(t, res[0]), mustTicket(t, res[1])

	// A ticket must be acknowledged before it is dispatched.
	if _, err := s.Dispatch(ctx, pln.ID, "pln", "up3-cikupa", "siti", ""); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("dispatch a new ticket: %v, want conflict", err)
	}
	for _, id := range []string{triage.ID, pln.ID} {
		if _, err := s.Acknowledge(ctx, id, "siti", ""); err != nil {
			t.Fatal(err)
		}
	}
	// Triage is not an agency to dispatch to.
	if _, err := s.Dispatch(ctx, triage.ID, "", "", "siti", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("dispatch a triage ticket to its own agency: %v, want invalid", err)
	}
	if _, err := s.Dispatch(ctx, triage.ID, hub.AgencyTriage, "", "siti", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("dispatch to triage: %v, want invalid", err)
	}
	if _, err := s.Dispatch(ctx, pln.ID, "pln", "up3-cikupa", "", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("dispatch without actor: %v, want invalid", err)
	}
	got, err := s.Dispatch(ctx, triage.ID, "bpbd", "", "siti", "pohon tumbang")
	if err != nil || got.Agency != "bpbd" || got.Status != hub.StatusDispatched {
		t.Fatalf("dispatch triage ticket to bpbd: %+v, %v", got, err)
	}
	if e := lastEvent(t, s, triage.ID); e.Agency != "bpbd" || e.Detail != "bpbd" || e.To != hub.StatusDispatched {
		t.Errorf("dispatch event %+v", e)
	}
	got, err = s.Dispatch(ctx, pln.ID, "pln", "up3-cikupa", "siti", "")
	if err != nil || got.Unit != "up3-cikupa" {
		t.Fatalf("dispatch to pln: %+v, %v", got, err)
	}
	// Applied once: the same again is a conflict and records nothing.
	n := countEvents(t, s, pln.ID)
	if _, err := s.Dispatch(ctx, pln.ID, "pln", "up3-cikupa", "budi", ""); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("dispatch twice: %v, want conflict", err)
	}
	if countEvents(t, s, pln.ID) != n {
		t.Errorf("a refused dispatch recorded an event")
	}
	// To another agency it is a reassignment.
	clock.Advance(time.Minute)
	got, err = s.Dispatch(ctx, pln.ID, "dbmsda", "", "budi", "tiang roboh ke jalan")
	if err != nil || got.Agency != "dbmsda" || got.Unit != "" || got.Status != hub.StatusDispatched || got.DispatchedBy != "budi" ||
		!got.DispatchedAt.Equal(clock.Now()) {
		t.Fatalf("reassign: %+v, %v", got, err)
	}
	if e := lastEvent(t, s, pln.ID); e.Kind != hub.EventReassigned || e.Agency != "dbmsda" || e.From != hub.StatusDispatched ||
		e.To != hub.StatusDispatched || e.Note != "tiang roboh ke jalan" {
		t.Errorf("reassign event %+v", e)
	}
	// Transition to dispatched keeps the agency.
	third := mustTicket(t, ingest(t, s, routed("kiosk-1", 3, "damkar", hub.PriorityEmergency))[0])
	if _, err := s.Acknowledge(ctx, third.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Transition(ctx, third.ID, hub.StatusDispatched, "siti", ""); err != nil || got.Agency != "damkar" {
		t.Errorf("Transition to dispatched: %+v, %v", got, err)
	}
}

func testMerge(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	res := ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency), routed("kiosk-2", 2, "damkar", hub.PriorityEmergency),
		routed("kiosk-3", 3, "damkar", hub.PriorityEmergency), routed("kiosk-4", 4, "damkar", hub.PriorityEmergency))
	a, b, c, d := mustTicket(t, res[0]), mustTicket(t, res[1]), mustTicket(t, res[2]), mustTicket(t, res[3])

	clock.Advance(time.Minute)
	dup, survivor, err := s.Merge(ctx, b.ID, a.Number, "siti", "kebakaran yang sama")
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if dup.Status != hub.StatusDuplicate || dup.DuplicateOf != a.ID || survivor.ID != a.ID || survivor.Status != hub.StatusNew {
		t.Errorf("merge returned %+v, %+v", dup, survivor)
	}
	if got := getTicket(t, s, b.ID); got.Status != hub.StatusDuplicate || got.DuplicateOf != a.ID {
		t.Errorf("stored duplicate %+v", got)
	}
	if e := lastEvent(t, s, b.ID); e.To != hub.StatusDuplicate || e.Detail != a.ID || e.Actor != "siti" {
		t.Errorf("duplicate's event %+v", e)
	}
	if e := lastEvent(t, s, a.ID); e.Kind != hub.EventMerged || e.Detail != b.ID || e.From != hub.StatusNew || e.To != hub.StatusNew ||
		!e.At.Equal(clock.Now()) {
		t.Errorf("survivor's event %+v: want the merge recorded", e)
	}
	if got := getTicket(t, s, a.ID); got.Version != 2 {
		t.Errorf("survivor version %d, want 2", got.Version)
	}

	refusals := []struct {
		what     string
		dup, to  string
		wantCode string
	}{
		{"into itself", c.ID, c.ID, hub.CodeInvalid},
		{"into a duplicate", c.ID, b.ID, hub.CodeConflict},
		{"a duplicate again", b.ID, c.ID, hub.CodeConflict},
		{"into an unknown ticket", c.ID, "112-999999", hub.CodeNotFound},
		{"an unknown ticket", "no-such", a.ID, hub.CodeNotFound},
	}
	for _, r := range refusals {
		if _, _, err := s.Merge(ctx, r.dup, r.to, "siti", ""); hub.ErrorCode(err) != r.wantCode {
			t.Errorf("merge %s: %v, want %s", r.what, err, r.wantCode)
		}
	}
	if _, err := s.Transition(ctx, d.ID, hub.StatusCancelled, "siti", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Merge(ctx, c.ID, d.ID, "siti", ""); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("merge into a cancelled ticket: %v, want conflict", err)
	}
	if got := getTicket(t, s, c.ID); got.Status != hub.StatusNew || countEvents(t, s, c.ID) != 1 {
		t.Errorf("refused merges changed %+v", got)
	}
}

func testFalseAlarm(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	res := ingest(t, s, routed("kiosk-1", 1, hub.AgencyTriage, hub.PriorityEmergency), routed("kiosk-1", 2, "damkar", hub.PriorityEmergency))
	open1, done := mustTicket(t, res[0]), mustTicket(t, res[1])

	if _, err := s.MarkFalseAlarm(ctx, open1.ID, "siti", "  "); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("false alarm without a reason: %v, want invalid", err)
	}
	clock.Advance(time.Minute)
	got, err := s.MarkFalseAlarm(ctx, open1.ID, "siti", "anak-anak bermain tombol")
	if err != nil {
		t.Fatalf("mark false alarm: %v", err)
	}
	now := clock.Now()
	for _, g := range []*hub.Ticket{got, getTicket(t, s, open1.ID)} {
		if !g.FalseAlarm || g.FalseAlarmReason != "anak-anak bermain tombol" || g.FalseAlarmBy != "siti" || !timesEqual(g.FalseAlarmAt, &now) ||
			g.Status != hub.StatusCancelled || g.CancelledBy != "siti" {
			t.Errorf("false alarm ticket %+v: want flagged and cancelled", g)
		}
	}
	evs, _ := s.Events(ctx, open1.ID)
	if len(evs) != 3 || evs[1].Kind != hub.EventFalseAlarm || evs[1].Note != "anak-anak bermain tombol" ||
		evs[2].To != hub.StatusCancelled || !strings.Contains(evs[2].Note, "anak-anak") {
		t.Errorf("events %+v: want creation, false alarm, cancellation", evs)
	}
	if _, err := s.MarkFalseAlarm(ctx, open1.ID, "budi", "lagi"); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("mark twice: %v, want conflict", err)
	}
	// A ticket that is over keeps its status; the flag still counts.
	for _, st := range []hub.Status{hub.StatusAcknowledged, hub.StatusResolved} {
		if _, err := s.Transition(ctx, done.ID, st, "siti", ""); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.MarkFalseAlarm(ctx, done.ID, "supervisor", "laporan palsu"); err != nil || got.Status != hub.StatusResolved || !got.FalseAlarm {
		t.Errorf("false alarm on a resolved ticket: %+v, %v", got, err)
	}
}

func testConfirmation(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	tk := mustTicket(t, ingest(t, s, routed("kiosk-1", 1, hub.AgencyTriage, hub.PriorityEmergency))[0])
	const head1, head2 = "+6281200000001", "+6281200000002"

	if _, err := s.RequestConfirmation(ctx, tk.ID, 0); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("request asking nobody: %v, want invalid", err)
	}
	clock.Advance(time.Second)
	asked := clock.Now()
	got, err := s.RequestConfirmation(ctx, tk.ID, 2)
	if err != nil || got.Confirmation.State != hub.ConfirmPending || got.Confirmation.Asked != 2 || !timesEqual(got.Confirmation.AskedAt, &asked) {
		t.Fatalf("request: %+v, %v", got.Confirmation, err)
	}
	if e := lastEvent(t, s, tk.ID); e.Kind != hub.EventConfirmRequested || e.Detail != "2" || e.Actor != "hub" {
		t.Errorf("request event %+v", e)
	}
	// Asking again (a kiosk reconnecting) records nothing.
	clock.Advance(time.Minute)
	if got, err := s.RequestConfirmation(ctx, tk.ID, 2); err != nil || !timesEqual(got.Confirmation.AskedAt, &asked) || countEvents(t, s, tk.ID) != 2 {
		t.Errorf("second request: %+v, %v", got, err)
	}

	for _, bad := range []hub.ConfirmAnswer{"", "maybe", hub.ConfirmPending} {
		if _, _, err := s.RecordConfirmation(ctx, tk.ID, head1, bad); hub.ErrorCode(err) != hub.CodeInvalid {
			t.Errorf("answer %q: %v, want invalid", bad, err)
		}
	}
	if _, _, err := s.RecordConfirmation(ctx, tk.ID, "", hub.ConfirmYes); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("answer without number: %v, want invalid", err)
	}
	if _, _, err := s.RecordConfirmation(ctx, "no-such", head1, hub.ConfirmYes); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("answer about unknown ticket: %v, want not_found", err)
	}

	answers := []struct {
		number  string
		answer  hub.ConfirmAnswer
		changed bool
		state   hub.ConfirmState
		yes, no int
	}{
		{head1, hub.ConfirmNo, true, hub.ConfirmNo, 0, 1},
		{head1, hub.ConfirmNo, false, hub.ConfirmNo, 0, 1}, // the same SMS again
		{head2, hub.ConfirmYes, true, hub.ConfirmDisputed, 1, 1},
		{head1, hub.ConfirmYes, true, hub.ConfirmYes, 2, 0}, // head 1 changed their mind
	}
	for i, a := range answers {
		clock.Advance(time.Minute)
		before := countEvents(t, s, tk.ID)
		got, changed, err := s.RecordConfirmation(ctx, tk.ID, a.number, a.answer)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		c := getTicket(t, s, tk.ID).Confirmation
		if changed != a.changed || got.Confirmation.State != a.state || c.State != a.state || c.Yes != a.yes || c.No != a.no {
			t.Errorf("answer %d (%s %s): changed %v, returned %+v, stored %+v; want changed %v, %s, yes %d no %d",
				i, a.number, a.answer, changed, got.Confirmation, c, a.changed, a.state, a.yes, a.no)
		}
		if a.changed {
			now := clock.Now()
			if c.By != a.number || !timesEqual(c.At, &now) {
				t.Errorf("answer %d: by %q at %v, want %s now", i, c.By, c.At, a.number)
			}
			if e := lastEvent(t, s, tk.ID); e.Kind != hub.EventConfirmation || e.Actor != "sms:"+a.number || e.Detail != string(a.answer) {
				t.Errorf("answer %d event %+v", i, e)
			}
		} else if countEvents(t, s, tk.ID) != before {
			t.Errorf("answer %d repeated recorded an event", i)
		}
	}
	// An answer never changes the ticket's status or priority.
	if got := getTicket(t, s, tk.ID); got.Status != hub.StatusNew || got.Priority != hub.PriorityEmergency {
		t.Errorf("after answers: status %s priority %s", got.Status, got.Priority)
	}
}

func testBreach(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	res := ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency), routed("kiosk-1", 2, "damkar", hub.PriorityEmergency),
		incident("kiosk-1", 3))
	late, onTime, noDeadline := mustTicket(t, res[0]), mustTicket(t, res[1]), mustTicket(t, res[2])

	if _, _, err := s.MarkBreach(ctx, late.ID, "soon"); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("unknown deadline kind: %v, want invalid", err)
	}
	// Not yet due: nothing is marked.
	if _, marked, err := s.MarkBreach(ctx, late.ID, hub.BreachAck); err != nil || marked {
		t.Errorf("breach before the deadline: marked %v, %v", marked, err)
	}
	if ts, _ := s.Tickets(ctx, hub.TicketFilter{Overdue: clock.Now()}); len(ts) != 0 {
		t.Errorf("overdue before any deadline: %d tickets", len(ts))
	}

	clock.Advance(6 * time.Minute) // past AckDue (5 min)
	if _, err := s.Acknowledge(ctx, onTime.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	overdue, err := s.Tickets(ctx, hub.TicketFilter{Overdue: clock.Now()})
	if err != nil || len(overdue) != 1 || overdue[0].ID != late.ID {
		t.Fatalf("overdue after 6 minutes: %v, %v; want only the unacknowledged one", ids(overdue), err)
	}
	if k := overdue[0].Overdue(clock.Now()); len(k) != 1 || k[0] != hub.BreachAck {
		t.Errorf("Overdue = %v, want [ack]", k)
	}
	got, marked, err := s.MarkBreach(ctx, late.ID, hub.BreachAck)
	if err != nil || !marked || !timesEqual(got.AckBreachedAt, ptr(clock.Now())) {
		t.Fatalf("mark ack breach: %+v, %v, %v", got, marked, err)
	}
	if e := lastEvent(t, s, late.ID); e.Kind != hub.EventBreach || e.Detail != string(hub.BreachAck) || e.Actor != "hub" {
		t.Errorf("breach event %+v", e)
	}
	// Once only.
	if _, marked, err := s.MarkBreach(ctx, late.ID, hub.BreachAck); err != nil || marked {
		t.Errorf("second mark: %v, %v", marked, err)
	}
	// A ticket acknowledged in time did not miss its acknowledgement.
	if _, marked, _ := s.MarkBreach(ctx, onTime.ID, hub.BreachAck); marked {
		t.Errorf("acknowledged ticket marked as late")
	}
	if _, marked, _ := s.MarkBreach(ctx, noDeadline.ID, hub.BreachResolve); marked {
		t.Errorf("ticket without deadlines marked")
	}
	if ts, _ := s.Tickets(ctx, hub.TicketFilter{Breached: true}); len(ts) != 1 || ts[0].ID != late.ID {
		t.Errorf("breached filter: %v", ids(ts))
	}

	clock.Advance(4 * time.Hour) // past ResolveDue
	overdue, _ = s.Tickets(ctx, hub.TicketFilter{Overdue: clock.Now()})
	if len(overdue) != 2 {
		t.Errorf("overdue after 4 hours: %v, want both open tickets", ids(overdue))
	}
	if _, marked, err := s.MarkBreach(ctx, onTime.ID, hub.BreachResolve); err != nil || !marked {
		t.Errorf("resolve breach of the acknowledged ticket: %v, %v", marked, err)
	}
	// A closed ticket is past caring.
	if _, err := s.Transition(ctx, late.ID, hub.StatusCancelled, "siti", ""); err != nil {
		t.Fatal(err)
	}
	if _, marked, _ := s.MarkBreach(ctx, late.ID, hub.BreachResolve); marked {
		t.Errorf("cancelled ticket marked late")
	}
}

func ids(ts []*hub.Ticket) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Number
	}
	return out
}

func testFilters(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	ctx := context.Background()
	fire := routed("kiosk-1", 1, "damkar", hub.PriorityEmergency)
	fire.Category = "fire"
	pln := routed("kiosk-2", 2, "pln", hub.PriorityNormal)
	pln.Category, pln.Source = "electricity", "button"
	tri := routed("kiosk-1", 3, hub.AgencyTriage, hub.PriorityNormal)
	res := ingest(t, s, fire, pln, tri)
	if _, err := s.Transition(ctx, mustTicket(t, res[2]).ID, hub.StatusCancelled, "siti", ""); err != nil {
		t.Fatal(err)
	}
	check := func(f hub.TicketFilter, want ...int) {
		t.Helper()
		got, err := s.Tickets(ctx, f)
		if err != nil {
			t.Fatalf("list %+v: %v", f, err)
		}
		var wantNums []string
		for _, i := range want {
			wantNums = append(wantNums, res[i].Ticket.Number)
		}
		if fmt.Sprint(ids(got)) != fmt.Sprint(wantNums) {
			t.Errorf("list %+v = %v, want %v", f, ids(got), wantNums)
		}
	}
	check(hub.TicketFilter{Agency: "damkar"}, 0)
	check(hub.TicketFilter{Agency: hub.AgencyTriage}, 2)
	check(hub.TicketFilter{Priority: hub.PriorityNormal}, 2, 1)
	check(hub.TicketFilter{Category: "electricity"}, 1)
	check(hub.TicketFilter{Source: "button"}, 1)
	check(hub.TicketFilter{Open: true}, 1, 0)
	check(hub.TicketFilter{Open: true, Priority: hub.PriorityEmergency, Agency: "damkar"}, 0)
	check(hub.TicketFilter{Agency: "nobody"})
	if _, err := s.Tickets(ctx, hub.TicketFilter{Priority: "urgent"}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("unknown priority: %v, want invalid", err)
	}
}

func testCounts(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	if cs, err := s.TicketCounts(ctx); err != nil || len(cs) != 0 {
		t.Errorf("counts of an empty store: %+v, %v", cs, err)
	}
	old := routed("kiosk-1", 1, hub.AgencyTriage, hub.PriorityEmergency)
	oldT := mustTicket(t, ingest(t, s, old)[0])
	if _, err := s.MarkFalseAlarm(ctx, oldT.ID, "siti", "iseng"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(48 * time.Hour)
	since := clock.Now()
	test := routed("kiosk-1", 9, hub.AgencyTriage, hub.PriorityEmergency)
	test.Test = true
	res := ingest(t, s, routed("kiosk-1", 2, hub.AgencyTriage, hub.PriorityEmergency), routed("kiosk-1", 3, hub.AgencyTriage, hub.PriorityEmergency),
		routed("kiosk-2", 4, "pln", hub.PriorityNormal), test)
	if _, err := s.MarkFalseAlarm(ctx, mustTicket(t, res[0]).ID, "siti", "iseng"); err != nil {
		t.Fatal(err)
	}

	cs, err := s.TicketCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range cs {
		got[string(c.Status)+"/"+string(c.Priority)] += c.Count
	}
	want := map[string]int{"cancelled/emergency": 2, "new/emergency": 2, "new/normal": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("TicketCounts = %v, want %v", got, want)
	}

	dc, err := s.DeviceCounts(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if dc["kiosk-1"] != (hub.DeviceTicketCount{Tickets: 2, FalseAlarms: 1}) || dc["kiosk-2"] != (hub.DeviceTicketCount{Tickets: 1}) || len(dc) != 2 {
		t.Errorf("DeviceCounts since %v = %+v: want the window only, without test tickets", since, dc)
	}
}

func testEventsAfter(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	s := openStore(t, open, clock)
	ctx := context.Background()
	res := ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency), incident("kiosk-2", 2))
	a := mustTicket(t, res[0])
	if _, err := s.Acknowledge(ctx, a.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	all, err := s.EventsAfter(ctx, 0, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("all events: %+v, %v", all, err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Errorf("events not in order: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	if all[2].TicketID != a.ID || all[2].To != hub.StatusAcknowledged || all[2].Agency != "damkar" {
		t.Errorf("last event %+v", all[2])
	}
	rest, err := s.EventsAfter(ctx, all[0].ID, 1)
	if err != nil || len(rest) != 1 || rest[0].ID != all[1].ID {
		t.Errorf("after %d, limit 1: %+v, %v", all[0].ID, rest, err)
	}
	if none, err := s.EventsAfter(ctx, all[2].ID, 10); err != nil || len(none) != 0 {
		t.Errorf("after the last: %+v, %v", none, err)
	}
	if _, err := s.EventsAfter(ctx, 0, hub.MaxLimit+1); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("limit over MaxLimit: %v, want invalid", err)
	}
}

// testConcurrentChanges: operators racing to change one ticket: each change is applied once,
// the rest refused, and the trail has exactly the changes that were applied.
func testConcurrentChanges(t *testing.T, open Opener) {
	s := openStore(t, open, NewClock(epoch))
	ctx := context.Background()
	tk := mustTicket(t, ingest(t, s, routed("kiosk-1", 1, "damkar", hub.PriorityEmergency))[0])
	const racers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range racers {
		wg.Go(func() {
			_, err := s.Acknowledge(ctx, tk.ID, fmt.Sprintf("op-%d", i), "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case hub.ErrorCode(err) != hub.CodeConflict:
				t.Errorf("racing ack: %v, want success or conflict", err)
			}
		})
	}
	wg.Wait()
	got := getTicket(t, s, tk.ID)
	if wins != 1 || got.Version != 2 || countEvents(t, s, tk.ID) != 2 {
		t.Errorf("%d racing acks won, version %d, %d events; want exactly one applied", wins, got.Version, countEvents(t, s, tk.ID))
	}
}
