package account_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// probe is a handler that reports what Middleware found.
type probe struct {
	user   *account.User
	method string
	err    error
	csrf   string
	calls  int
}

func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls++
	p.user = account.FromContext(r.Context())
	p.method = account.AuthMethod(r.Context())
	p.err = account.AuthError(r.Context())
	p.csrf = account.CSRFToken(r)
}

func request(method, target, body string, set func(*http.Request)) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "10.0.0.1:40000"
	if set != nil {
		set(r)
	}
	return r
}

func withCookie(tok string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: account.SessionCookie, Value: tok}) }
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	tok := f.login(t, "siti")
	csrf := account.CSRFFor(tok)
	_, apiTok, err := f.svc.CreateToken(context.Background(), account.Actor{User: f.user(t, "budi")}, "", "ctl", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	other := f.login(t, "budi")

	type want struct {
		user, method, code string
	}
	for _, c := range []struct {
		name string
		req  *http.Request
		want want
	}{
		{"anonymous", request("GET", "/api/v1/tickets", "", nil), want{}},
		{"session GET", request("GET", "/api/v1/tickets", "", withCookie(tok)), want{"siti", account.MethodSession, ""}},
		{"session POST without CSRF", request("POST", "/api/v1/tickets/x/ack", "{}", withCookie(tok)), want{"", "", hub.CodeForbidden}},
		{"session POST with CSRF header", request("POST", "/api/v1/tickets/x/ack", "{}", func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set(account.CSRFHeader, csrf)
		}), want{"siti", account.MethodSession, ""}},
		{"session POST with another session's CSRF", request("POST", "/x", "{}", func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set(account.CSRFHeader, account.CSRFFor(other))
		}), want{"", "", hub.CodeForbidden}},
		{"session DELETE with a forged CSRF", request("DELETE", "/x", "", func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set(account.CSRFHeader, strings.Repeat("A", len(csrf)))
		}), want{"", "", hub.CodeForbidden}},
		{"form POST with CSRF field", request("POST", "/tickets/x/ack", url.Values{account.CSRFField: {csrf}, "note": {"otw"}}.Encode(), func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}), want{"siti", account.MethodSession, ""}},
		{"JSON POST with the CSRF token in a form field it is not", request("POST", "/x", `{"csrf_token":"`+csrf+`"}`, func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set("Content-Type", "application/json")
		}), want{"", "", hub.CodeForbidden}},
		{"cross-origin POST with the right token", request("POST", "/x", "{}", func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set(account.CSRFHeader, csrf)
			r.Header.Set("Origin", "https://evil.example")
		}), want{"", "", hub.CodeForbidden}},
		{"same-origin POST", request("POST", "/x", "{}", func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set(account.CSRFHeader, csrf)
			r.Header.Set("Origin", "http://example.com")
		}), want{"siti", account.MethodSession, ""}},
		{"bearer POST needs no CSRF", request("POST", "/x", "{}", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+apiTok)
		}), want{"budi", account.MethodToken, ""}},
		{"bearer wins over cookie", request("GET", "/x", "", func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set("Authorization", "bearer "+apiTok)
		}), want{"budi", account.MethodToken, ""}},
		{"bad bearer", request("GET", "/x", "", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+apiTok[:20])
		}), want{"", "", hub.CodeUnauthorized}},
		{"basic auth", request("GET", "/x", "", func(r *http.Request) { r.SetBasicAuth("siti", password("siti")) }), want{"", "", hub.CodeUnauthorized}},
		{"stale cookie", request("GET", "/x", "", withCookie("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")), want{"", "", hub.CodeUnauthorized}},
	} {
		p := &probe{}
		f.svc.Middleware(p).ServeHTTP(httptest.NewRecorder(), c.req)
		var gotUser string
		if p.user != nil {
			gotUser = p.user.Name
		}
		if p.calls != 1 || gotUser != c.want.user || p.method != c.want.method || hub.ErrorCode(p.err) != c.want.code {
			t.Errorf("%s: user %q method %q err %v; want %+v", c.name, gotUser, p.method, p.err, c.want)
		}
		if c.want.method == account.MethodSession && p.csrf != csrf {
			t.Errorf("%s: CSRFToken %q, want %q", c.name, p.csrf, csrf)
		}
		if c.want.user == "" && p.csrf != "" {
			t.Errorf("%s: CSRF token without a user", c.name)
		}
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	ctx := context.Background()
	_, full, _ := f.svc.CreateToken(ctx, account.Actor{User: f.user(t, "siti")}, "", "full", account.ScopeAPI, 0)
	_, o311, _ := f.svc.CreateToken(ctx, account.Actor{User: f.user(t, "siti")}, "", "civic tool", account.ScopeOpen311, 0)
	_, agencyTok, _ := f.svc.CreateToken(ctx, account.Actor{User: f.user(t, "damkar1")}, "", "x", "", 0)
	for _, c := range []struct {
		token string
		perm  account.Permission
		code  string
	}{
		{"", account.PermViewTickets, hub.CodeUnauthorized},
		{full, account.PermViewTickets, ""},
		{full, account.PermHandleTickets, ""},
		{full, account.PermManageUsers, hub.CodeForbidden},
		{o311, account.PermFileRequests, ""},
		{o311, account.PermViewTickets, hub.CodeForbidden},
		{o311, account.PermHandleTickets, hub.CodeForbidden},
		{o311, "", hub.CodeForbidden}, // not even its own account: it could make itself a full token
		{full, "", ""},
		{agencyTok, account.PermResolveTickets, ""},
		{agencyTok, account.PermHandleTickets, hub.CodeForbidden},
		{agencyTok, account.PermViewDevices, hub.CodeForbidden},
	} {
		var got error
		f.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, got = f.svc.Require(r, c.perm)
		})).ServeHTTP(httptest.NewRecorder(), request("GET", "/x", "", func(r *http.Request) {
			if c.token != "" {
				r.Header.Set("Authorization", "Bearer "+c.token)
			}
		}))
		if hub.ErrorCode(got) != c.code {
			t.Errorf("token %.12s… for %s: %v, want %q", c.token, c.perm, got, c.code)
		}
	}
	if n := len(f.audit(t, account.ActionForbidden)); n != 6 {
		t.Errorf("%d refusals audited, want 6", n)
	}
}

func TestLoginForm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{Limits: account.Limits{PerUser: 2}})
	post := func(form url.Values, set func(*http.Request)) *http.Response {
		r := request("POST", account.LoginPath, form.Encode(), func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if set != nil {
				set(r)
			}
		})
		w := httptest.NewRecorder()
		f.svc.LoginHandler().ServeHTTP(w, r)
		return w.Result()
	}
	form := func(name, pw, next string) url.Values {
		return url.Values{account.FieldName: {name}, account.FieldPassword: {pw}, account.FieldNext: {next}}
	}

	resp := post(form("siti", password("siti"), "/tickets/112-000001"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tickets/112-000001" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == account.SessionCookie {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" || c.MaxAge != int((12*time.Hour).Seconds()) {
		t.Fatalf("session cookie: %+v", c)
	}
	if u, _, err := f.svc.SessionUser(context.Background(), c.Value); err != nil || u.Name != "siti" {
		t.Fatalf("cookie's session: %v", err)
	}
	// Over TLS the cookie is Secure.
	resp = post(form("budi", password("budi"), ""), func(r *http.Request) { r.TLS = &tlsState })
	if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookie over TLS: %+v", cs)
	}

	for _, c := range []struct {
		name   string
		form   url.Values
		set    func(*http.Request)
		target string
	}{
		{"open redirect", form("siti", password("siti"), "//evil.example/x"), nil, "/"},
		{"absolute next", form("siti", password("siti"), "https://evil.example/"), nil, "/"},
		{"wrong password", form("admin", "salah-salah-salah", "/map"), nil, "/login?error=failed&next=%2Fmap"},
		{"cross-site form", form("siti", password("siti"), ""), func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, "/login?error=origin"},
		{"empty", url.Values{}, nil, "/login?error=failed"},
	} {
		resp := post(c.form, c.set)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != c.target {
			t.Errorf("%s: %d to %q, want %q", c.name, resp.StatusCode, resp.Header.Get("Location"), c.target)
		}
	}
	// The limit is 2 here: admin has failed once above.
	post(form("admin", "salah-salah-salah", ""), nil)
	resp = post(form("admin", password("admin"), ""), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != account.LoginErrLimited || loc.Query().Get("retry") != "900" || resp.Header.Get("Retry-After") != "900" {
		t.Errorf("limited login: %d to %q, Retry-After %q", resp.StatusCode, loc, resp.Header.Get("Retry-After"))
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("limited login set a cookie")
	}
}

func TestLogoutForm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	tok := f.login(t, "siti")
	logout := func(csrf string) *http.Response {
		r := request("POST", account.LogoutPath, url.Values{account.CSRFField: {csrf}}.Encode(), func(r *http.Request) {
			withCookie(tok)(r)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		})
		w := httptest.NewRecorder()
		f.svc.Middleware(f.svc.LogoutHandler()).ServeHTTP(w, r)
		return w.Result()
	}
	// Another site's forged logout does nothing.
	if resp := logout("forged"); resp.Header.Get("Location") != account.LoginPath || len(resp.Cookies()) != 0 {
		t.Errorf("forged logout: %v %v", resp.Header, resp.Cookies())
	}
	if _, _, err := f.svc.SessionUser(context.Background(), tok); err != nil {
		t.Fatalf("session ended by a forged logout: %v", err)
	}
	resp := logout(account.CSRFFor(tok))
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("logout cookie: %+v", cs)
	}
	if _, _, err := f.svc.SessionUser(context.Background(), tok); hub.ErrorCode(err) != hub.CodeUnauthorized {
		t.Errorf("session after logout: %v", err)
	}
}

func TestBrowserKeepAlive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{IdleTimeout: 30 * time.Minute})
	tok := f.login(t, "siti")
	b := f.svc.Browser()
	// An event stream open for two hours, keeping alive every 20 minutes.
	f.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.User(r) == nil || !b.CheckCSRF(r) {
			t.Fatal("no user in the stream")
		}
		if field, csrf := b.CSRF(r); field != account.CSRFField || csrf != account.CSRFFor(tok) {
			t.Errorf("CSRF %q %q", field, csrf)
		}
		for range 6 {
			f.clock.Add(20 * time.Minute)
			b.KeepAlive(r)
		}
	})).ServeHTTP(httptest.NewRecorder(), request("GET", "/events", "", withCookie(tok)))
	if _, _, err := f.svc.SessionUser(context.Background(), tok); err != nil {
		t.Errorf("session kept alive by the stream: %v", err)
	}
}

func TestSafeRedirect(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                   "/",
		"/":                  "/",
		"/tickets/1?x=2":     "/tickets/1?x=2",
		"//evil.example":     "/",
		"/\\evil.example":    "/",
		"https://evil.ex/":   "/",
		"javascript:alert()": "/",
		"tickets":            "/",
	} {
		if got := account.SafeRedirect(in); got != want {
			t.Errorf("SafeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
}

var tlsState tls.ConnectionState
