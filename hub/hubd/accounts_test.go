package hubd_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
)

// runHub runs a hub with no kiosks on a temp dir.
func runHub(t *testing.T) *hubd.Main {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.ParseFlags(context.Background(), []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The running hub's API is closed to anonymous requests, opens to a token, and files an
// Open311 request as a routed non-emergency ticket with working-hours deadlines.
func TestHubAccountsAndOpen311(t *testing.T) {
	m := runHub(t)
	base := "http://" + m.HTTPAddr()
	ctx := context.Background()

	req, _ := http.NewRequest("GET", base+"/api/v1/tickets", nil)
	if code, body := send(t, req); code != 401 {
		t.Fatalf("anonymous tickets: %d %s", code, body)
	}
	token, err := m.IssueToken(ctx, "siti", account.RoleOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.IssueToken(ctx, "siti", account.RoleAdmin, ""); err != nil { // the user exists: only a token
		t.Fatal(err)
	}
	if u, err := m.Accounts.User(ctx, "siti"); err != nil || u.Role != account.RoleOperator {
		t.Fatalf("siti: %+v %v", u, err)
	}

	req, _ = http.NewRequest("GET", base+"/open311/v2/services.json", nil)
	code, body := send(t, req)
	var svcs []struct {
		Code  string `json:"service_code"`
		Group string `json:"group"`
	}
	if err := json.Unmarshal([]byte(body), &svcs); code != 200 || err != nil {
		t.Fatalf("services: %d %s", code, body)
	}
	codes := map[string]string{}
	for _, s := range svcs {
		codes[s.Code] = s.Group
	}
	if codes["water"] == "" || codes["electricity"] == "" || len(codes) < 5 {
		t.Errorf("services from the default routing: %v", codes)
	}
	if _, ok := codes["fire"]; ok {
		t.Errorf("an emergency is offered: %v", codes)
	}

	form := url.Values{"api_key": {token}, "service_code": {"water"}, "address_string": {"Ciakar RT 01/RW 03, Panongan"},
		"description": {"Air PDAM tidak mengalir sejak kemarin"}}
	req, _ = http.NewRequest("POST", base+"/open311/v2/requests.json", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, body = send(t, req)
	var filed []struct {
		ID string `json:"service_request_id"`
	}
	if err := json.Unmarshal([]byte(body), &filed); code != 201 || err != nil || len(filed) != 1 {
		t.Fatalf("file: %d %s", code, body)
	}
	tk, err := m.Service.Ticket(ctx, filed[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Source != "open311" || tk.Priority != hub.PriorityNormal || tk.Agency != "tkr" || tk.Category != "water" ||
		tk.ResolveDue == nil || !strings.Contains(tk.Text, "Ciakar") {
		t.Errorf("filed ticket: %+v", tk)
	}

	form.Set("service_code", "fire")
	req, _ = http.NewRequest("POST", base+"/open311/v2/requests.json", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, body := send(t, req); code != 400 || !strings.Contains(body, "112") {
		t.Errorf("fire through Open311: %d %s", code, body)
	}

	req, _ = http.NewRequest("GET", base+"/api/v1/tickets?q=PDAM", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if code, body := send(t, req); code != 200 || !strings.Contains(body, filed[0].ID) {
		t.Errorf("search for the request: %d %s", code, body)
	}
}
