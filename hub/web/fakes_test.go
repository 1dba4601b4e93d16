package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// fakeClock is a fixed hub clock.
type fakeClock struct{ t time.Time }

func (c fakeClock) Now() time.Time { return c.t }

// call is one action the fake service was asked to do.
type call struct {
	Action, Ticket, Arg, By, Note string
}

// fakeTickets is an in-memory hub.TicketService that records what it was asked.
type fakeTickets struct {
	mu      sync.Mutex
	tickets []*hub.Ticket
	events  map[string][]hub.Event
	calls   []call
	err     error // returned by every action when set
}

func (f *fakeTickets) find(id string) *hub.Ticket {
	for _, t := range f.tickets {
		if t.ID == id || t.Number == id {
			return t
		}
	}
	return nil
}

func (f *fakeTickets) Ticket(_ context.Context, id string) (*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.find(id); t != nil {
		c := *t
		return &c, nil
	}
	return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", id)
}

func (f *fakeTickets) Tickets(_ context.Context, flt hub.TicketFilter) ([]*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*hub.Ticket
	for _, t := range slices.Backward(f.tickets) {
		switch {
		case flt.Status != "" && t.Status != flt.Status,
			flt.Agency != "" && t.Agency != flt.Agency,
			flt.Priority != "" && t.Priority != flt.Priority,
			flt.Open && !t.Status.Open():
			continue
		}
		c := *t
		out = append(out, &c)
	}
	return out, nil
}

func (f *fakeTickets) Events(_ context.Context, id string) ([]hub.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events[id], nil
}

func (f *fakeTickets) act(action, id, arg, by, note string, to hub.Status) (*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{action, id, arg, by, note})
	if f.err != nil {
		return nil, f.err
	}
	t := f.find(id)
	if t == nil {
		return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", id)
	}
	if to != "" {
		if err := hub.CheckTransition(t.Status, to); err != nil {
			return nil, err
		}
		t.Status = to
	}
	c := *t
	return &c, nil
}

func (f *fakeTickets) Acknowledge(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.act("ack", id, "", by, note, hub.StatusAcknowledged)
}
func (f *fakeTickets) Dispatch(_ context.Context, id, agency, by, note string) (*hub.Ticket, error) {
	return f.act("dispatch", id, agency, by, note, hub.StatusDispatched)
}
func (f *fakeTickets) Resolve(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.act("resolve", id, "", by, note, hub.StatusResolved)
}
func (f *fakeTickets) CloseTicket(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.act("close", id, "", by, note, hub.StatusClosed)
}
func (f *fakeTickets) Cancel(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.act("cancel", id, "", by, note, hub.StatusCancelled)
}
func (f *fakeTickets) MergeDuplicate(_ context.Context, id, into, by, note string) (*hub.Ticket, error) {
	return f.act("merge", id, into, by, note, hub.StatusDuplicate)
}
func (f *fakeTickets) MarkFalseAlarm(_ context.Context, id, by, reason string) (*hub.Ticket, error) {
	return f.act("false-alarm", id, "", by, reason, "")
}
func (f *fakeTickets) Transition(_ context.Context, id string, to hub.Status, by, note string) (*hub.Ticket, error) {
	return f.act("transition", id, string(to), by, note, to)
}

func (f *fakeTickets) callsMade() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakeDevices is a fixed registry.
type fakeDevices struct {
	devices []hub.DeviceStatus
	pings   []string
	mu      sync.Mutex
}

func (f *fakeDevices) Devices(context.Context) []hub.DeviceStatus { return f.devices }
func (f *fakeDevices) Ping(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices {
		if d.ID == id {
			f.pings = append(f.pings, id)
			return "cmd-1", nil
		}
	}
	return "", hub.Errorf(hub.CodeNotFound, "device %q is not registered", id)
}

type fakeAlerts struct{ alerts []hub.Alert }

func (f *fakeAlerts) Alerts(_ context.Context, flt hub.AlertFilter) []hub.Alert {
	var out []hub.Alert
	for _, a := range f.alerts {
		if flt.Agency != "" && a.Agency != flt.Agency {
			continue
		}
		out = append(out, a)
	}
	return out
}

type fakeRouting struct{ agencies []hub.Agency }

func (f *fakeRouting) Agencies(context.Context) []hub.Agency { return f.agencies }
func (f *fakeRouting) RoutingStatus(context.Context) hub.RoutingStatus {
	return hub.RoutingStatus{Agencies: len(f.agencies)}
}
func (f *fakeRouting) ReloadRouting(context.Context) error { return nil }

// fakeFeed hands each subscriber its own channel; publish sends to all.
type fakeFeed struct {
	mu   sync.Mutex
	subs []chan hub.FeedEvent
}

func (f *fakeFeed) Subscribe(ctx context.Context) <-chan hub.FeedEvent {
	ch := make(chan hub.FeedEvent, 16)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if i := slices.Index(f.subs, ch); i >= 0 {
			f.subs = slices.Delete(f.subs, i, i+1)
			close(ch)
		}
	}()
	return ch
}

func (f *fakeFeed) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeFeed) publish(e hub.FeedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- e
	}
}

// fakeAuth signs requests in by the X-Test-User header, naming a user of users; the CSRF token
// is "tok-<name>" in the csrf_token form field.
type fakeAuth struct{ users map[string]*account.User }

func (a *fakeAuth) User(r *http.Request) *account.User { return a.users[r.Header.Get("X-Test-User")] }
func (a *fakeAuth) CSRF(r *http.Request) (string, string) {
	if u := a.User(r); u != nil {
		return "csrf_token", "tok-" + u.Name
	}
	return "csrf_token", ""
}
func (a *fakeAuth) CheckCSRF(r *http.Request) bool {
	u := a.User(r)
	return u != nil && r.PostFormValue("csrf_token") == "tok-"+u.Name
}
func (a *fakeAuth) LoginPath() string  { return "/login" }
func (a *fakeAuth) LogoutPath() string { return "/logout" }

func tp(t time.Time) *time.Time { return &t }

// fixture is a dashboard over fakes with three tickets, two kiosks and two agencies.
type fixture struct {
	h       *Handler
	tickets *fakeTickets
	devices *fakeDevices
	feed    *fakeFeed
	now     time.Time
}

func newFixture(tb interface {
	Helper()
	Fatalf(string, ...any)
}) *fixture {
	tb.Helper()
	now := time.Date(2025, 3, 14, 3, 0, 0, 0, time.UTC) // 10:00 WIB
	site := hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "01", Lat: -6.2745, Lon: 106.5223}
	mk := func(seq int, prio hub.Priority, st hub.Status, agency, cat string, created time.Time) *hub.Ticket {
		t := &hub.Ticket{
			ID: fmt.Sprintf("id-%d", seq), Number: hub.FormatNumber(int64(seq)), IncidentID: fmt.Sprintf("inc-%d", seq),
			DeviceID: "ciakar-rw03", Source: "button", Button: "darurat", Category: cat, Priority: prio, Status: st,
			OccurredAt: created, CreatedAt: created, Agency: agency, Site: site, UpdatedAt: created, Version: 1,
		}
		if prio == hub.PriorityEmergency {
			t.AckDue = tp(created.Add(5 * time.Minute))
			t.ResolveDue = tp(created.Add(8 * time.Hour))
		}
		return t
	}
	tk := &fakeTickets{events: map[string][]hub.Event{}}
	tk.tickets = []*hub.Ticket{
		mk(1, hub.PriorityNormal, hub.StatusNew, "pdam", "water", now.Add(-2*time.Hour)),
		mk(2, hub.PriorityEmergency, hub.StatusNew, "damkar", "fire", now.Add(-10*time.Minute)), // ack overdue
		mk(3, hub.PriorityEmergency, hub.StatusDispatched, "damkar", "fire", now.Add(-30*time.Minute)),
		mk(4, hub.PriorityEmergency, hub.StatusNew, hub.AgencyTriage, "panic", now.Add(-1*time.Minute)),
	}
	tk.tickets[0].Source, tk.tickets[0].Button, tk.tickets[0].Reporter = "sms", "", "+6281298760002"
	tk.tickets[0].Text = "PDAM mati sejak kemarin <b>RT 03</b>"
	tk.tickets[3].Confirmation = hub.Confirmation{State: hub.ConfirmYes, Asked: 2, Yes: 1, By: "+6281200000001", At: tp(now)}
	tk.events["id-2"] = []hub.Event{{ID: 1, TicketID: "id-2", At: now.Add(-10 * time.Minute), Actor: "device:ciakar-rw03", Kind: hub.EventStatus, To: hub.StatusNew}}
	dev := &fakeDevices{devices: []hub.DeviceStatus{
		{Device: hub.Device{ID: "ciakar-rw03", Name: "Pos Ronda RW 03 Ciakar", Site: site},
			State: hub.DeviceState{Presence: hub.PresenceOnline, LastHeartbeat: tp(now), QueueDepth: 0, LEDState: "received"}},
		{Device: hub.Device{ID: "kutabumi-rw07", Name: "Pos Kamling RW 07 Kutabumi",
			Site: hub.Site{Kecamatan: "Pasar Kemis", Kelurahan: "Kutabumi", RW: "07", Lat: -6.1698, Lon: 106.5571}},
			State: hub.DeviceState{Presence: hub.PresenceOffline, Silent: true, FalseAlarmFlagged: true, WindowTickets: 10, WindowFalseAlarms: 6}},
	}}
	feed := &fakeFeed{}
	auth := &fakeAuth{users: map[string]*account.User{
		"siti":   {Name: "siti", FullName: "Siti Operator", Role: account.RoleOperator},
		"damkar": {Name: "damkar", Role: account.RoleAgency, Agency: "damkar"},
		"pdam":   {Name: "pdam", Role: account.RoleAgency, Agency: "pdam"},
	}}
	h, err := New(Options{
		Tickets: tk, Devices: dev, Auth: auth, Feed: feed,
		Alerts: &fakeAlerts{alerts: []hub.Alert{
			{ID: "deadline_breach:ack:id-2", Kind: hub.AlertDeadlineBreach, TicketID: "id-2", TicketNumber: "112-000002", Agency: "damkar", Breach: hub.BreachAck, RaisedAt: now},
			{ID: "kiosk_offline:kutabumi-rw07", Kind: hub.AlertKioskOffline, DeviceID: "kutabumi-rw07", RaisedAt: now},
		}},
		Routing: &fakeRouting{agencies: []hub.Agency{
			{ID: "damkar", Name: "Dinas Pemadam Kebakaran dan Penyelamatan", Short: "Damkar"},
			{ID: "pdam", Name: "Perumdam Tirta Kerta Raharja", Short: "PDAM TKR"},
		}},
		TileURL: "http://127.0.0.1:1/{z}/{x}/{y}.png",
		Clock:   fakeClock{now}, KeepAlive: time.Hour,
		Logger: discardLogger(),
	})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return &fixture{h: h, tickets: tk, devices: dev, feed: feed, now: now}
}
