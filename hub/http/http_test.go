package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub"
	hubhttp "github.com/kentongan/kentongan/hub/http"
)

func TestErrorStatus(t *testing.T) {
	for code, want := range map[string]int{
		hub.CodeInvalid:      400,
		hub.CodeNotFound:     404,
		hub.CodeConflict:     409,
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

// stub answers from fields; a test sets what it needs.
type stub struct {
	ackBy, ackNote string
	ackErr         error
	listErr        error
}

func (s *stub) Ticket(_ context.Context, id string) (*hub.Ticket, error) {
	return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", id)
}

func (s *stub) Tickets(context.Context, hub.TicketFilter) ([]*hub.Ticket, error) {
	return []*hub.Ticket{}, s.listErr
}

func (s *stub) Events(context.Context, string) ([]hub.Event, error) { return nil, nil }

func (s *stub) Acknowledge(_ context.Context, id, by, note string) (*hub.Ticket, error) {
	s.ackBy, s.ackNote = by, note
	if s.ackErr != nil {
		return nil, s.ackErr
	}
	return &hub.Ticket{ID: id, Status: hub.StatusAcknowledged, AcknowledgedBy: by}, nil
}

func (s *stub) Transition(context.Context, string, hub.Status, string, string) (*hub.Ticket, error) {
	return nil, hub.Errorf(hub.CodeInvalid, "not used by these tests")
}

func (s *stub) Devices(context.Context) []hub.DeviceStatus { return []hub.DeviceStatus{} }

func (s *stub) Ping(_ context.Context, id string) (string, error) {
	if id != "ciakar-rw03" {
		return "", hub.Errorf(hub.CodeNotFound, "device %q is not registered", id)
	}
	return "c-1", nil
}

func (s *stub) Stats(context.Context) hub.Stats { return hub.Stats{} }

func serve(t *testing.T, st *stub) *httptest.Server {
	t.Helper()
	srv := hubhttp.NewServer(hubhttp.Options{Tickets: st, Devices: st, Stats: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, method, url, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code
}

func TestAckBody(t *testing.T) {
	st := &stub{}
	ts := serve(t, st)
	url := ts.URL + "/api/v1/tickets/t1/ack"

	for _, body := range []string{"", "  \n", "{}"} {
		if code, b, _ := call(t, "POST", url, body); code != 200 || st.ackBy != hubhttp.DefaultActor {
			t.Errorf("body %q: %d %s, by %q", body, code, b, st.ackBy)
		}
	}
	if code, _, _ := call(t, "POST", url, `{"by":"siti","note":"otw"}`); code != 200 || st.ackBy != "siti" || st.ackNote != "otw" {
		t.Errorf("by/note not passed: %d %q %q", code, st.ackBy, st.ackNote)
	}
	for _, body := range []string{`{"by":`, `{"by":"siti","nota":"x"}`, `{"by":1}`, `[]`, `{} {}`, strings.Repeat(" ", 70<<10) + "{}"} {
		code, b, _ := call(t, "POST", url, body)
		if code != 400 || errorCode(t, b) != hub.CodeInvalid {
			t.Errorf("body %.20q: %d %s, want 400 invalid", body, code, b)
		}
	}

	st.ackErr = hub.Errorf(hub.CodeConflict, "ticket is already acknowledged")
	if code, b, _ := call(t, "POST", url, ""); code != 409 || errorCode(t, b) != hub.CodeConflict {
		t.Errorf("conflict: %d %s", code, b)
	}
	st.ackErr = errors.New("database is locked at /var/lib/x")
	code, b, _ := call(t, "POST", url, "")
	if code != 500 || errorCode(t, b) != hub.CodeInternal || strings.Contains(b, "/var/lib") {
		t.Errorf("internal error: %d %s; want 500 without internals", code, b)
	}
}

func TestRoutes(t *testing.T) {
	ts := serve(t, &stub{})
	if code, b, h := call(t, "GET", ts.URL+"/api/v1/tickets", ""); code != 200 || strings.TrimSpace(b) != "[]" ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("empty list: %d %q %v", code, b, h)
	}
	if code, b, _ := call(t, "GET", ts.URL+"/api/v1/nothing", ""); code != 404 || errorCode(t, b) != hub.CodeNotFound {
		t.Errorf("unknown endpoint: %d %s", code, b)
	}
	if code, b, h := call(t, "DELETE", ts.URL+"/api/v1/tickets", ""); code != 405 || h.Get("Allow") != "GET" || errorCode(t, b) != "method_not_allowed" {
		t.Errorf("wrong method: %d %s, Allow %q", code, b, h.Get("Allow"))
	}
	if code, _, h := call(t, "GET", ts.URL+"/api/v1/tickets/t1/ack", ""); code != 405 || h.Get("Allow") != "POST" {
		t.Errorf("GET on ack: %d, Allow %q", code, h.Get("Allow"))
	}
	if code, _, _ := call(t, "GET", ts.URL+"/metrics", ""); code != 404 {
		t.Errorf("metrics without a handler: %d", code)
	}
}

func TestPing(t *testing.T) {
	ts := serve(t, &stub{})
	code, body, _ := call(t, "POST", ts.URL+"/api/v1/devices/ciakar-rw03/ping", "")
	if code != 202 || !strings.Contains(body, `"command_id": "c-1"`) {
		t.Errorf("ping: %d %s, want 202 with the command id", code, body)
	}
	if code, body, _ := call(t, "POST", ts.URL+"/api/v1/devices/nowhere/ping", ""); code != 404 || errorCode(t, body) != "not_found" {
		t.Errorf("ping unknown device: %d %s, want 404 not_found", code, body)
	}
	if code, _, h := call(t, "GET", ts.URL+"/api/v1/devices/ciakar-rw03/ping", ""); code != 405 || h.Get("Allow") != "POST" {
		t.Errorf("GET ping: %d, Allow %q; want 405 and POST", code, h.Get("Allow"))
	}
}
