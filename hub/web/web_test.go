package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// do sends a request to the dashboard as user ("" for nobody), with form values for a POST.
func (f *fixture) do(t *testing.T, method, path, user string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		r.Header.Set("X-Test-User", user)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func (f *fixture) get(t *testing.T, path, user string, want int) string {
	t.Helper()
	w := f.do(t, http.MethodGet, path, user, nil)
	if w.Code != want {
		t.Fatalf("GET %s as %q: %d, want %d\n%s", path, user, w.Code, want, w.Body.String())
	}
	return w.Body.String()
}

func TestNewRequiresServicesAndAValidTileURL(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrMissingService) {
		t.Fatalf("New with nothing: %v, want ErrMissingService", err)
	}
	f := newFixture(t)
	for _, bad := range []string{"ftp://x/{z}/{x}/{y}", "https://tiles.example/{z}/{x}.png", "not a url", "//x/{z}/{x}/{y}"} {
		opts := f.h.opts
		opts.TileURL = bad
		if _, err := New(opts); !errors.Is(err, ErrTileURL) {
			t.Errorf("tile URL %q: %v, want ErrTileURL", bad, err)
		}
	}
	opts := f.h.opts
	opts.TileURL = "https://{s}.tile.example.org/{z}/{x}/{y}.png"
	h, err := New(opts)
	if err != nil {
		t.Fatalf("subdomain tile URL: %v", err)
	}
	if !strings.Contains(h.csp, "img-src 'self' data: https://*.tile.example.org;") {
		t.Errorf("CSP does not allow the tile host: %s", h.csp)
	}
}

func TestSignedOutBrowserIsSentToLogin(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, http.MethodGet, "/tickets/id-2?x=1", "", nil)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("GET ticket signed out: %d, want 303", w.Code)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	if loc.Path != "/login" || loc.Query().Get("next") != "/tickets/id-2?x=1" {
		t.Errorf("redirect to %s, want /login?next=/tickets/id-2?x=1", loc)
	}
	for _, p := range []string{"/queue/rows", "/events", "/map/data", "/tickets/id-2/live"} {
		if w := f.do(t, http.MethodGet, p, "", nil); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s signed out: %d, want 401 for the script", p, w.Code)
		}
	}
	body := f.get(t, "/login?next=/map&error=failed", "", http.StatusOK)
	for _, want := range []string{`action="/login"`, `name="name"`, `name="password"`, `value="/map"`, "Nama pengguna atau kata sandi salah."} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	// The next parameter must not lead off the site.
	if body := f.get(t, "/login?next=//evil.example/", "", http.StatusOK); !strings.Contains(body, `name="next" value="/"`) {
		t.Error("login page carries an off-site next")
	}
}

// rowOrder returns the ticket numbers of the queue's rows, in order.
func rowOrder(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`data-number="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestQueueShowsEmergenciesFirstByDeadline(t *testing.T) {
	f := newFixture(t)
	body := f.get(t, "/", "siti", http.StatusOK)
	got := strings.Join(rowOrder(body), " ")
	// 2 is past its ack deadline, 4 is due in 4 minutes, 3 has only its resolve deadline left,
	// 1 is not an emergency.
	if want := "112-000002 112-000004 112-000003 112-000001"; got != want {
		t.Errorf("queue order %s, want %s", got, want)
	}
	for _, want := range []string{
		`class="prio-emergency st-new breached"`, // 112-000002 is overdue
		`data-due="2025-03-14T02:55:00Z"`,        // its ack deadline, for the script's timer
		"-05:00",                                 // and the first paint of that timer
		"DARURAT", "Tanggapi", "Triase 112", "Damkar", "PDAM TKR",
		"dikonfirmasi RT/RW", "Pos Ronda RW 03 Ciakar", "RT 01/RW 03, Ciakar, Panongan",
		`<span class="badge" id="alert-count">2</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("queue page lacks %q", want)
		}
	}
	if h := f.do(t, http.MethodGet, "/", "siti", nil).Header().Get("Content-Security-Policy"); !strings.Contains(h, "script-src 'self'") {
		t.Errorf("no CSP on the page: %q", h)
	}
}

func TestQueueFiltersAndRefusesUnknownValues(t *testing.T) {
	f := newFixture(t)
	body := f.get(t, "/?priority=normal", "siti", http.StatusOK)
	if got := rowOrder(body); len(got) != 1 || got[0] != "112-000001" {
		t.Errorf("priority=normal shows %v", got)
	}
	body = f.get(t, "/queue/rows?agency=damkar", "siti", http.StatusOK)
	if got := strings.Join(rowOrder(body), " "); got != "112-000002 112-000003" {
		t.Errorf("rows for agency damkar: %s", got)
	}
	if !strings.Contains(body, `id="queue-counts"`) {
		t.Error("rows fragment lacks the counts")
	}
	for _, q := range []string{"status=open-ish", "priority=urgent", "view=some"} {
		f.get(t, "/?"+q, "siti", http.StatusBadRequest)
	}
}

func TestAgencyUserSeesOnlyTheirAgency(t *testing.T) {
	f := newFixture(t)
	body := f.get(t, "/", "pdam", http.StatusOK)
	if got := rowOrder(body); len(got) != 1 || got[0] != "112-000001" {
		t.Errorf("pdam's queue shows %v, want only 112-000001", got)
	}
	// An agency filter in the query cannot widen the view.
	if got := rowOrder(f.get(t, "/queue/rows?agency=damkar", "pdam", http.StatusOK)); len(got) != 1 || got[0] != "112-000001" {
		t.Errorf("pdam asking for damkar's rows got %v", got)
	}
	if !strings.Contains(body, "Tampilan instansi: PDAM TKR") {
		t.Error("no agency banner")
	}
	if strings.Contains(body, `href="/map"`) || strings.Contains(body, `href="/kiosks"`) {
		t.Error("agency view links to the map or kiosks")
	}
	f.get(t, "/tickets/id-2", "pdam", http.StatusForbidden)
	f.get(t, "/tickets/id-2/live", "pdam", http.StatusForbidden)
	f.get(t, "/kiosks", "pdam", http.StatusForbidden)
	f.get(t, "/map/data", "pdam", http.StatusForbidden)
	w := f.do(t, http.MethodPost, "/tickets/id-2/resolve", "pdam", url.Values{"csrf_token": {"tok-pdam"}})
	if w.Code != http.StatusForbidden {
		t.Errorf("pdam resolving damkar's ticket: %d, want 403", w.Code)
	}
	// An agency may resolve its own ticket but not handle it otherwise.
	body = f.get(t, "/tickets/id-3", "damkar", http.StatusOK)
	if !strings.Contains(body, `id="form-resolve"`) || strings.Contains(body, `id="form-cancel"`) {
		t.Error("damkar's ticket page should offer resolve and nothing an operator does")
	}
	if w := f.do(t, http.MethodPost, "/tickets/id-2/ack", "damkar", url.Values{"csrf_token": {"tok-damkar"}}); w.Code != http.StatusForbidden {
		t.Errorf("agency acknowledging: %d, want 403", w.Code)
	}
	if c := f.tickets.callsMade(); len(c) != 0 {
		t.Errorf("refused actions reached the service: %+v", c)
	}
}

func TestTicketPageShowsEverythingAboutIt(t *testing.T) {
	f := newFixture(t)
	raw := f.get(t, "/tickets/112-000001", "siti", http.StatusOK)
	if !strings.Contains(raw, "PDAM mati sejak kemarin &lt;b&gt;RT 03&lt;/b&gt;") {
		t.Error("the reporter's message is not escaped")
	}
	body := html.UnescapeString(raw)
	for _, want := range []string{
		"Tiket 112-000001", "+6281298760002",
		"Pos Ronda RW 03 Ciakar", "PDAM TKR", `id="form-ack"`, `id="form-merge"`, `id="form-false-alarm"`,
		`name="csrf_token" value="tok-siti"`, "14-03-2025 08:00:00 WIB",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("ticket page lacks %q", want)
		}
	}
	body = html.UnescapeString(f.get(t, "/tickets/id-4", "siti", http.StatusOK))
	if !strings.Contains(body, "YA — kejadian benar (+6281200000001") {
		t.Error("ticket page does not show the RT/RW confirmation")
	}
	f.get(t, "/tickets/nope", "siti", http.StatusNotFound)
}

func TestActionsCallTheServiceAsTheUser(t *testing.T) {
	f := newFixture(t)
	post := func(path string, form url.Values) *httptest.ResponseRecorder {
		form.Set("csrf_token", "tok-siti")
		return f.do(t, http.MethodPost, path, "siti", form)
	}
	w := post("/tickets/id-2/ack", url.Values{"note": {"Damkar diberangkatkan"}, "back": {"/?view=open"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/?view=open&ok=ack" {
		t.Fatalf("ack: %d to %q", w.Code, w.Header().Get("Location"))
	}
	if body := f.get(t, "/?ok=ack", "siti", http.StatusOK); !strings.Contains(body, "Tiket ditanggapi") {
		t.Error("no confirmation after the action")
	}
	post("/tickets/id-2/dispatch", url.Values{"agency": {"damkar"}})
	post("/tickets/id-1/merge", url.Values{"into": {"112-000002"}})
	post("/tickets/id-4/false-alarm", url.Values{"note": {"anak-anak bermain"}})
	want := []call{
		{"ack", "id-2", "", "siti", "Damkar diberangkatkan"},
		{"dispatch", "id-2", "damkar", "siti", ""},
		{"merge", "id-1", "id-2", "siti", ""},
		{"false-alarm", "id-4", "", "siti", "anak-anak bermain"},
	}
	got := f.tickets.callsMade()
	if len(got) != len(want) {
		t.Fatalf("calls %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A refused action shows the ticket again with the service's reason; nothing is redirected.
	w = post("/tickets/id-2/ack", url.Values{})
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "Tindakan gagal: a dispatched ticket cannot become acknowledged") {
		t.Errorf("second ack: %d\n%s", w.Code, w.Body.String())
	}
	// Missing fields are refused before the service is asked.
	n := len(f.tickets.callsMade())
	for _, c := range []struct{ path, want string }{
		{"/tickets/id-3/cancel", "Tulis alasannya."},
		{"/tickets/id-3/dispatch", "Pilih instansi."},
		{"/tickets/id-3/merge", "Tulis nomor tiket tujuan."},
	} {
		if w := post(c.path, url.Values{}); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("POST %s without its field: %d, lacks %q", c.path, w.Code, c.want)
		}
	}
	if w := post("/tickets/id-3/explode", url.Values{}); w.Code != http.StatusNotFound {
		t.Errorf("unknown action: %d, want 404", w.Code)
	}
	if w := post("/tickets/id-3/resolve", url.Values{"note": {strings.Repeat("x", hub.MaxNoteLen+1)}}); w.Code != http.StatusBadRequest {
		t.Errorf("over-long note: %d, want 400", w.Code)
	}
	if got := len(f.tickets.callsMade()); got != n {
		t.Errorf("refused forms reached the service: %+v", f.tickets.callsMade()[n:])
	}
}

func TestFormWithoutCSRFTokenChangesNothing(t *testing.T) {
	f := newFixture(t)
	for _, form := range []url.Values{{}, {"csrf_token": {"tok-someone-else"}}} {
		w := f.do(t, http.MethodPost, "/tickets/id-2/ack", "siti", form)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "Formulir kedaluwarsa") {
			t.Errorf("ack with %v: %d", form, w.Code)
		}
	}
	// The account middleware drops the user of such a form and leaves a forbidden error.
	r := httptest.NewRequest(http.MethodPost, "/tickets/id-2/ack", strings.NewReader(""))
	ctx := account.NewContext(r.Context(), nil, "")
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Errorf("form without a session: %d, want a redirect to log in", w.Code)
	}
	if c := f.tickets.callsMade(); len(c) != 0 {
		t.Errorf("forms without the token reached the service: %+v", c)
	}
}

func TestKiosksMapAndAlerts(t *testing.T) {
	f := newFixture(t)
	body := f.get(t, "/kiosks", "siti", http.StatusOK)
	for _, want := range []string{"2 kios: 1 daring, 1 luring", `class="presence-offline flagged"`, "6/10", "kios sering alarm palsu"} {
		if !strings.Contains(body, want) {
			t.Errorf("kiosks page lacks %q", want)
		}
	}
	w := f.do(t, http.MethodPost, "/kiosks/ciakar-rw03/ping", "siti", url.Values{"csrf_token": {"tok-siti"}})
	if w.Code != http.StatusSeeOther || len(f.devices.pings) != 1 {
		t.Errorf("ping: %d, pings %v", w.Code, f.devices.pings)
	}

	body = f.get(t, "/map", "siti", http.StatusOK)
	for _, want := range []string{`data-tiles="http://127.0.0.1:1/{z}/{x}/{y}.png"`, "/static/vendor/leaflet/leaflet.js?v=", "/static/map.js?v=", `"presence":"offline"`} {
		if !strings.Contains(body, want) {
			t.Errorf("map page lacks %q", want)
		}
	}
	var d mapData
	if err := json.Unmarshal([]byte(f.get(t, "/map/data", "siti", http.StatusOK)), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Kiosks) != 2 || len(d.Tickets) != 4 {
		t.Errorf("map data: %d kiosks, %d tickets; want 2 and 4", len(d.Kiosks), len(d.Tickets))
	}

	body = f.get(t, "/alerts", "siti", http.StatusOK)
	for _, want := range []string{"Tiket 112-000002 belum ditanggapi melewati tenggat.", "Kios Pos Kamling RW 07 Kutabumi tidak terdengar"} {
		if !strings.Contains(body, want) {
			t.Errorf("alerts page lacks %q", want)
		}
	}
}

func TestLanguageSwitch(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, http.MethodGet, "/lang?to=en&back=/kiosks", "siti", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/kiosks" {
		t.Fatalf("switch: %d to %q", w.Code, w.Header().Get("Location"))
	}
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Value != "en" {
		t.Fatalf("cookies %v", c)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Test-User", "siti")
	r.AddCookie(c[0])
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	if body := rec.Body.String(); !strings.Contains(body, "Ticket queue") || !strings.Contains(body, "EMERGENCY") || !strings.Contains(body, `<html lang="en">`) {
		t.Error("queue not in English after the switch")
	}
	for _, back := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		if w := f.do(t, http.MethodGet, "/lang?to=id&back="+url.QueryEscape(back), "", nil); w.Header().Get("Location") != "/" {
			t.Errorf("back=%s redirected to %q", back, w.Header().Get("Location"))
		}
	}
	if w := f.do(t, http.MethodGet, "/lang?to=fr", "", nil); w.Code != http.StatusBadRequest {
		t.Errorf("unknown language: %d", w.Code)
	}
}

// readEvent reads one server-sent event (its event and data lines), skipping comments.
func readEvent(t *testing.T, r *bufio.Reader) (string, string) {
	t.Helper()
	var ev, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev != "":
			return ev, data
		case strings.HasPrefix(line, "event: "):
			ev = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestEventStreamTellsOnlyWhatTheUserMaySee(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	open := func(user string) (*bufio.Reader, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		req.Header.Set("X-Test-User", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("events: %d %s", resp.StatusCode, ct)
		}
		return bufio.NewReader(resp.Body), func() { cancel(); resp.Body.Close() }
	}
	op, closeOp := open("siti")
	defer closeOp()
	ag, closeAg := open("pdam")
	defer closeAg()
	waitFor(t, "two subscribers", func() bool { return f.feed.subscribers() == 2 })

	damkar := &hub.Ticket{ID: "id-9", Number: "112-000009", Agency: "damkar", Priority: hub.PriorityEmergency, Status: hub.StatusNew}
	pdam := &hub.Ticket{ID: "id-8", Number: "112-000008", Agency: "pdam", Priority: hub.PriorityNormal, Status: hub.StatusNew}
	f.feed.publish(hub.FeedEvent{Kind: hub.FeedTicketCreated, Ticket: damkar})
	f.feed.publish(hub.FeedEvent{Kind: hub.FeedDeviceChanged, Device: &f.devices.devices[0]})
	f.feed.publish(hub.FeedEvent{Kind: hub.FeedTicketChanged, Ticket: pdam})

	for _, want := range []string{"ticket_created:112-000009", "device_changed:", "ticket_changed:112-000008"} {
		ev, data := readEvent(t, op)
		var s streamEvent
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		if got := ev + ":" + s.Number; got != want {
			t.Errorf("operator got %s, want %s", got, want)
		}
	}
	// The agency user's first event is their own ticket: damkar's and the kiosk's were held back.
	ev, data := readEvent(t, ag)
	if ev != "ticket_changed" || !strings.Contains(data, `"112-000008"`) {
		t.Errorf("pdam's first event: %s %s", ev, data)
	}
	closeOp()
	closeAg()
	waitFor(t, "subscriptions to end with their requests", func() bool { return f.feed.subscribers() == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStaticFilesAreEmbeddedWithCacheBusting(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"app.js", "app.css", "map.js", "vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css", "vendor/leaflet/images/marker-icon.png"} {
		v := f.h.version[name]
		if v == "" {
			t.Errorf("%s is not embedded", name)
			continue
		}
		w := f.do(t, http.MethodGet, "/static/"+name+"?v="+v, "", nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d, Cache-Control %q", name, w.Code, w.Header().Get("Cache-Control"))
		}
	}
	if w := f.do(t, http.MethodGet, "/static/app.js?v=old", "", nil); w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("stale version cached: %q", w.Header().Get("Cache-Control"))
	}
	f.get(t, "/static/nope.js", "", http.StatusNotFound)
	f.get(t, "/no/such/page", "siti", http.StatusNotFound)
}

// TestCatalogueIsComplete checks that every text key the templates and the code name exists,
// in both languages, and that the keys built from hub values cover every value the hub has.
func TestCatalogueIsComplete(t *testing.T) {
	keyRE := regexp.MustCompile(`\.T "([a-z0-9_.-]+)"|\bT\("([a-z0-9_.-]+)"|lang\.T\("([a-z0-9_.-]+)"|Has\("([a-z0-9_.-]+)`)
	check := func(src string, where string) {
		for _, m := range keyRE.FindAllStringSubmatch(src, -1) {
			key := m[1] + m[2] + m[3] + m[4]
			if strings.HasSuffix(key, ".") {
				continue // a prefix joined with a value at run time
			}
			if !Has(key) {
				t.Errorf("%s: key %q is not in the catalogue", where, key)
			}
		}
	}
	_ = fs.WalkDir(templateFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(templateFS, p)
			check(string(b), p)
		}
		return nil
	})
	var dynamic []string
	for _, s := range []hub.Status{hub.StatusNew, hub.StatusAcknowledged, hub.StatusDispatched, hub.StatusResolved, hub.StatusClosed, hub.StatusCancelled, hub.StatusDuplicate} {
		dynamic = append(dynamic, "status."+string(s))
	}
	for _, r := range account.Roles {
		dynamic = append(dynamic, "role."+r)
	}
	for _, k := range []hub.AlertKind{hub.AlertDeadlineBreach, hub.AlertKioskOffline, hub.AlertFalseAlarmRate, hub.AlertRoutingConfig} {
		dynamic = append(dynamic, "alert."+string(k))
	}
	dynamic = append(dynamic, "priority.emergency", "priority.normal", "presence.online", "presence.offline", "presence.unknown",
		"deadline.ack", "deadline.resolve", "source.button", "source.sms", "alertmsg.deadline_breach.ack", "alertmsg.deadline_breach.resolve",
		"alertmsg.kiosk_offline", "alertmsg.false_alarm_rate", "alertmsg.routing_config")
	for _, a := range []string{actAck, actDispatch, actResolve, actClose, actCancel, actMerge, actFalseAlarm, "ping"} {
		dynamic = append(dynamic, "action.done."+a)
	}
	for _, k := range dynamic {
		if !Has(k) {
			t.Errorf("key %q is not in the catalogue", k)
		}
	}
	for k, v := range messages {
		if v[0] == "" || v[1] == "" {
			t.Errorf("key %q lacks a language: %q", k, v)
		}
		if strings.Count(v[0], "%") != strings.Count(v[1], "%") {
			t.Errorf("key %q: the languages take different arguments: %q", k, v)
		}
	}
}

func TestCountdownMatchesTheScript(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{4*time.Minute + 5*time.Second, "04:05"},
		{-5 * time.Minute, "-05:00"},
		{2*time.Hour + 3*time.Minute + 4*time.Second + 900*time.Millisecond, "2:03:04"},
		{0, "00:00"},
	} {
		if got := countdown(c.d); got != c.want {
			t.Errorf("countdown(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// TestServerShutdownEndsEventStreams: a stream never goes idle, so a graceful shutdown would
// otherwise wait its whole timeout for every open dashboard.
func TestServerShutdownEndsEventStreams(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("X-Test-User", "siti")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the subscription", func() bool { return f.feed.subscribers() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
}
