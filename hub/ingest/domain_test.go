package ingest_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/deadline"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/hub/storetest"
	"github.com/kentongan/kentongan/mqtt"
)

// Friday 13 March 2026, 10:00 WIB: inside working hours.
var friday10 = time.Date(2026, 3, 13, 3, 0, 0, 0, time.UTC)

const (
	head1 = "+6281200000001"
	head2 = "+6281200000002"
)

// domainSetup is a service with the built-in routing, a stopped clock, and two kiosks: pos-1 at
// Cikupa with two RT/RW heads, pos-2 at Legok without. The supervision loop is left idle; tests
// call Scan.
func domainSetup(t *testing.T, opts ingest.Options) (*ingest.Service, *fakeBus, *storetest.Clock) {
	t.Helper()
	clock := storetest.NewClock(friday10)
	r, err := route.New(route.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	opts.Clock, opts.Routes, opts.ScanInterval = clock, r, time.Hour
	if opts.Devices == nil {
		opts.Devices = []hub.Device{
			{ID: "pos-1", Name: "Pos Ronda RW 03 Talaga", Site: hub.Site{Kecamatan: "Cikupa", Kelurahan: "Talaga"},
				RTRWHeads: []string{"0812-0000-0001", head2}},
			{ID: "pos-2", Name: "Pos RW 01", Site: hub.Site{Kecamatan: "Legok"}, SupervisionSec: 300},
		}
	}
	s, bus, _ := setup(t, opts)
	return s, bus, clock
}

func press(t *testing.T, bus *fakeBus, device, category string) mqtt.Incident {
	t.Helper()
	id, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	in := mqtt.Incident{V: 1, ID: id, DeviceID: device, Source: mqtt.SourceButton, Button: "darurat", Category: category,
		OccurredAt: friday10.Add(-2 * time.Second), Attempt: 1}
	b, _ := mqtt.Encode(in)
	bus.deliver(mqtt.KindIncident, device, b)
	return in
}

func waitTicket(t *testing.T, s *ingest.Service, incidentID string) *hub.Ticket {
	t.Helper()
	var tk *hub.Ticket
	eventually(t, "ticket of "+incidentID, func() bool {
		var err error
		tk, err = s.Ticket(context.Background(), incidentID)
		return err == nil
	})
	return tk
}

func lastAck(t *testing.T, bus *fakeBus, device, incidentID string) mqtt.AckStatus {
	t.Helper()
	var st mqtt.AckStatus
	for _, a := range bus.acks(t, device) {
		if a.IncidentID == incidentID {
			st = a.Status
		}
	}
	return st
}

// TestRoutedAtIngest: a ticket gets its agency, unit, priority, site and deadlines when made.
func TestRoutedAtIngest(t *testing.T) {
	s, bus, _ := domainSetup(t, ingest.Options{})
	elec, p := smsIncident(t, "pos-1", head1, "electricity", func(in *mqtt.Incident) { in.Text = "LAPOR LISTRIK padam" })
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	tk := waitTicket(t, s, elec.ID)
	if tk.Agency != "pln" || tk.Unit != "up3-cikupa" || tk.Priority != hub.PriorityNormal || tk.Site.Kelurahan != "Talaga" {
		t.Errorf("electricity ticket routed to %s/%s %s at %+v", tk.Agency, tk.Unit, tk.Priority, tk.Site)
	}
	// Friday 10:00, working hours: acknowledged within two working hours, resolved within eight.
	if tk.QueuedUntil != nil || !tk.AckDue.Equal(friday10.Add(2*time.Hour)) || !tk.ResolveDue.Equal(friday10.Add(3*24*time.Hour)) {
		t.Errorf("electricity deadlines %+v", tk.Deadlines)
	}

	btn := waitTicket(t, s, press(t, bus, "pos-1", "").ID)
	if btn.Agency != hub.AgencyTriage || btn.Priority != hub.PriorityEmergency || !btn.AckDue.Equal(friday10.Add(5*time.Minute)) ||
		!btn.ResolveDue.Equal(time.Date(2026, 3, 13, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("panic press: %s %s due %v / %v", btn.Agency, btn.Priority, btn.AckDue, btn.ResolveDue)
	}
	crime := waitTicket(t, s, press(t, bus, "pos-2", "crime").ID)
	if crime.Agency != "polres-tangsel" || crime.Unit != "polsek-legok" {
		t.Errorf("crime at Legok routed to %s/%s", crime.Agency, crime.Unit)
	}
}

// TestLifecycleReachesKioskReporterAndFeed: every operator action is applied once, and reaches
// the kiosk's LED (an ack with the new status), the SMS reporter (naming the agency dispatched)
// and the live feed.
func TestLifecycleReachesKioskReporterAndFeed(t *testing.T) {
	s, bus, clock := domainSetup(t, ingest.Options{})
	ctx := context.Background()
	feedCtx, stop := context.WithCancel(ctx)
	defer stop()
	feed := s.Subscribe(feedCtx)

	in, p := smsIncident(t, "pos-1", head1, "fire", nil)
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	tk := waitTicket(t, s, in.ID)
	if e := <-feed; e.Kind != hub.FeedTicketCreated || e.Ticket.ID != tk.ID {
		t.Fatalf("first feed event %+v", e)
	}

	steps := []struct {
		do   func() (*hub.Ticket, error)
		want hub.Status
	}{
		{func() (*hub.Ticket, error) { return s.Acknowledge(ctx, tk.Number, "siti", "") }, hub.StatusAcknowledged},
		{func() (*hub.Ticket, error) { return s.Dispatch(ctx, tk.ID, "", "siti", "dua mobil") }, hub.StatusDispatched},
		{func() (*hub.Ticket, error) { return s.Resolve(ctx, tk.ID, "budi", "api padam") }, hub.StatusResolved},
		{func() (*hub.Ticket, error) { return s.CloseTicket(ctx, tk.ID, "supervisor", "") }, hub.StatusClosed},
	}
	for _, st := range steps {
		clock.Advance(time.Minute)
		got, err := st.do()
		if err != nil || got.Status != st.want {
			t.Fatalf("to %s: %+v, %v", st.want, got, err)
		}
		if a := lastAck(t, bus, "pos-1", in.ID); a != st.want.AckStatus() {
			t.Errorf("kiosk told %q after %s", a, st.want)
		}
		cmds := bus.smsCommands(t, "pos-1")
		if c := cmds[len(cmds)-1]; c.ID != "sms:"+tk.ID+":"+string(st.want) || c.To != head1 {
			t.Errorf("reporter's SMS after %s: %+v", st.want, c)
		}
		e := <-feed
		if e.Kind != hub.FeedTicketChanged || e.Ticket.Status != st.want || e.Event == nil || e.Event.To != st.want {
			t.Errorf("feed after %s: %+v", st.want, e)
		}
	}
	var dispatched string
	for _, c := range bus.smsCommands(t, "pos-1") {
		if strings.HasSuffix(c.ID, ":dispatched") {
			dispatched = c.Text
		}
	}
	if !strings.Contains(dispatched, "Damkar") {
		t.Errorf("dispatch SMS %q does not name the agency", dispatched)
	}
	// Refused changes change nothing and tell nobody.
	before := bus.count()
	if _, err := s.Acknowledge(ctx, tk.ID, "siti", ""); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("acknowledge a closed ticket: %v", err)
	}
	if _, err := s.Dispatch(ctx, tk.ID, "no-such-agency", "siti", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("dispatch to an unknown agency: %v", err)
	}
	if bus.count() != before {
		t.Errorf("a refused change was announced")
	}
}

func TestDispatchPicksTheUnit(t *testing.T) {
	s, bus, _ := domainSetup(t, ingest.Options{})
	ctx := context.Background()
	tk := waitTicket(t, s, press(t, bus, "pos-1", "").ID)
	if _, err := s.Acknowledge(ctx, tk.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dispatch(ctx, tk.ID, "", "siti", ""); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("dispatch a triage ticket without naming an agency: %v", err)
	}
	got, err := s.Dispatch(ctx, tk.ID, "polresta", "siti", "maling tertangkap warga")
	if err != nil || got.Agency != "polresta" || got.Unit != "polsek-cikupa" {
		t.Errorf("dispatch to polresta from Cikupa: %+v, %v", got, err)
	}
	if a := lastAck(t, bus, "pos-1", tk.IncidentID); a != mqtt.AckDispatched {
		t.Errorf("kiosk told %q", a)
	}
}

// TestMergeAndFalseAlarm: a duplicate is merged and its kiosk told; false alarms cancel open
// tickets, count against the kiosk, and flag it past the configured rate, raising an alert that
// clears when the rate falls.
func TestMergeAndFalseAlarm(t *testing.T) {
	var (
		mu       sync.Mutex
		notified []hub.Alert
	)
	s, bus, clock := domainSetup(t, ingest.Options{
		FalseAlarms: ingest.FalseAlarmPolicy{Window: 24 * time.Hour, MaxRate: 0.5, MinTickets: 3},
		Notify: func(a hub.Alert) {
			mu.Lock()
			defer mu.Unlock()
			notified = append(notified, a)
		},
	})
	ctx := context.Background()
	a := waitTicket(t, s, press(t, bus, "pos-2", "fire").ID)
	b := waitTicket(t, s, press(t, bus, "pos-2", "fire").ID)
	dup, err := s.MergeDuplicate(ctx, b.Number, a.Number, "siti", "kebakaran yang sama")
	if err != nil || dup.Status != hub.StatusDuplicate || dup.DuplicateOf != a.ID {
		t.Fatalf("merge: %+v, %v", dup, err)
	}
	if st := lastAck(t, bus, "pos-2", b.IncidentID); st != mqtt.AckDuplicate {
		t.Errorf("duplicate's kiosk told %q", st)
	}
	evs, _ := s.Events(ctx, a.ID)
	if last := evs[len(evs)-1]; last.Kind != hub.EventMerged || last.Detail != b.ID {
		t.Errorf("survivor's trail ends with %+v", last)
	}

	c := waitTicket(t, s, press(t, bus, "pos-2", "").ID)
	fa, err := s.MarkFalseAlarm(ctx, c.ID, "siti", "anak-anak")
	if err != nil || !fa.FalseAlarm || fa.Status != hub.StatusCancelled {
		t.Fatalf("false alarm: %+v, %v", fa, err)
	}
	if st := lastAck(t, bus, "pos-2", c.IncidentID); st != mqtt.AckCancelled {
		t.Errorf("false alarm's kiosk told %q", st)
	}
	// 1 of 3 tickets: under the rate.
	if d := device(t, s, "pos-2"); d.State.WindowTickets != 3 || d.State.WindowFalseAlarms != 1 || d.State.FalseAlarmFlagged {
		t.Errorf("pos-2 after one false alarm: %+v", d.State)
	}
	d := waitTicket(t, s, press(t, bus, "pos-2", "").ID)
	e := waitTicket(t, s, press(t, bus, "pos-2", "").ID)
	for _, tk := range []*hub.Ticket{d, e} {
		if _, err := s.MarkFalseAlarm(ctx, tk.ID, "siti", "iseng"); err != nil {
			t.Fatal(err)
		}
	}
	// 3 of 5: over half.
	st := device(t, s, "pos-2").State
	if !st.FalseAlarmFlagged || st.WindowFalseAlarms != 3 || st.WindowTickets != 5 {
		t.Errorf("pos-2 after three false alarms: %+v", st)
	}
	alerts := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertFalseAlarmRate})
	if len(alerts) != 1 || alerts[0].DeviceID != "pos-2" || !alerts[0].Active() {
		t.Fatalf("false-alarm alerts %+v", alerts)
	}
	mu.Lock()
	if len(notified) != 1 || notified[0].Kind != hub.AlertFalseAlarmRate {
		t.Errorf("supervisor notified of %+v", notified)
	}
	mu.Unlock()
	// A day later the window is empty and the flag goes.
	clock.Advance(25 * time.Hour)
	s.Scan(ctx)
	if st := device(t, s, "pos-2").State; st.FalseAlarmFlagged || st.WindowTickets != 0 {
		t.Errorf("pos-2 a day later: %+v", st)
	}
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertFalseAlarmRate, IncludeCleared: true}); len(al) != 1 || al[0].Active() {
		t.Errorf("false-alarm alert after the window: %+v", al)
	}
}

func device(t *testing.T, s *ingest.Service, id string) hub.DeviceStatus {
	t.Helper()
	for _, d := range s.Devices(context.Background()) {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no device %s", id)
	return hub.DeviceStatus{}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// TestDeadlineBreaches: the watcher marks a missed deadline once, raises an alert, notifies the
// supervisor, counts it; the alert clears when the ticket moves on.
func TestDeadlineBreaches(t *testing.T) {
	reg := prometheus.NewRegistry()
	var (
		mu       sync.Mutex
		notified []hub.Alert
	)
	s, bus, clock := domainSetup(t, ingest.Options{Registerer: reg, Notify: func(a hub.Alert) {
		mu.Lock()
		defer mu.Unlock()
		notified = append(notified, a)
	}})
	ctx := context.Background()
	feedCtx, stop := context.WithCancel(ctx)
	defer stop()
	tk := waitTicket(t, s, press(t, bus, "pos-1", "fire").ID)
	feed := s.Subscribe(feedCtx)

	clock.Advance(4 * time.Minute)
	s.Scan(ctx)
	if got, _ := s.Ticket(ctx, tk.ID); got.AckBreachedAt != nil {
		t.Fatalf("breach marked before the deadline")
	}
	clock.Advance(2 * time.Minute) // 6 minutes: past the five to acknowledge
	s.Scan(ctx)
	s.Scan(ctx) // twice: marked once
	got, _ := s.Ticket(ctx, tk.ID)
	if got.AckBreachedAt == nil || got.ResolveBreachedAt != nil {
		t.Errorf("after the ack deadline: %+v / %+v", got.AckBreachedAt, got.ResolveBreachedAt)
	}
	if n := counter(t, reg, "kentongan_hub_deadline_breaches_total", map[string]string{"kind": "ack"}); n != 1 {
		t.Errorf("breaches{ack} = %v, want 1", n)
	}
	al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertDeadlineBreach})
	if len(al) != 1 || al[0].TicketID != tk.ID || al[0].Breach != hub.BreachAck || al[0].Agency != "damkar" || !strings.Contains(al[0].Message, tk.Number) {
		t.Fatalf("breach alerts %+v", al)
	}
	breachNotes := func() []hub.Alert {
		mu.Lock()
		defer mu.Unlock()
		var out []hub.Alert
		for _, a := range notified {
			if a.Kind == hub.AlertDeadlineBreach {
				out = append(out, a)
			}
		}
		return out
	}
	if n := breachNotes(); len(n) != 1 || n[0].ID != al[0].ID {
		t.Errorf("notified %+v", n)
	}
	var raised bool
	for !raised {
		select {
		case e := <-feed:
			raised = e.Kind == hub.FeedAlertRaised && e.Alert.ID == al[0].ID
		case <-time.After(10 * time.Second):
			t.Fatal("no alert on the feed")
		}
	}

	if _, err := s.Acknowledge(ctx, tk.ID, "siti", "maaf terlambat"); err != nil {
		t.Fatal(err)
	}
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertDeadlineBreach}); len(al) != 0 {
		t.Errorf("alerts after the late ack: %+v", al)
	}

	// Past midnight WIB the same-day deadline is missed too.
	clock.Advance(14 * time.Hour)
	s.Scan(ctx)
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertDeadlineBreach}); len(al) != 1 || al[0].Breach != hub.BreachResolve {
		t.Errorf("alerts past the resolve deadline: %+v", al)
	}
	if n := breachNotes(); len(n) != 2 {
		t.Errorf("%d breach notifications, want 2", len(n))
	}
	if _, err := s.Resolve(ctx, tk.ID, "budi", ""); err != nil {
		t.Fatal(err)
	}
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertDeadlineBreach}); len(al) != 0 {
		t.Errorf("alerts after resolving: %+v", al)
	}
	if got, _ := s.Tickets(ctx, hub.TicketFilter{Breached: true}); len(got) != 1 {
		t.Errorf("the breach marks stay on the ticket: %d", len(got))
	}
}

// TestKioskSupervision: a kiosk unheard past its interval raises kiosk_offline, which clears when
// it is heard again; heartbeat health is kept, and the kiosks metric follows.
func TestKioskSupervision(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, bus, clock := domainSetup(t, ingest.Options{Registerer: reg, Supervision: 90 * time.Second})
	ctx := context.Background()
	hb := func(device string, seq uint64) {
		b, _ := mqtt.Encode(mqtt.Heartbeat{V: 1, DeviceID: device, Seq: seq, QueueDepth: 2,
			Modem: &mqtt.Modem{State: "ready", SignalDBm: -71, Operator: "Telkomsel"}})
		bus.deliver(mqtt.KindHeartbeat, device, b)
	}
	on, _ := mqtt.Encode(mqtt.Presence{V: 1, DeviceID: "pos-1", State: mqtt.Online})
	bus.deliver(mqtt.KindPresence, "pos-1", on)
	hb("pos-1", 1)
	hb("pos-2", 1)
	if st := device(t, s, "pos-1").State; st.Modem == nil || st.Modem.SignalDBm != -71 || st.LastHeard == nil || st.QueueDepth != 2 {
		t.Errorf("heartbeat health not kept: %+v", st)
	}
	if n := counter(t, reg, "kentongan_hub_kiosks", map[string]string{"state": "online"}); n != 2 {
		t.Errorf("kiosks online = %v", n)
	}

	clock.Advance(60 * time.Second)
	s.Scan(ctx)
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertKioskOffline}); len(al) != 0 {
		t.Fatalf("alert within the interval: %+v", al)
	}
	clock.Advance(31 * time.Second) // 91 s: pos-1 is late; pos-2 has five minutes
	s.Scan(ctx)
	al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertKioskOffline})
	if len(al) != 1 || al[0].DeviceID != "pos-1" || !device(t, s, "pos-1").State.Silent {
		t.Fatalf("offline alerts %+v", al)
	}
	if n := counter(t, reg, "kentongan_hub_kiosks", map[string]string{"state": "offline"}); n != 1 {
		t.Errorf("kiosks offline = %v", n)
	}
	clock.Advance(time.Second)
	hb("pos-1", 2)
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertKioskOffline}); len(al) != 0 || device(t, s, "pos-1").State.Silent {
		t.Errorf("after a heartbeat: %+v", al)
	}
	clock.Advance(5 * time.Minute)
	s.Scan(ctx)
	if al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertKioskOffline}); len(al) != 2 {
		t.Errorf("five minutes of silence: %+v, want both kiosks", al)
	}
	if al := s.Alerts(ctx, hub.AlertFilter{IncludeCleared: true, DeviceID: "pos-1"}); len(al) != 2 || al[1].Active() {
		t.Errorf("pos-1's alerts with history: %+v", al)
	}
}

// TestConfirmationByRTRWHeads: a panic press texts the post's heads through its kiosk without
// holding the ticket back; their YA/TIDAK is recorded and answered; a stranger's is not.
func TestConfirmationByRTRWHeads(t *testing.T) {
	s, bus, _ := domainSetup(t, ingest.Options{})
	ctx := context.Background()
	in := press(t, bus, "pos-1", "")
	tk := waitTicket(t, s, in.ID)
	if a := lastAck(t, bus, "pos-1", in.ID); a != mqtt.AckReceived {
		t.Errorf("the press was answered %q", a)
	}
	var asks []smsCmd
	eventually(t, "questions to both heads", func() bool {
		asks = asks[:0]
		for _, c := range bus.smsCommands(t, "pos-1") {
			if strings.HasPrefix(c.ID, "confirm:") {
				asks = append(asks, c)
			}
		}
		return len(asks) == 2
	})
	for _, c := range asks {
		if (c.To != head1 && c.To != head2) || !strings.Contains(c.Text, "YA "+tk.Number) || !strings.Contains(c.Text, "TIDAK "+tk.Number) ||
			c.ID != "confirm:"+tk.ID+":"+c.To {
			t.Errorf("question %+v", c)
		}
	}
	eventually(t, "confirmation pending", func() bool {
		got, _ := s.Ticket(ctx, tk.ID)
		return got.Confirmation.State == hub.ConfirmPending && got.Confirmation.Asked == 2
	})

	answer := func(from, req, target string) mqtt.Incident {
		r, b := smsIncident(t, "pos-1", from, "", func(x *mqtt.Incident) { x.Request, x.Target, x.Text = req, target, "" })
		bus.deliver(mqtt.KindIncident, "pos-1", b)
		return r
	}
	reply := func(r mqtt.Incident) smsCmd {
		for _, c := range bus.smsCommands(t, "pos-1") {
			if c.ID == "req:"+r.ID {
				return c
			}
		}
		t.Fatalf("no reply to %s", r.ID)
		return smsCmd{}
	}

	// A stranger's answer is not taken.
	r := answer("+6289999999999", mqtt.RequestDeny, tk.Number)
	if got, _ := s.Ticket(ctx, tk.ID); got.Confirmation.State != hub.ConfirmPending {
		t.Errorf("a stranger's TIDAK recorded: %+v", got.Confirmation)
	}
	if c := reply(r); !strings.Contains(c.Text, "RT/RW") {
		t.Errorf("reply to a stranger: %q", c.Text)
	}

	// "YA" without a number is about the press the head was asked about.
	r = answer(head1, mqtt.RequestConfirm, "")
	got, _ := s.Ticket(ctx, tk.ID)
	if got.Confirmation.State != hub.ConfirmYes || got.Confirmation.By != head1 || got.Status != hub.StatusNew {
		t.Errorf("after YA: %+v, status %s", got.Confirmation, got.Status)
	}
	if c := reply(r); !strings.Contains(c.Text, tk.Number) || c.To != head1 {
		t.Errorf("reply to YA: %+v", c)
	}
	if acks := bus.acks(t, "pos-1"); acks[len(acks)-1].IncidentID != r.ID || acks[len(acks)-1].TicketNumber != tk.Number {
		t.Errorf("answer's ack %+v", acks[len(acks)-1])
	}
	// The same SMS delivered again changes nothing.
	raw, _ := mqtt.Encode(r)
	evs, _ := s.Events(ctx, tk.ID)
	bus.deliver(mqtt.KindIncident, "pos-1", raw)
	if again, _ := s.Events(ctx, tk.ID); len(again) != len(evs) {
		t.Errorf("a repeated answer was recorded again")
	}
	answer(head2, mqtt.RequestDeny, tk.Number)
	if got, _ := s.Ticket(ctx, tk.ID); got.Confirmation.State != hub.ConfirmDisputed || got.Confirmation.Yes != 1 || got.Confirmation.No != 1 {
		t.Errorf("after YA and TIDAK: %+v", got.Confirmation)
	}
	// A number that is not this post's ticket is not found.
	r = answer(head1, mqtt.RequestConfirm, "112-999999")
	if c := reply(r); !strings.Contains(c.Text, "112-999999") {
		t.Errorf("reply about an unknown ticket: %q", c.Text)
	}
	// An SMS report is not asked about; a kiosk without heads asks nobody.
	sms, p := smsIncident(t, "pos-1", head1, "fire", nil)
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	if st := waitTicket(t, s, sms.ID); st.Confirmation.State != hub.ConfirmNone {
		t.Errorf("SMS report asked about: %+v", st.Confirmation)
	}
	other := waitTicket(t, s, press(t, bus, "pos-2", "").ID)
	if other.Confirmation.State != hub.ConfirmNone || len(bus.smsCommands(t, "pos-2")) != 0 {
		t.Errorf("press at a post without heads: %+v", other.Confirmation)
	}
}

func TestFeedDropsSlowSubscriber(t *testing.T) {
	s, bus, _ := domainSetup(t, ingest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := s.Subscribe(ctx)
	hb, _ := mqtt.Encode(mqtt.Heartbeat{V: 1, DeviceID: "pos-2"})
	for range 300 { // more than a subscriber's buffer
		bus.deliver(mqtt.KindHeartbeat, "pos-2", hb)
	}
	n := 0
	for range slow {
		n++
	}
	if n == 0 || n >= 300 {
		t.Errorf("slow subscriber got %d events before its channel closed", n)
	}
	// A subscriber that goes away is closed too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch := s.Subscribe(ctx2)
	cancel2()
	eventually(t, "closed channel", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
}

// TestDeadlinesInWIB: a non-emergency at 10:00 WIB (03:00 UTC, the clock's zone) is due to be
// acknowledged at 12:00 WIB.
func TestDeadlinesInWIB(t *testing.T) {
	s, bus, _ := domainSetup(t, ingest.Options{})
	in, p := smsIncident(t, "pos-1", head1, "road", func(in *mqtt.Incident) { in.Text = "LAPOR JALAN rusak" })
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	tk := waitTicket(t, s, in.ID)
	if tk.AckDue == nil || tk.AckDue.In(deadline.WIB).Hour() != 12 {
		t.Errorf("road report at 10:00 WIB: ack due %v", tk.AckDue)
	}
}

// TestBreachAlertAfterRestart: a hub started again on the same store shows the alerts of
// breaches marked before, without notifying the supervisor a second time.
func TestBreachAlertAfterRestart(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(friday10)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.Options{Clock: clock, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var notified atomic.Int32
	start := func() (*ingest.Service, *fakeBus) {
		bus := &fakeBus{}
		s, err := ingest.New(ingest.Options{Store: st, Bus: bus, Clock: clock, Logger: discard, ScanInterval: time.Hour,
			Devices: []hub.Device{{ID: "pos-1"}}, Notify: func(a hub.Alert) {
				if a.Kind == hub.AlertDeadlineBreach {
					notified.Add(1)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		return s, bus
	}
	s, bus := start()
	tk := waitTicket(t, s, press(t, bus, "pos-1", "").ID)
	clock.Advance(10 * time.Minute)
	s.Scan(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = start()
	defer s.Close()
	s.Scan(ctx)
	al := s.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertDeadlineBreach})
	if len(al) != 1 || al[0].TicketID != tk.ID || al[0].Breach != hub.BreachAck {
		t.Errorf("alerts after restart: %+v", al)
	}
	if n := notified.Load(); n != 1 {
		t.Errorf("supervisor notified %d times, want once", n)
	}
}
