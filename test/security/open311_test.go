package security

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/hub/webhook"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// TestOpen311Probes: Open311 without a key, with a forged one, with a token of a user who may
// not file; each 401/403 and logged. A filed request carrying injection probes in its
// description and address is stored and answered literally.
func TestOpen311Probes(t *testing.T) {
	h := startHub(t)
	form := func(v url.Values) (int, []byte) {
		return h.do("POST", "/open311/v2/requests.json", "", v.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	if st, body := h.do("GET", "/open311/v2/requests.json", "", "", nil); st != http.StatusUnauthorized {
		t.Errorf("list without a key: %d %s", st, body)
	}
	h.log.waitLog(t, "http request refused", map[string]string{"path": "/open311/v2/requests.json", "method": "GET", "code": "unauthorized"})
	if st, body := h.do("GET", "/open311/v2/requests.json?api_key=ktg_forged00000000000000", "", "", nil); st != http.StatusUnauthorized {
		t.Errorf("list with a forged key: %d %s", st, body)
	}
	good := url.Values{"service_code": {"water"}, "description": {"Air PDAM mati"}, "lat": {"-6.27"}, "long": {"106.52"}}
	v := url.Values{"api_key": {"ktg_forged00000000000000"}}
	for k, x := range good {
		v[k] = x
	}
	if st, body := form(v); st != http.StatusUnauthorized {
		t.Errorf("file with a forged key: %d %s", st, body)
	}
	n := len(h.log.find("http request refused", map[string]string{"path": "/open311/v2/requests.json", "code": "unauthorized"}))
	if n < 3 {
		t.Errorf("%d refusals logged, want 3", n)
	}
	agency := h.token("sec-damkar", account.RoleAgency, "damkar")
	v.Set("api_key", agency)
	if st, body := form(v); st != http.StatusForbidden {
		t.Errorf("file as an agency user: %d %s", st, body)
	}
	h.log.waitLog(t, "http request refused", map[string]string{"path": "/open311/v2/requests.json", "code": "forbidden", "err": "sec-damkar"})

	key := h.token("sec-311", account.RoleOperator, "")
	for _, p := range append(append([]string(nil), sqlProbes...), xssProbes...) {
		v := url.Values{"api_key": {key}, "service_code": {"water"}, "description": {"Air mati " + p}, "address_string": {"Jl. " + p}}
		st, body := form(v)
		if st != http.StatusCreated {
			t.Errorf("file %q: %d %s", p, st, body)
			continue
		}
		var filed []struct {
			ID string `json:"service_request_id"`
		}
		if err := json.Unmarshal(body, &filed); err != nil || len(filed) != 1 {
			t.Fatalf("filed answer %s: %v", body, err)
		}
		st, body = h.do("GET", "/open311/v2/requests/"+filed[0].ID+".json?api_key="+url.QueryEscape(key), "", "", nil)
		var got []map[string]any
		if st != 200 || json.Unmarshal(body, &got) != nil || len(got) != 1 {
			t.Fatalf("read back %s: %d %s", filed[0].ID, st, body)
		}
		if !strings.Contains(fmt.Sprint(got[0]["description"]), "Air mati "+p) || !strings.Contains(fmt.Sprint(got[0]), "Jl. "+p) {
			t.Errorf("request %s read back as %v, want %q literally", filed[0].ID, got[0], p)
		}
	}
}

// TestWebhookPayloadProbes: an agency's webhook gets a resident's text as a JSON string,
// literally, in a body whose signature verifies: nothing a resident writes can change the
// shape of the payload an agency's system parses.
func TestWebhookPayloadProbes(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies [][]byte
		bad    []string
	)
	const secret = "rahasia-damkar"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get(webhook.HeaderSignature) != webhook.Sign([]byte(secret), b) {
			bad = append(bad, string(b))
		}
		bodies = append(bodies, b)
	}))
	t.Cleanup(srv.Close)
	routing := strings.Replace(string(route.DefaultYAML()), "    short: Damkar\n    phone: \"113\"\n",
		"    short: Damkar\n    phone: \"113\"\n    webhook:\n      url: "+srv.URL+"/hook\n      secret: "+secret+"\n", 1)
	if !strings.Contains(routing, srv.URL) {
		t.Fatal("the default routing file changed: no place for damkar's webhook")
	}
	file := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(file, []byte(routing), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHubWith(t, func(m *hubd.Main) { m.Config.Routing.File = file }, "pos-web")
	k := h.plainKiosk("pos-web")
	probes := append(append([]string(nil), sqlProbes...), xssProbes...)
	probes = append(probes, `{"ticket":{"status":"closed"}}`, "\",\"agency\":\"polresta")
	for i, p := range probes {
		in := newIncident(t, "pos-web", mqtt.SourceSMS, "KEBAKARAN "+p, fmt.Sprintf("+62814%07d", i))
		in.Button, in.Category = "", "fire"
		if !k.publish(mqtt.Topic("pos-web", mqtt.KindIncident), encode(t, in)) {
			t.Fatal("incident not acknowledged by the broker")
		}
		k.waitAck(t, in.ID, mqtt.AckReceived)
	}
	texts := map[string]bool{}
	poll.Until(t, wait, "a webhook delivery of every ticket", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			var p struct {
				Agency string         `json:"agency"`
				Ticket map[string]any `json:"ticket"`
			}
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatalf("webhook body is not JSON: %v\n%s", err, b)
			}
			if p.Agency != "damkar" {
				t.Fatalf("webhook body names agency %q: %s", p.Agency, b)
			}
			if s, ok := p.Ticket["text"].(string); ok {
				texts[s] = true
			}
		}
		missing := 0
		for _, p := range probes {
			if !texts["KEBAKARAN "+p] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d texts not delivered literally; got %v", missing, len(probes), texts)
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bad) != 0 {
		t.Errorf("%d webhook bodies with a wrong signature", len(bad))
	}
}
