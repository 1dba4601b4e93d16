package http_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	hubhttp "github.com/kentongan/kentongan/hub/http"
)

func (c *client) form(path string, form url.Values) answer {
	c.e.t.Helper()
	req, _ := http.NewRequest("POST", c.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

type o311Error []struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

func TestOpen311Services(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.client().do("GET", "/open311/v2/services.json", "")
	svcs := decode[[]map[string]any](t, a)
	if a.code != 200 || len(svcs) != 2 {
		t.Fatalf("services: %d %s", a.code, a.body)
	}
	// Emergencies are not offered; the rest are named for residents, grouped by agency.
	if svcs[0]["service_code"] != "electricity" || svcs[0]["service_name"] != "Listrik" || svcs[0]["group"] != "PLN UP3 Cikupa" ||
		svcs[0]["metadata"] != false || svcs[0]["type"] != "realtime" {
		t.Errorf("first service: %v", svcs[0])
	}
	if a := e.client().do("GET", "/open311/v2/services.xml", ""); a.code != 400 || !strings.Contains(a.body, "JSON") {
		t.Errorf("services.xml: %d %s", a.code, a.body)
	}
}

func TestOpen311FileAndRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	key := e.token("siti", account.ScopeOpen311)
	anon := e.client()
	good := url.Values{
		"api_key": {key}, "service_code": {"water"}, "lat": {"-6.2745"}, "long": {"106.5223"},
		"address_string": {"Jl. Raya Ciakar No. 5"}, "description": {"Air PDAM tidak mengalir tiga hari"},
		"first_name": {"Ani"}, "phone": {"+6281211112222"}, "attribute[ukuran]": {"besar"},
	}

	a := anon.form("/open311/v2/requests.json", good)
	if a.code != 201 {
		t.Fatalf("file: %d %s", a.code, a.body)
	}
	got := decode[[]map[string]any](t, a)
	if len(got) != 1 || got[0]["service_request_id"] != "112-000005" || !strings.Contains(got[0]["service_notice"].(string), "112-000005") {
		t.Errorf("file answer: %s", a.body)
	}
	e.hub.mu.Lock()
	nt := e.hub.filed[0]
	e.hub.mu.Unlock()
	if nt.Source != hubhttp.SourceOpen311 || nt.Category != "water" || nt.Priority != hub.PriorityNormal || nt.Agency != "tkr" ||
		nt.Site.Lat != -6.2745 || nt.Reporter != "+6281211112222" || !strings.Contains(nt.Text, "Jl. Raya Ciakar") ||
		!strings.Contains(nt.Text, "Ani") || nt.IncidentID == "" || nt.OccurredAt.IsZero() {
		t.Errorf("filed ticket: %+v", nt)
	}

	// Refusals, each with GeoReport's error shape, none filing anything.
	for _, c := range []struct {
		name   string
		change func(url.Values)
		code   int
		want   string
	}{
		{"no key", func(v url.Values) { v.Del("api_key") }, 401, "api_key"},
		{"bad key", func(v url.Values) { v.Set("api_key", "ktg_nope") }, 401, "api_key"},
		{"emergency", func(v url.Values) { v.Set("service_code", "fire") }, 400, "112"},
		{"unknown service", func(v url.Values) { v.Set("service_code", "potholes") }, 400, "services.json"},
		{"no service", func(v url.Values) { v.Del("service_code") }, 400, "service_code is required"},
		{"no location", func(v url.Values) { v.Del("lat"); v.Del("long"); v.Del("address_string") }, 400, "location"},
		{"lat only", func(v url.Values) { v.Del("long") }, 400, "go together"},
		{"bad lat", func(v url.Values) { v.Set("lat", "utara") }, 400, "lat must be"},
		{"NaN lat", func(v url.Values) { v.Set("lat", "NaN") }, 400, "lat must be"},
		{"infinite long", func(v url.Values) { v.Set("long", "+Inf") }, 400, "lat must be"},
		{"no description", func(v url.Values) { v.Set("description", " ") }, 400, "description is required"},
		{"unknown field", func(v url.Values) { v.Set("descripton", "typo") }, 400, `"descripton"`},
		{"twice", func(v url.Values) { v["phone"] = []string{"1", "2"} }, 400, "2 times"},
	} {
		form := url.Values{}
		for k, v := range good {
			form[k] = append([]string(nil), v...)
		}
		c.change(form)
		a := anon.form("/open311/v2/requests.json", form)
		errs := decode[o311Error](t, a)
		if a.code != c.code || len(errs) != 1 || errs[0].Code != c.code || !strings.Contains(errs[0].Description, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, a.code, a.body, c.code, c.want)
		}
	}
	e.hub.mu.Lock()
	n := len(e.hub.filed)
	e.hub.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d requests filed, want 1", n)
	}
	// A user whose role may not file (an agency) is refused, and the refusal audited.
	if a := anon.form("/open311/v2/requests.json", url.Values{"api_key": {e.token("damkar1", "")}, "service_code": {"water"}}); a.code != 403 {
		t.Errorf("agency key: %d %s", a.code, a.body)
	}

	// Reading needs the key too; it lists non-emergency tickets, never the reporter's number.
	if a := anon.do("GET", "/open311/v2/requests.json", ""); a.code != 401 {
		t.Errorf("requests without a key: %d", a.code)
	}
	a = anon.do("GET", "/open311/v2/requests.json?api_key="+url.QueryEscape(key), "")
	reqs := decode[[]map[string]any](t, a)
	if a.code != 200 || len(reqs) != 3 || strings.Contains(a.body, "+62812") {
		t.Fatalf("requests: %d %s", a.code, a.body)
	}
	first := reqs[0]
	if first["service_request_id"] != "112-000005" || first["status"] != "open" || first["service_code"] != "water" ||
		first["agency_responsible"] != "Perumdam TKR" || first["lat"] != -6.2745 || first["long"] != 106.5223 ||
		!strings.HasSuffix(first["requested_datetime"].(string), "+07:00") ||
		first["description"] != "Air PDAM tidak mengalir tiga hari" || first["address"] != "Jl. Raya Ciakar No. 5" {
		t.Errorf("filed request as listed: %v", first)
	}
	if strings.Contains(a.body, "Ani") {
		t.Errorf("the reporter's name is shown: %s", a.body)
	}
	bearer := e.client()
	bearer.auth = "Bearer " + key
	for q, want := range map[string]int{
		"?status=closed":                            1, // the resolved water ticket
		"?status=open":                              2,
		"?service_code=electricity":                 1,
		"?service_request_id=112-000002,112-000001": 1, // the fire is an emergency: not a request
		"?start_date=2030-01-01T00:00:00%2B07:00":   0,
	} {
		a := bearer.do("GET", "/open311/v2/requests.json"+q, "")
		if n := len(decode[[]map[string]any](t, a)); a.code != 200 || n != want {
			t.Errorf("requests%s: %d, %d requests, want %d", q, a.code, n, want)
		}
	}
	for _, q := range []string{"?status=pending", "?start_date=kemarin", "?page=2"} {
		if a := bearer.do("GET", "/open311/v2/requests.json"+q, ""); a.code != 400 {
			t.Errorf("requests%s: %d", q, a.code)
		}
	}
	a = bearer.do("GET", "/open311/v2/requests/112-000005.json", "")
	if one := decode[[]map[string]any](t, a); a.code != 200 || len(one) != 1 || one[0]["service_request_id"] != "112-000005" {
		t.Errorf("one request: %d %s", a.code, a.body)
	}
	for _, p := range []string{"/open311/v2/requests/112-000001.json", "/open311/v2/requests/112-000099.json"} {
		if a := bearer.do("GET", p, ""); a.code != 404 {
			t.Errorf("%s: %d %s", p, a.code, a.body)
		}
	}
}
