package security

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/mqtt"
)

// Probes that residents control: they end up in SMS texts, reporters, notes and filters.
var (
	sqlProbes = []string{
		`'; DROP TABLE tickets; --`,
		`x' OR '1'='1`,
		`1); DELETE FROM tickets WHERE (1=1`,
		`" OR ""="`,
		`\'; ATTACH DATABASE '/tmp/pwn.db' AS pwn; --`,
	}
	xssProbes = []string{
		`<img src=x onerror=alert(1)>`,
		`"><script>alert(2)</script>`,
		`'><svg onload=alert(3)>`,
		`javascript:alert(4)`,
	}
)

// webTicket is what a test needs of a ticket: its IDs.
type webTicket struct{ id, number, incident string }

// smsTicket makes a ticket from an SMS report with text and reporter through a kiosk.
func smsTicket(t *testing.T, k *kiosk, text, reporter string) webTicket {
	t.Helper()
	in := newIncident(t, k.id, mqtt.SourceSMS, text, reporter)
	in.Button = ""
	if !k.publish(mqtt.Topic(k.id, mqtt.KindIncident), encode(t, in)) {
		t.Fatal("incident not acknowledged by the broker")
	}
	a := k.waitAck(t, in.ID, mqtt.AckReceived)
	return webTicket{id: a.TicketID, number: a.TicketNumber, incident: in.ID}
}

// apiRoutes are every endpoint of the API that needs a user, with a path that exists.
func apiRoutes(ticket, device string) [][2]string {
	r := [][2]string{
		{"GET", "/api/v1/me"}, {"PUT", "/api/v1/me/password"},
		{"GET", "/api/v1/users"}, {"POST", "/api/v1/users"}, {"GET", "/api/v1/users/sec-admin"},
		{"PATCH", "/api/v1/users/sec-admin"}, {"PUT", "/api/v1/users/sec-admin/password"},
		{"GET", "/api/v1/tokens"}, {"POST", "/api/v1/tokens"}, {"DELETE", "/api/v1/tokens/1"},
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/tickets"}, {"GET", "/api/v1/tickets/" + ticket},
		{"GET", "/api/v1/devices"}, {"GET", "/api/v1/devices/" + device}, {"POST", "/api/v1/devices/" + device + "/ping"},
		{"POST", "/api/v1/devices/" + device + "/revoke"}, {"POST", "/api/v1/devices/" + device + "/allow-reprovision"},
		{"GET", "/api/v1/enrollment-tokens"}, {"POST", "/api/v1/enrollment-tokens"}, {"DELETE", "/api/v1/enrollment-tokens/x"},
		{"GET", "/api/v1/status"}, {"GET", "/api/v1/alerts"}, {"GET", "/api/v1/agencies"},
		{"GET", "/api/v1/routing"}, {"POST", "/api/v1/routing/reload"},
		{"GET", "/api/v1/webhooks/deliveries"}, {"POST", "/api/v1/webhooks/deliveries/1/retry"},
	}
	for _, a := range []string{"ack", "dispatch", "resolve", "close", "cancel", "merge", "false-alarm"} {
		r = append(r, [2]string{"POST", "/api/v1/tickets/" + ticket + "/" + a})
	}
	return r
}

// TestAPIUnauthenticated: every API route without credentials, and with a forged token,
// answers 401 and is logged with the path and the caller's address; the dashboard sends an
// anonymous browser to its login page.
func TestAPIUnauthenticated(t *testing.T) {
	h := startHub(t, "pos-web")
	tk := smsTicket(t, h.plainKiosk("pos-web"), "Banjir di gang 3", "+6281212345678")
	for _, rt := range apiRoutes(tk.id, "pos-web") {
		for _, token := range []string{"", "ktg_forged0000000000000000000000"} {
			st, body := h.do(rt[0], rt[1], token, "", nil)
			if st == http.StatusNotFound || st == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d: the route list of this test is out of date", rt[0], rt[1], st)
				continue
			}
			if st != http.StatusUnauthorized {
				t.Errorf("%s %s (token %q): %d %s, want 401", rt[0], rt[1], token, st, body)
				continue
			}
			h.log.waitLog(t, "http request refused", map[string]string{"method": rt[0], "path": rt[1], "code": "unauthorized", "ip": "127.0.0.1"})
		}
	}
	h.log.waitLog(t, "API token refused", map[string]string{"ip": "127.0.0.1"})

	for _, p := range []string{"/", "/tickets/" + tk.id, "/map", "/kiosks", "/alerts", "/events", "/queue/rows"} {
		st, body := h.do("GET", p, "", "", nil)
		if st/100 != 3 && st != http.StatusUnauthorized {
			t.Errorf("dashboard %s without a login: %d, want a redirect to the login page or 401", p, st)
		}
		if strings.Contains(string(body), "Banjir di gang 3") {
			t.Errorf("dashboard %s shows a ticket without a login", p)
		}
	}
	// Open311 needs an API key for filing requests and for reading them.
	if st, _ := h.do("POST", "/open311/v2/requests.json", "", "service_code=fire&description=x&lat=-6.2&long=106.5", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); st != 401 && st != 403 && st != 400 {
		t.Errorf("Open311 POST without an api_key: %d", st)
	}
}

// TestRoleEscalation: an agency user cannot do what operators do, an operator cannot do what
// administrators do; each refusal is 403, logged and in the audit log.
func TestRoleEscalation(t *testing.T) {
	h := startHub(t, "pos-web")
	tk := smsTicket(t, h.plainKiosk("pos-web"), "Kebakaran gudang", "+6281212345678")
	agency := h.token("sec-damkar", account.RoleAgency, "damkar")
	operator := h.token("sec-operator", account.RoleOperator, "")

	probes := []struct {
		who, token, method, path, body string
	}{
		{"agency", agency, "POST", "/api/v1/tickets/" + tk.id + "/ack", `{"note":"x"}`},
		{"agency", agency, "POST", "/api/v1/tickets/" + tk.id + "/dispatch", `{"agency":"damkar"}`},
		{"agency", agency, "POST", "/api/v1/tickets/" + tk.id + "/close", `{"note":"x"}`},
		{"agency", agency, "POST", "/api/v1/tickets/" + tk.id + "/cancel", `{"note":"x"}`},
		{"agency", agency, "GET", "/api/v1/tickets?agency=polresta", ""},
		{"agency", agency, "GET", "/api/v1/audit", ""},
		{"agency", agency, "GET", "/api/v1/users", ""},
		{"agency", agency, "POST", "/api/v1/routing/reload", ""},
		{"operator", operator, "GET", "/api/v1/users", ""},
		{"operator", operator, "POST", "/api/v1/users", `{"name":"mallory","role":"admin","password":"correct horse battery staple"}`},
		{"operator", operator, "PATCH", "/api/v1/users/sec-operator", `{"role":"admin"}`},
		{"operator", operator, "PUT", "/api/v1/users/sec-admin/password", `{"password":"correct horse battery staple"}`},
		{"operator", operator, "POST", "/api/v1/routing/reload", ""},
		{"operator", operator, "POST", "/api/v1/enrollment-tokens", `{"site":"Panongan/Ciakar/03/01"}`},
		{"operator", operator, "POST", "/api/v1/devices/pos-web/revoke", `{"reason":"x"}`},
	}
	for _, p := range probes {
		st, body := h.do(p.method, p.path, p.token, p.body, nil)
		if st != http.StatusForbidden {
			t.Errorf("%s: %s %s: %d %s, want 403", p.who, p.method, p.path, st, body)
			continue
		}
		path, _, _ := strings.Cut(p.path, "?")
		h.log.waitLog(t, "http request refused", map[string]string{"method": p.method, "path": path, "code": "forbidden",
			"user": "sec-" + map[string]string{"agency": "damkar", "operator": "operator"}[p.who]})
	}
	h.log.waitLog(t, "request forbidden", map[string]string{"user": "sec-damkar"})
	var audit []map[string]any
	h.doJSON("GET", "/api/v1/audit?limit=500", "", &audit)
	n := 0
	for _, e := range audit {
		if e["action"] == account.ActionForbidden {
			n++
		}
	}
	if n < len(probes) {
		t.Errorf("%d refusals in the audit log, want %d", n, len(probes))
	}
	// Nothing happened: the ticket is still new, the operator is still an operator.
	var got map[string]any
	h.doJSON("GET", "/api/v1/tickets/"+tk.id, "", &got)
	if got["status"] != "new" {
		t.Errorf("ticket status %v after refused actions, want new", got["status"])
	}
	var u map[string]any
	h.doJSON("GET", "/api/v1/users/sec-operator", "", &u)
	if u["role"] != account.RoleOperator {
		t.Errorf("operator's role is %v after a refused escalation", u["role"])
	}
}

// browser is an HTTP client with a cookie jar, as a browser holds a session.
type browser struct {
	t    *testing.T
	h    *hubUnderTest
	c    *http.Client
	csrf string
}

func (h *hubUnderTest) createUser(name, role, agency, password string) {
	h.t.Helper()
	h.doJSON("POST", "/api/v1/users", fmt.Sprintf(`{"name":%q,"role":%q,"agency":%q,"password":%q}`, name, role, agency, password), nil)
}

// login logs in through the JSON API with a cookie jar, optionally starting with a session
// cookie planted by an attacker.
func (h *hubUnderTest) login(name, password, planted string) (*browser, string) {
	h.t.Helper()
	jar := newJar()
	u, _ := url.Parse(h.base)
	if planted != "" {
		jar.SetCookies(u, []*http.Cookie{{Name: account.SessionCookie, Value: planted, Path: "/"}})
	}
	b := &browser{t: h.t, h: h, c: &http.Client{Jar: jar, Timeout: wait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	req, _ := http.NewRequest("POST", h.base+"/api/v1/login", strings.NewReader(fmt.Sprintf(`{"name":%q,"password":%q}`, name, password)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", h.base)
	resp, err := b.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, &s) != nil {
		h.t.Fatalf("login %s: %d %s", name, resp.StatusCode, raw)
	}
	b.csrf = s.CSRF
	session := ""
	for _, c := range resp.Cookies() {
		if c.Name == account.SessionCookie {
			session = c.Value
		}
	}
	return b, session
}

func (b *browser) do(method, path, body string, hdr map[string]string) (int, string) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, b.h.base+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestCSRF: a state-changing request carrying a valid session cookie but posted from another
// origin, or without the session's CSRF token, is refused and logged; the same request from
// the dashboard's own page goes through.
func TestCSRF(t *testing.T) {
	h := startHub(t, "pos-web")
	k := h.plainKiosk("pos-web")
	h.createUser("sec-op", account.RoleOperator, "", "kata sandi yang panjang sekali")
	b, _ := h.login("sec-op", "kata sandi yang panjang sekali", "")
	tk := smsTicket(t, k, "Pohon tumbang", "+6281212345678")
	evil := "http://evil.example"
	for _, c := range []struct {
		name string
		hdr  map[string]string
	}{
		{"cross-origin with the token", map[string]string{"Origin": evil, account.CSRFHeader: b.csrf}},
		{"cross-origin by Referer", map[string]string{"Referer": evil + "/page", account.CSRFHeader: b.csrf}},
		{"Origin null", map[string]string{"Origin": "null", account.CSRFHeader: b.csrf}},
		{"same origin without the token", map[string]string{"Origin": h.base}},
		{"same origin with a wrong token", map[string]string{"Origin": h.base, account.CSRFHeader: "AAAA" + b.csrf}},
	} {
		st, body := b.do("POST", "/api/v1/tickets/"+tk.id+"/ack", `{"note":"csrf"}`, c.hdr)
		if st != http.StatusForbidden && st != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 403", c.name, st, body)
		}
	}
	h.log.waitLog(t, "CSRF check failed", map[string]string{"user": "sec-op", "path": "/api/v1/tickets/" + tk.id + "/ack"})
	h.log.waitLog(t, "http request refused", map[string]string{"path": "/api/v1/tickets/" + tk.id + "/ack", "code": "forbidden"})

	// The dashboard's own form, posted from another site.
	form := url.Values{"note": {"csrf"}, "csrf_token": {b.csrf}}.Encode()
	st, _ := b.do("POST", "/tickets/"+tk.id+"/ack", form, map[string]string{"Origin": evil, "Content-Type": "application/x-www-form-urlencoded"})
	if st/100 == 2 {
		t.Errorf("dashboard form posted from another site: %d", st)
	}
	var got map[string]any
	h.doJSON("GET", "/api/v1/tickets/"+tk.id, "", &got)
	if got["status"] != "new" {
		t.Fatalf("ticket %v after cross-site requests, want new", got["status"])
	}
	// The control: the same request from the dashboard's origin with its token works.
	if st, body := b.do("POST", "/api/v1/tickets/"+tk.id+"/ack", `{"note":"ok"}`, map[string]string{"Origin": h.base, account.CSRFHeader: b.csrf}); st != 200 {
		t.Errorf("same-origin request with the token: %d %s", st, body)
	}
}

// TestSessionFixation: a session ID planted before login is not the one after it, and is
// worth nothing; each login issues a fresh session.
func TestSessionFixation(t *testing.T) {
	h := startHub(t)
	h.createUser("sec-op", account.RoleOperator, "", "kata sandi yang panjang sekali")
	planted := "attacker-chosen-session-0000000000"
	b, session := h.login("sec-op", "kata sandi yang panjang sekali", planted)
	if session == "" || session == planted {
		t.Fatalf("login kept the planted session %q (got %q)", planted, session)
	}
	if st, _ := b.do("GET", "/api/v1/me", "", nil); st != 200 {
		t.Fatalf("the fresh session does not work: %d", st)
	}
	// The attacker's browser, holding only the planted ID, is not logged in.
	jar := newJar()
	u, _ := url.Parse(h.base)
	jar.SetCookies(u, []*http.Cookie{{Name: account.SessionCookie, Value: planted, Path: "/"}})
	atk := &browser{t: t, h: h, c: &http.Client{Jar: jar, Timeout: wait}}
	if st, _ := atk.do("GET", "/api/v1/me", "", nil); st != http.StatusUnauthorized {
		t.Errorf("the planted session ID is logged in: %d", st)
	}
	_, again := h.login("sec-op", "kata sandi yang panjang sekali", session)
	if again == "" || again == session {
		t.Errorf("a second login reused the session %q", session)
	}
	// The browser form login too.
	jar2 := newJar()
	jar2.SetCookies(u, []*http.Cookie{{Name: account.SessionCookie, Value: planted, Path: "/"}})
	c := &http.Client{Jar: jar2, Timeout: wait, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", h.base+account.LoginPath, strings.NewReader(url.Values{"name": {"sec-op"}, "password": {"kata sandi yang panjang sekali"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fresh := ""
	for _, ck := range resp.Cookies() {
		if ck.Name == account.SessionCookie {
			fresh = ck.Value
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode && ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie HttpOnly=%v SameSite=%v", ck.HttpOnly, ck.SameSite)
			}
		}
	}
	if fresh == "" || fresh == planted {
		t.Errorf("form login: cookie %q, want a fresh session", fresh)
	}
}

// TestInjection: SQL and markup probes in every text a resident can influence (SMS text and
// sender, ticket notes, list filters and search, Open311 fields, device fields) are stored
// and answered literally, and the database is intact after them.
func TestInjection(t *testing.T) {
	h := startHub(t, "pos-web")
	k := h.plainKiosk("pos-web")
	probes := append(append([]string(nil), sqlProbes...), xssProbes...)
	var made []webTicket
	for i, p := range probes {
		made = append(made, smsTicket(t, k, "LAPOR "+p, fmt.Sprintf("+62812%07d", i)))
	}
	// The sender too: a kiosk passes on whatever number the modem reports.
	made = append(made, smsTicket(t, k, "LAPOR banjir", sqlProbes[1]))
	for i, tk := range made {
		var got map[string]any
		h.doJSON("GET", "/api/v1/tickets/"+tk.id, "", &got)
		if i < len(probes) && !strings.Contains(fmt.Sprint(got["text"]), probes[i]) {
			t.Errorf("ticket %s text %q, want it to hold %q literally", tk.number, got["text"], probes[i])
		}
		if i == len(probes) && fmt.Sprint(got["reporter"]) != sqlProbes[1] {
			t.Errorf("reporter stored as %q, want %q", got["reporter"], sqlProbes[1])
		}
	}
	// Notes, written by an operator who pasted what the caller said.
	for i, p := range probes {
		body := `{"note":` + jsonQuote(p) + `}`
		if st, raw := h.do("POST", "/api/v1/tickets/"+made[i].id+"/ack", h.admin, body, nil); st/100 != 2 {
			t.Errorf("note %q: %d %s", p, st, raw)
			continue
		}
		var got map[string]any
		h.doJSON("GET", "/api/v1/tickets/"+made[i].id, "", &got)
		if !strings.Contains(fmt.Sprint(got), p) {
			t.Errorf("note %q not stored literally: %v", p, got)
		}
	}
	// Filters and search: refused or matched literally, never widened.
	for _, p := range probes {
		for _, key := range []string{"q", "device_id", "agency", "category", "source", "status", "priority"} {
			st, body := h.do("GET", "/api/v1/tickets?"+url.Values{key: {p}}.Encode(), h.admin, "", nil)
			switch {
			case st == http.StatusBadRequest:
			case st == http.StatusOK:
				var list []map[string]any
				if err := json.Unmarshal(body, &list); err != nil {
					t.Fatalf("filter %s=%q: %v", key, p, err)
				}
				if key != "q" && len(list) != 0 {
					t.Errorf("filter %s=%q matched %d tickets: the filter was widened", key, p, len(list))
				}
				for _, tk := range list {
					if !strings.Contains(fmt.Sprint(tk), p) {
						t.Errorf("search %q matched ticket %v, which does not contain it", p, tk["number"])
					}
				}
			default:
				t.Errorf("filter %s=%q: %d %s", key, p, st, body)
			}
		}
	}
	// Device fields: what a kiosk reports of its hardware when it enrolls, and the site an
	// administrator typed into the enrollment token.
	dev := h.enroll("Panongan/Ciakar'; DROP TABLE devices; --/03/01", sqlProbes[0])
	var fd map[string]any
	h.doJSON("GET", "/api/v1/devices/"+dev.id, "", &fd)
	if s := fmt.Sprint(fd); !strings.Contains(s, sqlProbes[0]) || !strings.Contains(s, "Ciakar'; DROP TABLE devices; --") {
		t.Errorf("enrolled device's fields not stored literally: %v", fd)
	}
	// The database is intact: every ticket is still there, and ingest still works.
	if n := len(h.tickets("?limit=500")); n != len(made) {
		t.Errorf("%d tickets after the probes, want %d", n, len(made))
	}
	smsTicket(t, k, "setelah probe", "+6281299999999")
	if n := len(h.tickets("?limit=500")); n != len(made)+1 {
		t.Errorf("%d tickets after one more report, want %d", n, len(made)+1)
	}
}

// TestXSSEscapedInDashboard: SMS texts carrying markup are shown on the operator's queue and
// ticket pages as text: escaped in the HTML, never as tags.
func TestXSSEscapedInDashboard(t *testing.T) {
	h := startHub(t, "pos-web")
	k := h.plainKiosk("pos-web")
	h.createUser("sec-op", account.RoleOperator, "", "kata sandi yang panjang sekali")
	b, _ := h.login("sec-op", "kata sandi yang panjang sekali", "")
	var made []webTicket
	for i, p := range xssProbes {
		made = append(made, smsTicket(t, k, p, fmt.Sprintf("+62813%07d", i)))
	}
	pages := []string{"/", "/queue/rows", "/map/data"}
	for _, tk := range made {
		pages = append(pages, "/tickets/"+tk.id)
	}
	for _, p := range pages {
		st, body := b.do("GET", p, "", nil)
		if st != 200 {
			t.Errorf("GET %s: %d", p, st)
			continue
		}
		for _, x := range xssProbes {
			if strings.ContainsAny(x, "<>\"") && strings.Contains(body, x) {
				t.Errorf("GET %s has %q unescaped", p, x)
			}
		}
	}
	for i, tk := range made {
		_, body := b.do("GET", "/tickets/"+tk.id, "", nil)
		if !strings.Contains(html.UnescapeString(body), xssProbes[i]) {
			t.Errorf("ticket page of %s does not show %q as text", tk.number, xssProbes[i])
		}
	}
}
