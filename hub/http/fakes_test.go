package http_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	hubhttp "github.com/kentongan/kentongan/hub/http"
	"github.com/kentongan/kentongan/hub/sqlite"
)

// clock is a hub.Clock moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// call is one call of a changing TicketService method.
type call struct {
	Method, ID, By, Arg, Note string
}

// fakeHub is every service the API serves, in memory. Changes follow hub.CheckTransition, so
// that a refused request can be told from one that changed something.
type fakeHub struct {
	mu      sync.Mutex
	tickets []*hub.Ticket
	calls   []call
	filed   []hub.NewTicket
	reloads int
	reload  error
	retried []int64
}

func newFakeHub(now time.Time) *fakeHub {
	f := &fakeHub{}
	add := func(num int, agency, category string, prio hub.Priority, st hub.Status, text string) {
		f.tickets = append(f.tickets, &hub.Ticket{
			ID: fmt.Sprintf("t%d", num), Number: hub.FormatNumber(int64(num)), IncidentID: fmt.Sprintf("i%d", num),
			DeviceID: "ciakar-rw03", Source: "sms", Category: category, Priority: prio, Status: st, Text: text,
			Reporter: "+6281200000001", Agency: agency, CreatedAt: now.Add(time.Duration(num) * time.Minute),
			Site: hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "01", Lat: -6.2745, Lon: 106.5223},
		})
	}
	add(1, "damkar", "fire", hub.PriorityEmergency, hub.StatusDispatched, "rumah terbakar")
	add(2, "pln", "electricity", hub.PriorityNormal, hub.StatusNew, "listrik padam sejak pagi")
	add(3, hub.AgencyTriage, "", hub.PriorityEmergency, hub.StatusNew, "")
	add(4, "tkr", "water", hub.PriorityNormal, hub.StatusResolved, "air PDAM mati")
	due := now.Add(5 * time.Minute) // long past by the env's clock
	f.tickets[2].AckDue = &due
	return f
}

func (f *fakeHub) find(id string) (*hub.Ticket, error) {
	for _, t := range f.tickets {
		if t.ID == id || t.Number == id || t.IncidentID == id {
			return t, nil
		}
	}
	return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", id)
}

func (f *fakeHub) Ticket(_ context.Context, id string) (*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.find(id)
	if err != nil {
		return nil, err
	}
	c := *t
	return &c, nil
}

func (f *fakeHub) Tickets(_ context.Context, flt hub.TicketFilter) ([]*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*hub.Ticket{}
	for _, t := range slices.Backward(f.tickets) {
		if (flt.Status != "" && t.Status != flt.Status) || (flt.Agency != "" && t.Agency != flt.Agency) ||
			(flt.Priority != "" && t.Priority != flt.Priority) || (flt.Category != "" && t.Category != flt.Category) ||
			(flt.DeviceID != "" && t.DeviceID != flt.DeviceID) || (flt.Open && !t.Status.Open()) ||
			(!flt.Overdue.IsZero() && len(t.Overdue(flt.Overdue)) == 0) {
			continue
		}
		c := *t
		out = append(out, &c)
	}
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

func (f *fakeHub) Events(_ context.Context, id string) ([]hub.Event, error) {
	return []hub.Event{{ID: 1, TicketID: id, Actor: "device:ciakar-rw03", To: hub.StatusNew, Kind: hub.EventStatus}}, nil
}

func (f *fakeHub) change(method, id, by, arg, note string, to hub.Status, apply func(*hub.Ticket)) (*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.find(id)
	if err != nil {
		return nil, err
	}
	if t.ID != id {
		return nil, fmt.Errorf("fake: %s called with %q, not the ticket's ID", method, id)
	}
	if to != "" {
		if err := hub.CheckTransition(t.Status, to); err != nil {
			return nil, err
		}
		t.Status = to
	}
	if apply != nil {
		apply(t)
	}
	f.calls = append(f.calls, call{method, id, by, arg, note})
	c := *t
	return &c, nil
}

func (f *fakeHub) Acknowledge(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.change("ack", id, by, "", note, hub.StatusAcknowledged, func(t *hub.Ticket) { t.AcknowledgedBy = by })
}

func (f *fakeHub) Dispatch(_ context.Context, id, agency, by, note string) (*hub.Ticket, error) {
	return f.change("dispatch", id, by, agency, note, hub.StatusDispatched, func(t *hub.Ticket) {
		if agency != "" {
			t.Agency = agency
		}
	})
}

func (f *fakeHub) Resolve(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.change("resolve", id, by, "", note, hub.StatusResolved, nil)
}

func (f *fakeHub) CloseTicket(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.change("close", id, by, "", note, hub.StatusClosed, nil)
}

func (f *fakeHub) Cancel(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	return f.change("cancel", id, by, "", note, hub.StatusCancelled, nil)
}

func (f *fakeHub) MergeDuplicate(_ context.Context, id, into, by, note string) (*hub.Ticket, error) {
	return f.change("merge", id, by, into, note, hub.StatusDuplicate, func(t *hub.Ticket) { t.DuplicateOf = into })
}

func (f *fakeHub) MarkFalseAlarm(_ context.Context, id, by, reason string) (*hub.Ticket, error) {
	return f.change("false-alarm", id, by, "", reason, "", func(t *hub.Ticket) { t.FalseAlarm, t.FalseAlarmReason = true, reason })
}

func (f *fakeHub) Transition(_ context.Context, id string, to hub.Status, by, note string) (*hub.Ticket, error) {
	return f.change("transition", id, by, string(to), note, to, nil)
}

func (f *fakeHub) Devices(context.Context) []hub.DeviceStatus {
	return []hub.DeviceStatus{{Device: hub.Device{ID: "ciakar-rw03", Name: "Pos Ronda RW 03 Ciakar"},
		State: hub.DeviceState{Presence: hub.PresenceOnline}}}
}

func (f *fakeHub) Ping(_ context.Context, id string) (string, error) {
	if id != "ciakar-rw03" {
		return "", hub.Errorf(hub.CodeNotFound, "device %q is not registered", id)
	}
	return "c-1", nil
}

func (f *fakeHub) Stats(context.Context) hub.Stats { return hub.Stats{} }

func (f *fakeHub) Alerts(_ context.Context, flt hub.AlertFilter) []hub.Alert {
	return []hub.Alert{{ID: "kiosk_offline:x", Kind: hub.AlertKioskOffline, DeviceID: "x", Message: "kiosk x offline"}}
}

func (f *fakeHub) Agencies(context.Context) []hub.Agency {
	return []hub.Agency{{ID: "damkar", Name: "Dinas Pemadam Kebakaran"}, {ID: "pln", Name: "PLN UP3 Cikupa"}, {ID: "tkr", Name: "Perumdam TKR"}}
}

func (f *fakeHub) RoutingStatus(context.Context) hub.RoutingStatus {
	return hub.RoutingStatus{Path: "/etc/kentongan/routing.yaml", Checksum: "abc", Agencies: 3}
}

func (f *fakeHub) ReloadRouting(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return f.reload
}

func (f *fakeHub) Deliveries(context.Context, hub.DeliveryFilter) ([]hub.Delivery, error) {
	return []hub.Delivery{{ID: 7, Agency: "damkar", State: hub.DeliveryFailed}}, nil
}

func (f *fakeHub) RetryDelivery(_ context.Context, id int64) (*hub.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != 7 {
		return nil, hub.Errorf(hub.CodeNotFound, "delivery %d not found", id)
	}
	f.retried = append(f.retried, id)
	return &hub.Delivery{ID: 7, Agency: "damkar", State: hub.DeliveryPending}, nil
}

func (f *fakeHub) Categories(context.Context) []hubhttp.Category {
	return []hubhttp.Category{
		{Code: "fire", Agency: "damkar", Priority: hub.PriorityEmergency},
		{Code: "electricity", Agency: "pln", Priority: hub.PriorityNormal},
		{Code: "water", Agency: "tkr", Priority: hub.PriorityNormal},
	}
}

func (f *fakeHub) FileRequest(_ context.Context, nt hub.NewTicket) (*hub.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filed = append(f.filed, nt)
	n := len(f.tickets) + 1
	t := &hub.Ticket{ID: fmt.Sprintf("t%d", n), Number: hub.FormatNumber(int64(n)), IncidentID: nt.IncidentID,
		Source: nt.Source, Category: nt.Category, Priority: nt.Priority, Status: hub.StatusNew, Text: nt.Text,
		Reporter: nt.Reporter, Agency: nt.Agency, Site: nt.Site, CreatedAt: nt.OccurredAt}
	f.tickets = append(f.tickets, t)
	return t, nil
}

func (f *fakeHub) status(t *testing.T, id string) hub.Status {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	tk, err := f.find(id)
	if err != nil {
		t.Fatal(err)
	}
	return tk.Status
}

func (f *fakeHub) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeHub) lastCall() call {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return call{}
	}
	return f.calls[len(f.calls)-1]
}

// env is a running API over a fake hub and real accounts in SQLite.
type env struct {
	t     testing.TB
	hub   *fakeHub
	acc   *account.Service
	store *sqlite.Store
	clock *clock
	srv   *httptest.Server
	log   *logBuffer
}

// logBuffer collects the server's log, for tests of what is logged.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// users of every env; each one's password is name + "-sandi-rahasia".
var users = []account.NewUser{
	{Name: "admin", Role: account.RoleAdmin},
	{Name: "siti", Role: account.RoleOperator},
	{Name: "budi", Role: account.RoleSupervisor},
	{Name: "damkar1", Role: account.RoleAgency, Agency: "damkar"},
}

func password(name string) string { return name + "-sandi-rahasia" }

func newEnv(t testing.TB, ui http.Handler) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Clock: c, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &logBuffer{}
	acc, err := account.NewService(account.Options{Store: db.Accounts(), Clock: c, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		BcryptCost: bcrypt.MinCost, IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, nu := range users {
		nu.Password = password(nu.Name)
		if _, err := acc.CreateUser(context.Background(), account.Actor{CLI: "test"}, nu); err != nil {
			t.Fatal(err)
		}
	}
	fh := newFakeHub(c.Now().Add(-time.Hour))
	srv := hubhttp.NewServer(hubhttp.Options{
		Tickets: fh, Devices: fh, Stats: fh, Alerts: fh, Routing: fh, Webhooks: fh, Requests: fh,
		Accounts: acc, UI: ui, Clock: c, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{t: t, hub: fh, acc: acc, store: db, clock: c, srv: ts, log: logs}
}

// token makes an API token for a user and returns it.
func (e *env) token(name, scope string) string {
	e.t.Helper()
	_, raw, err := e.acc.CreateToken(context.Background(), account.Actor{CLI: "test"}, name, "test", scope, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// client is an HTTP client with its own cookie jar, as a browser would have.
type client struct {
	e    *env
	hc   *http.Client
	auth string // Authorization header
	csrf string // X-CSRF-Token header
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (e *env) as(name string) *client {
	c := e.client()
	c.auth = "Bearer " + e.token(name, "")
	return c
}

type answer struct {
	code   int
	body   string
	header http.Header
}

func (c *client) do(method, path, body string, hdr ...string) answer {
	c.e.t.Helper()
	req, err := http.NewRequest(method, c.e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
