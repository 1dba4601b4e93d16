package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	hubhttp "github.com/kentongan/kentongan/hub/http"
)

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{
		hub.CodeInvalid:      400,
		hub.CodeUnauthorized: 401,
		hub.CodeForbidden:    403,
		hub.CodeNotFound:     404,
		hub.CodeConflict:     409,
		hub.CodeTooMany:      429,
		hub.CodeUnavailable:  503,
		hub.CodeInternal:     500,
		"method_not_allowed": 405,
		"something new":      500,
	} {
		if got := hubhttp.ErrorStatus(code); got != want {
			t.Errorf("ErrorStatus(%q) = %d, want %d", code, got, want)
		}
	}
}

func errorCode(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error.Message == "" {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e.Error.Code
}

func errorMessage(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e.Error.Message
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("answer %d %q: %v", a.code, a.body, err)
	}
	return v
}

// Every endpoint but the public ones refuses a request without credentials.
func TestNothingWithoutLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client()
	for _, ep := range []string{
		"GET /api/v1/tickets", "GET /api/v1/tickets/t1", "POST /api/v1/tickets/t2/ack", "POST /api/v1/tickets/t2/dispatch",
		"POST /api/v1/tickets/t1/resolve", "POST /api/v1/tickets/t4/close", "POST /api/v1/tickets/t2/cancel",
		"POST /api/v1/tickets/t2/merge", "POST /api/v1/tickets/t2/false-alarm", "GET /api/v1/devices",
		"POST /api/v1/devices/ciakar-rw03/ping", "GET /api/v1/status", "GET /api/v1/alerts", "GET /api/v1/agencies",
		"GET /api/v1/routing", "POST /api/v1/routing/reload", "GET /api/v1/webhooks/deliveries",
		"POST /api/v1/webhooks/deliveries/7/retry", "GET /api/v1/me", "PUT /api/v1/me/password", "GET /api/v1/users",
		"POST /api/v1/users", "GET /api/v1/users/siti", "PATCH /api/v1/users/siti", "PUT /api/v1/users/siti/password",
		"GET /api/v1/tokens", "POST /api/v1/tokens", "DELETE /api/v1/tokens/x", "GET /api/v1/audit",
	} {
		method, path, _ := strings.Cut(ep, " ")
		a := c.do(method, path, "{}")
		if a.code != 401 || errorCode(t, a) != hub.CodeUnauthorized || a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without login: %d %s", ep, a.code, a.body)
		}
	}
	if e.hub.callCount() != 0 || e.hub.reloads != 0 {
		t.Errorf("something changed without login: %d calls, %d reloads", e.hub.callCount(), e.hub.reloads)
	}
	if a := c.do("GET", "/healthz", ""); a.code != 200 {
		t.Errorf("healthz: %d", a.code)
	}
}

// A hub wired without accounts is closed, not open.
func TestNoAccountsMeansClosed(t *testing.T) {
	t.Parallel()
	fh := newFakeHub(time.Now())
	srv := hubhttp.NewServer(hubhttp.Options{Tickets: fh, Devices: fh, Stats: fh})
	for _, ep := range []string{"GET /api/v1/tickets", "POST /api/v1/login", "GET /open311/v2/requests.json"} {
		method, path, _ := strings.Cut(ep, " ")
		req, _ := http.NewRequest(method, path, strings.NewReader(`{"name":"a","password":"b"}`))
		w := newRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code != 401 && w.Code != 503 {
			t.Errorf("%s without accounts: %d %s", ep, w.Code, w.Body)
		}
	}
}

func TestLoginSessionAndCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client()
	a := c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`)
	if a.code != 200 {
		t.Fatalf("login: %d %s", a.code, a.body)
	}
	s := decode[struct {
		User      account.User `json:"user"`
		Auth      string       `json:"auth"`
		CSRFToken string       `json:"csrf_token"`
	}](t, a)
	if s.User.Name != "siti" || s.Auth != "session" || s.CSRFToken == "" || strings.Contains(a.body, "password_hash") {
		t.Fatalf("login answer: %s", a.body)
	}
	if !strings.Contains(a.header.Get("Set-Cookie"), "HttpOnly") || !strings.Contains(a.header.Get("Set-Cookie"), "SameSite=Lax") {
		t.Errorf("cookie: %s", a.header.Get("Set-Cookie"))
	}
	if a := c.do("GET", "/api/v1/me", ""); a.code != 200 || !strings.Contains(a.body, s.CSRFToken) {
		t.Errorf("me: %d %s", a.code, a.body)
	}

	// A change without the CSRF token, or with a forged one, is refused and changes nothing.
	for _, tok := range []string{"", "forged", strings.Repeat("A", len(s.CSRFToken))} {
		c.csrf = tok
		if a := c.do("POST", "/api/v1/tickets/t2/ack", `{"note":"x"}`); a.code != 403 || errorCode(t, a) != hub.CodeForbidden ||
			!strings.Contains(a.body, "CSRF") {
			t.Errorf("ack with CSRF token %q: %d %s", tok, a.code, a.body)
		}
	}
	if e.hub.status(t, "t2") != hub.StatusNew || e.hub.callCount() != 0 {
		t.Fatal("a request without the CSRF token changed the ticket")
	}
	c.csrf = s.CSRFToken
	if a := c.do("POST", "/api/v1/tickets/112-000002/ack", `{"note":"tim menuju"}`, "Origin", "https://evil.example"); a.code != 403 {
		t.Errorf("cross-origin ack: %d %s", a.code, a.body)
	}
	a = c.do("POST", "/api/v1/tickets/112-000002/ack", `{"note":"tim menuju"}`)
	if a.code != 200 || e.hub.lastCall() != (call{"ack", "t2", "siti", "", "tim menuju"}) {
		t.Fatalf("ack with the CSRF token: %d %s; call %+v", a.code, a.body, e.hub.lastCall())
	}

	// The session idles out after an hour.
	e.clock.Add(61 * time.Minute)
	if a := c.do("GET", "/api/v1/me", ""); a.code != 401 || !strings.Contains(a.body, "expired") {
		t.Errorf("expired session: %d %s", a.code, a.body)
	}

	// Logout ends the session.
	a = c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`)
	c.csrf = decode[struct {
		CSRF string `json:"csrf_token"`
	}](t, a).CSRF
	if a := c.do("POST", "/api/v1/logout", ""); a.code != 204 {
		t.Fatalf("logout: %d %s", a.code, a.body)
	}
	if a := c.do("GET", "/api/v1/me", ""); a.code != 401 {
		t.Errorf("me after logout: %d", a.code)
	}
}

func TestLoginRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client()
	for i := range 5 {
		if a := c.do("POST", "/api/v1/login", `{"name":"siti","password":"salah-salah-salah"}`); a.code != 401 {
			t.Fatalf("wrong password %d: %d %s", i+1, a.code, a.body)
		}
	}
	a := c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`)
	if a.code != 429 || errorCode(t, a) != hub.CodeTooMany || a.header.Get("Retry-After") != "900" || a.header.Get("Set-Cookie") != "" {
		t.Fatalf("sixth login: %d %s, Retry-After %q", a.code, a.body, a.header.Get("Retry-After"))
	}
	if !strings.Contains(e.log.String(), "login failed") || !strings.Contains(e.log.String(), "too many failures") {
		t.Errorf("failures not logged:\n%s", e.log.String())
	}
	e.clock.Add(15 * time.Minute)
	if a := c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`); a.code != 200 {
		t.Errorf("login after the window: %d %s", a.code, a.body)
	}
	for _, body := range []string{`{"name":"siti"}`, `{"name":"siti","password":"x","remember":true}`, `nope`, ``} {
		if a := c.do("POST", "/api/v1/login", body); a.code != 400 {
			t.Errorf("login body %q: %d %s", body, a.code, a.body)
		}
	}
	if a := c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`, "Origin", "https://evil.example"); a.code != 403 {
		t.Errorf("cross-site login: %d", a.code)
	}
}

// An agency user sees and changes only their agency's tickets; a request for another's is
// refused with 403, logged and audited.
func TestAgencyScoping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.as("damkar1")
	list := decode[[]hub.Ticket](t, c.do("GET", "/api/v1/tickets", ""))
	if len(list) != 1 || list[0].ID != "t1" {
		t.Errorf("damkar's list: %+v", list)
	}
	if a := c.do("GET", "/api/v1/tickets?agency=damkar", ""); a.code != 200 {
		t.Errorf("own agency filter: %d", a.code)
	}
	if a := c.do("GET", "/api/v1/tickets?agency=pln", ""); a.code != 403 {
		t.Errorf("pln's list for damkar: %d %s", a.code, a.body)
	}
	for _, id := range []string{"t2", "112-000002", "t3"} {
		if a := c.do("GET", "/api/v1/tickets/"+id, ""); a.code != 403 || errorCode(t, a) != hub.CodeForbidden {
			t.Errorf("damkar reading %s: %d %s", id, a.code, a.body)
		}
	}
	if a := c.do("POST", "/api/v1/tickets/t4/resolve", `{"note":"x"}`); a.code != 403 {
		t.Errorf("damkar resolving tkr's ticket: %d %s", a.code, a.body)
	}
	if e.hub.callCount() != 0 {
		t.Fatalf("a forbidden request changed something: %+v", e.hub.lastCall())
	}
	if !strings.Contains(e.log.String(), "request forbidden") || !strings.Contains(e.log.String(), "user=damkar1") {
		t.Errorf("403 not logged:\n%s", e.log.String())
	}
	es, err := e.store.Accounts().Audit(context.Background(), account.AuditFilter{Action: account.ActionForbidden, Actor: "damkar1"})
	if err != nil || len(es) != 5 || !strings.Contains(es[0].Detail, "112-000004") {
		t.Errorf("403s audited: %+v %v", es, err)
	}

	// Their own ticket: readable, with its kiosk, and resolvable; but operator actions are not theirs.
	d := decode[struct {
		hub.Ticket
		Events []hub.Event       `json:"events"`
		Device *hub.DeviceStatus `json:"device"`
	}](t, c.do("GET", "/api/v1/tickets/112-000001", ""))
	if d.ID != "t1" || len(d.Events) != 1 || d.Device == nil || d.Device.ID != "ciakar-rw03" || d.Reporter == "" {
		t.Errorf("damkar's ticket detail: %+v", d)
	}
	if a := c.do("POST", "/api/v1/tickets/t1/cancel", ""); a.code != 403 {
		t.Errorf("damkar cancelling: %d", a.code)
	}
	if a := c.do("POST", "/api/v1/tickets/t1/resolve", `{"note":"api padam"}`); a.code != 200 || e.hub.lastCall().By != "damkar1" {
		t.Errorf("damkar resolving its ticket: %d %s", a.code, a.body)
	}
	for _, p := range []string{"/api/v1/devices", "/api/v1/alerts", "/api/v1/users", "/api/v1/audit"} {
		if a := c.do("GET", p, ""); a.code != 403 {
			t.Errorf("damkar GET %s: %d", p, a.code)
		}
	}
}

// Bad JSON, unknown fields and the like are refused with 400 and change nothing.
func TestBadBodiesChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.as("siti")
	for _, c2 := range []struct{ path, body, want string }{
		{"ack", `{"note":`, "not valid JSON"},
		{"ack", `{"nota":"x"}`, `unknown field "nota"`},
		{"ack", `{"note":1}`, "not valid JSON"},
		{"ack", `[]`, "not valid JSON"},
		{"ack", `{} {}`, "data after"},
		{"ack", `{"note":"` + strings.Repeat("x", 70<<10) + `"}`, "request body"},
		{"ack", `{"by":"budi"}`, "logged in as"},
		{"dispatch", `{"agency":"pln","unit":"x"}`, `unknown field "unit"`},
		{"resolve", `{"agency":"pln"}`, `unknown field "agency"`},
		{"merge", `{}`, "into is required"},
		{"merge", `{"into":"112-000001","reason":"x"}`, `unknown field "reason"`},
		{"false-alarm", `{"note":"x"}`, `unknown field "note"`},
		{"false-alarm", `{"reason":"  "}`, "reason is required"},
	} {
		a := c.do("POST", "/api/v1/tickets/t2/"+c2.path, c2.body)
		if a.code != 400 || errorCode(t, a) != hub.CodeInvalid || !strings.Contains(errorMessage(t, a), c2.want) {
			t.Errorf("%s %.40q: %d %s, want 400 with %q", c2.path, c2.body, a.code, a.body, c2.want)
		}
	}
	if e.hub.callCount() != 0 || e.hub.status(t, "t2") != hub.StatusNew {
		t.Fatalf("a bad request changed the ticket: %+v", e.hub.lastCall())
	}
	admin := e.as("admin")
	for _, c2 := range []struct{ method, path, body string }{
		{"POST", "/api/v1/users", `{"name":"eko","role":"operator","password":"panjang-sekali","admin":true}`},
		{"POST", "/api/v1/users", `{"name":"eko","role":"root","password":"panjang-sekali"}`},
		{"PATCH", "/api/v1/users/siti", `{"role":"admin","superuser":true}`},
		{"POST", "/api/v1/tokens", `{"name":"x","scopes":["api"]}`},
		{"POST", "/api/v1/routing/reload", `{"force":true}`},
	} {
		if a := admin.do(c2.method, c2.path, c2.body); a.code != 400 {
			t.Errorf("%s %s %s: %d %s", c2.method, c2.path, c2.body, a.code, a.body)
		}
	}
	if u, err := e.acc.User(context.Background(), "siti"); err != nil || u.Role != account.RoleOperator {
		t.Errorf("siti after refused changes: %+v %v", u, err)
	}
	if _, err := e.acc.User(context.Background(), "eko"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("eko was created by a refused request: %v", err)
	}
	if e.hub.reloads != 0 {
		t.Error("a refused reload request reloaded")
	}
}

func TestTicketActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.as("siti")
	for _, step := range []struct {
		path, body string
		want       call
		status     hub.Status
	}{
		{"/api/v1/tickets/112-000002/ack", ``, call{"ack", "t2", "siti", "", ""}, hub.StatusAcknowledged},
		{"/api/v1/tickets/t2/dispatch", `{"agency":"pln","note":"PLN UP3 Cikupa"}`, call{"dispatch", "t2", "siti", "pln", "PLN UP3 Cikupa"}, hub.StatusDispatched},
		{"/api/v1/tickets/t2/resolve", `{"by":"siti","note":"sudah menyala"}`, call{"resolve", "t2", "siti", "", "sudah menyala"}, hub.StatusResolved},
		{"/api/v1/tickets/t2/close", `{}`, call{"close", "t2", "siti", "", ""}, hub.StatusClosed},
		{"/api/v1/tickets/t3/merge", `{"into":"112-000001","note":"sama"}`, call{"merge", "t3", "siti", "t1", "sama"}, hub.StatusDuplicate},
		{"/api/v1/tickets/t1/false-alarm", `{"reason":"anak-anak bermain"}`, call{"false-alarm", "t1", "siti", "", "anak-anak bermain"}, hub.StatusDispatched},
		{"/api/v1/tickets/t1/cancel", `{"note":"iseng"}`, call{"cancel", "t1", "siti", "", "iseng"}, hub.StatusCancelled},
	} {
		a := c.do("POST", step.path, step.body)
		if a.code != 200 || e.hub.lastCall() != step.want {
			t.Fatalf("POST %s %s: %d %s; call %+v, want %+v", step.path, step.body, a.code, a.body, e.hub.lastCall(), step.want)
		}
		if got := decode[hub.Ticket](t, a); got.Status != step.status {
			t.Errorf("POST %s: status %s, want %s", step.path, got.Status, step.status)
		}
	}
	// A move the lifecycle forbids is a conflict.
	if a := c.do("POST", "/api/v1/tickets/t2/ack", ""); a.code != 409 || errorCode(t, a) != hub.CodeConflict {
		t.Errorf("ack of a closed ticket: %d %s", a.code, a.body)
	}
	if a := c.do("POST", "/api/v1/tickets/nope/ack", ""); a.code != 404 {
		t.Errorf("unknown ticket: %d", a.code)
	}
	if a := c.do("POST", "/api/v1/tickets/t4/merge", `{"into":"nope"}`); a.code != 404 {
		t.Errorf("merge into an unknown ticket: %d", a.code)
	}
}

func TestTicketList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.as("budi")
	for q, want := range map[string]string{
		"":                                "t4 t3 t2 t1",
		"?priority=emergency":             "t3 t1",
		"?open=true":                      "t3 t2 t1",
		"?open=1&agency=triage":           "t3",
		"?q=listrik":                      "t2",
		"?q=AIR+pdam":                     "t4",
		"?q=112-000001":                   "t1",
		"?q=ciakar&limit=2":               "t4 t3",
		"?status=resolved&category=water": "t4",
		"?overdue=true":                   "t3",
	} {
		var got []string
		for _, tk := range decode[[]hub.Ticket](t, c.do("GET", "/api/v1/tickets"+q, "")) {
			got = append(got, tk.ID)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("tickets%s: %v, want %s", q, got, want)
		}
	}
	for _, q := range []string{"?status=open", "?priority=high", "?open=ya", "?overdue=soon", "?limit=0", "?limit=5000", "?stat=new", "?q=" + strings.Repeat("x", 201)} {
		if a := c.do("GET", "/api/v1/tickets"+q, ""); a.code != 400 || errorCode(t, a) != hub.CodeInvalid {
			t.Errorf("tickets%.30s: %d %s", q, a.code, a.body)
		}
	}
}

func TestTokensOverTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client()
	a := c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`)
	c.csrf = decode[struct {
		CSRF string `json:"csrf_token"`
	}](t, a).CSRF
	a = c.do("POST", "/api/v1/tokens", `{"name":"kentonganctl di meja 2","expires_in_days":30}`)
	if a.code != 201 {
		t.Fatalf("create token: %d %s", a.code, a.body)
	}
	created := decode[struct {
		ID        string     `json:"id"`
		Token     string     `json:"token"`
		ExpiresAt *time.Time `json:"expires_at"`
	}](t, a)
	if !strings.HasPrefix(created.Token, account.TokenPrefix) || created.ExpiresAt == nil {
		t.Fatalf("created token: %s", a.body)
	}
	bearer := e.client()
	bearer.auth = "Bearer " + created.Token
	if a := bearer.do("GET", "/api/v1/me", ""); a.code != 200 || !strings.Contains(a.body, `"auth": "token"`) {
		t.Errorf("me with the token: %d %s", a.code, a.body)
	}
	// The token needs no CSRF token.
	if a := bearer.do("POST", "/api/v1/tickets/t2/ack", ""); a.code != 200 {
		t.Errorf("ack with the token: %d %s", a.code, a.body)
	}
	list := decode[[]account.Token](t, c.do("GET", "/api/v1/tokens", ""))
	if len(list) != 1 || list[0].ID != created.ID || strings.Contains(c.do("GET", "/api/v1/tokens", "").body, created.Token) {
		t.Errorf("token list: %+v", list)
	}
	if a := c.do("GET", "/api/v1/tokens?user=admin", ""); a.code != 403 {
		t.Errorf("siti listing admin's tokens: %d", a.code)
	}
	if a := c.do("DELETE", "/api/v1/tokens/"+created.ID, ""); a.code != 200 {
		t.Fatalf("revoke: %d %s", a.code, a.body)
	}
	if a := bearer.do("GET", "/api/v1/me", ""); a.code != 401 {
		t.Errorf("revoked token: %d", a.code)
	}

	// An Open311 token is good for Open311 only; it cannot even make itself a full token.
	o := e.client()
	o.auth = "Bearer " + e.token("siti", account.ScopeOpen311)
	for _, ep := range []string{"GET /api/v1/tickets", "GET /api/v1/me", "POST /api/v1/tokens"} {
		method, path, _ := strings.Cut(ep, " ")
		if a := o.do(method, path, `{"name":"x"}`); a.code != 403 {
			t.Errorf("open311 token on %s: %d %s", ep, a.code, a.body)
		}
	}
}

func TestUsersAndAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.as("admin")
	a := admin.do("POST", "/api/v1/users", `{"name":"pdam1","full_name":"Petugas PDAM","role":"agency","agency":"tkr","password":"air-bersih-2026"}`)
	if a.code != 201 || strings.Contains(a.body, "air-bersih") || strings.Contains(a.body, "hash") {
		t.Fatalf("create user: %d %s", a.code, a.body)
	}
	if a := admin.do("POST", "/api/v1/users", `{"name":"pdam1","role":"operator","password":"air-bersih-2026"}`); a.code != 409 {
		t.Errorf("duplicate user: %d", a.code)
	}
	if a := admin.do("PATCH", "/api/v1/users/pdam1", `{"disabled":true}`); a.code != 200 || !strings.Contains(a.body, `"disabled": true`) {
		t.Errorf("disable: %d %s", a.code, a.body)
	}
	if a := admin.do("PUT", "/api/v1/users/siti/password", `{"password":"baru-dan-panjang"}`); a.code != 204 {
		t.Errorf("set password: %d %s", a.code, a.body)
	}
	if a := e.as("siti").do("POST", "/api/v1/users", `{"name":"eve","role":"admin","password":"panjang-sekali"}`); a.code != 403 {
		t.Errorf("operator creating a user: %d", a.code)
	}
	if a := e.as("siti").do("PUT", "/api/v1/me/password", `{"current":"salah","password":"baru-lagi-panjang"}`); a.code != 403 {
		t.Errorf("own password with a wrong current one: %d", a.code)
	}
	if a := e.as("siti").do("PUT", "/api/v1/me/password", `{"current":"baru-dan-panjang","password":"baru-lagi-panjang"}`); a.code != 204 {
		t.Errorf("own password: %d %s", a.code, a.body)
	}
	users := decode[[]account.User](t, admin.do("GET", "/api/v1/users", ""))
	if len(users) != 5 {
		t.Errorf("users: %+v", users)
	}
	es := decode[[]account.AuditEntry](t, e.as("budi").do("GET", "/api/v1/audit?action=user_create", ""))
	if len(es) != 5 || es[0].Target != "pdam1" || es[0].Actor != "admin" || es[0].IP != "127.0.0.1" {
		t.Errorf("audit of user creation: %+v", es)
	}
	if a := e.as("budi").do("GET", "/api/v1/audit?since=yesterday", ""); a.code != 400 {
		t.Errorf("bad since: %d", a.code)
	}
}

func TestRoutingReloadIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if a := e.as("budi").do("POST", "/api/v1/routing/reload", ""); a.code != 403 {
		t.Errorf("supervisor reload: %d", a.code)
	}
	admin := e.as("admin")
	if a := admin.do("POST", "/api/v1/routing/reload", ""); a.code != 200 || !strings.Contains(a.body, `"checksum": "abc"`) {
		t.Errorf("reload: %d %s", a.code, a.body)
	}
	e.hub.mu.Lock()
	e.hub.reload = hub.Errorf(hub.CodeInvalid, "routing.yaml line 12: unknown agency \"damkr\"")
	e.hub.mu.Unlock()
	if a := admin.do("POST", "/api/v1/routing/reload", ""); a.code != 400 || !strings.Contains(a.body, "line 12") {
		t.Errorf("refused reload: %d %s", a.code, a.body)
	}
	es := decode[[]account.AuditEntry](t, admin.do("GET", "/api/v1/audit?action=config_reload", ""))
	if len(es) != 2 || !strings.Contains(es[0].Detail, "line 12") || !strings.Contains(es[1].Detail, "loaded") {
		t.Errorf("reloads audited: %+v", es)
	}
}

func TestOtherEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.as("budi")
	for _, ep := range []struct{ method, path, want string }{
		{"GET", "/api/v1/devices", `"id": "ciakar-rw03"`},
		{"GET", "/api/v1/alerts?include_cleared=true", `"kind": "kiosk_offline"`},
		{"GET", "/api/v1/agencies", `"id": "damkar"`},
		{"GET", "/api/v1/routing", `"agencies": 3`},
		{"GET", "/api/v1/webhooks/deliveries?failing=true", `"state": "failed"`},
		{"POST", "/api/v1/webhooks/deliveries/7/retry", `"state": "pending"`},
		{"GET", "/api/v1/status", `"incidents"`},
	} {
		if a := c.do(ep.method, ep.path, ""); a.code/100 != 2 || !strings.Contains(a.body, ep.want) {
			t.Errorf("%s %s: %d %s", ep.method, ep.path, a.code, a.body)
		}
	}
	if a := c.do("POST", "/api/v1/devices/ciakar-rw03/ping", ""); a.code != 202 || !strings.Contains(a.body, `"command_id": "c-1"`) {
		t.Errorf("ping: %d %s", a.code, a.body)
	}
	if a := c.do("POST", "/api/v1/devices/nowhere/ping", ""); a.code != 404 {
		t.Errorf("ping unknown: %d", a.code)
	}
	for _, p := range []string{"/api/v1/alerts?kind=fire", "/api/v1/webhooks/deliveries?state=lost"} {
		if a := c.do("GET", p, ""); a.code != 400 {
			t.Errorf("%s: %d", p, a.code)
		}
	}
	if a := c.do("POST", "/api/v1/webhooks/deliveries/x/retry", ""); a.code != 400 {
		t.Errorf("retry x: %d", a.code)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.as("siti")
	if a := c.do("GET", "/api/v1/nothing", ""); a.code != 404 || errorCode(t, a) != hub.CodeNotFound {
		t.Errorf("unknown endpoint: %d %s", a.code, a.body)
	}
	if a := c.do("DELETE", "/api/v1/tickets", ""); a.code != 405 || a.header.Get("Allow") != "GET" || errorCode(t, a) != "method_not_allowed" {
		t.Errorf("wrong method: %d %s, Allow %q", a.code, a.body, a.header.Get("Allow"))
	}
	if a := c.do("GET", "/api/v1/tickets/t1/ack", ""); a.code != 405 || a.header.Get("Allow") != "POST" {
		t.Errorf("GET on ack: %d, Allow %q", a.code, a.header.Get("Allow"))
	}
	if a := c.do("GET", "/api/v1/users/siti", ""); a.code != 403 {
		t.Errorf("operator reading a user: %d", a.code)
	}
	if a := c.do("GET", "/metrics", ""); a.code != 404 {
		t.Errorf("metrics without a handler: %d", a.code)
	}
}

// The dashboard is mounted behind the same authentication, with the login and logout forms.
func TestUIMount(t *testing.T) {
	t.Parallel()
	var seen *account.User
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = account.FromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	e := newEnv(t, ui)
	c := e.client()
	if a := c.do("GET", "/", ""); a.code != http.StatusTeapot || seen != nil {
		t.Fatalf("dashboard before login: %d %v", a.code, seen)
	}
	form := url.Values{"name": {"siti"}, "password": {password("siti")}, "next": {"/map"}}
	req, _ := http.NewRequest("POST", e.srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/map" {
		t.Fatalf("login form: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if a := c.do("GET", "/map", ""); a.code != http.StatusTeapot || seen == nil || seen.Name != "siti" {
		t.Errorf("dashboard after login: %d %+v", a.code, seen)
	}
	// The JSON API takes the same session.
	if a := c.do("GET", "/api/v1/me", ""); a.code != 200 {
		t.Errorf("API with the dashboard's session: %d", a.code)
	}
}
