package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kentongan/kentongan/mqtt"
)

// failingStore makes Put and PutSent fail like a full disk while fail is set.
type failingStore struct {
	store
	fail atomic.Bool
}

func (s *failingStore) Put(in mqtt.Incident, now time.Time) error {
	if s.fail.Load() {
		return &pathError{syscall.ENOSPC}
	}
	return s.store.Put(in, now)
}

func (s *failingStore) PutSent(in mqtt.Incident, now time.Time) (mqtt.Incident, error) {
	if s.fail.Load() {
		return mqtt.Incident{}, &pathError{syscall.ENOSPC}
	}
	return s.store.PutSent(in, now)
}

type pathError struct{ err error }

func (e *pathError) Error() string { return "write /var/lib/kentongand/outbox.db: " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

func TestStoreFailureIsFaultNotSilence(t *testing.T) {
	cfg := testConfig(t, "tcp://"+freeAddr(t))
	cfg.RetryInterval = 200 * time.Millisecond // the held incidents are written on the retry tick
	d := newDaemon(t, cfg)
	fs := &failingStore{store: d.store}
	fs.fail.Store(true)
	d.store = fs
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.AdminAddr()

	var body struct {
		Button     string `json:"button"`
		HoldMS     int    `json:"hold_ms"`
		Raised     bool   `json:"raised"`
		IncidentID string `json:"incident_id"`
		Error      string `json:"error"`
	}
	code := getJSON(t, "POST", base+"/sim/buttons/kebakaran/press?hold_ms=200", &body)
	if code != http.StatusInternalServerError || !body.Raised || body.IncidentID == "" || !strings.Contains(body.Error, "no space left") || body.Button != "kebakaran" {
		t.Fatalf("press on a full disk: %d %+v; want 500, raised, with the incident id and the reason", code, body)
	}
	eventually(t, "LED fault", func() bool { return ledState(d) == StateFault })
	st := d.Status()
	if !strings.Contains(st.Fault, "no space left") || st.QueueDepth != 1 || st.LEDState != StateFault {
		t.Fatalf("status %+v; want the fault and the incident held in memory", st)
	}
	if len(st.Incidents) != 1 || st.Incidents[0].ID != body.IncidentID || st.Incidents[0].State != StatePending || !strings.Contains(st.Incidents[0].Error, "not on disk") {
		t.Fatalf("incidents %+v; want the held incident, pending and marked as not on disk", st.Incidents)
	}
	res, err := d.SimPress(t.Context(), "darurat", 200*time.Millisecond)
	if !errors.Is(err, ErrNotStored) || !errors.Is(err, syscall.ENOSPC) || !res.Raised || res.IncidentID == "" {
		t.Fatalf("Press: %+v, %v; want a raised incident and ErrNotStored wrapping ENOSPC", res, err)
	}
	if st := d.Status(); st.QueueDepth != 2 {
		t.Fatalf("queue depth %d, want 2 held in memory", st.QueueDepth)
	}

	// Space is freed: the held incidents are written to disk, in order, and the fault clears.
	fs.fail.Store(false)
	eventually(t, "held incidents on disk", func() bool {
		p, err := d.store.Pending()
		return err == nil && len(p) == 2 && p[0].Incident.ID == body.IncidentID && p[1].Incident.ID == res.IncidentID
	})
	eventually(t, "fault cleared", func() bool { st := d.Status(); return st.Fault == "" && st.QueueDepth == 2 })
	res2, err := d.SimPress(t.Context(), "darurat", 200*time.Millisecond)
	if err != nil || !res2.Raised || res2.IncidentID == "" {
		t.Fatalf("press after recovery: %+v %v", res2, err)
	}
	eventually(t, "LED pending", func() bool { return ledState(d) == StatePending })
	if st := d.Status(); st.Fault != "" || st.QueueDepth != 3 || st.Incidents[0].ID != res2.IncidentID || st.Incidents[0].State != StatePending || st.Incidents[0].Error != "" {
		t.Fatalf("status after recovery %+v", st)
	}
}

func TestPressWhileOffline(t *testing.T) {
	cfg := testConfig(t, "tcp://"+freeAddr(t))
	var mu sync.Mutex
	var seen []string
	d := startDaemon(t, cfg, WithLEDObserver(func(led, state, pattern string) {
		mu.Lock()
		seen = append(seen, led+":"+state+":"+pattern)
		mu.Unlock()
	}))
	eventually(t, "LED offline", func() bool { return ledState(d) == StateOffline })

	res, err := d.SimPress(t.Context(), "darurat", 30*time.Millisecond)
	if err != nil || res.Raised {
		t.Fatalf("short press: %+v %v", res, err)
	}
	if st := d.Status(); st.QueueDepth != 0 {
		t.Fatalf("short press queued %d incidents", st.QueueDepth)
	}
	res, err = d.SimPress(t.Context(), "kebakaran", 300*time.Millisecond)
	if err != nil || !res.Raised {
		t.Fatalf("long press: %+v %v", res, err)
	}
	eventually(t, "LED pending", func() bool { return ledState(d) == StatePending })
	st := d.Status()
	if st.Connected || st.QueueDepth != 1 || st.Fault != "" {
		t.Fatalf("status %+v", st)
	}
	in := st.Incidents[0]
	if in.ID != res.IncidentID || in.Button != "kebakaran" || in.Category != "fire" || in.Attempt != 0 {
		t.Fatalf("incident %+v", in)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"status:offline:off", "status:pressing:solid", "status:pending:fast_blink"}
	if !containsInOrder(seen, want) {
		t.Fatalf("observer saw %v, want %v in order", seen, want)
	}
}

func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestAdminAPI(t *testing.T) {
	d := startDaemon(t, testConfig(t, "tcp://"+freeAddr(t)))
	base := "http://" + d.AdminAddr()
	var e struct {
		Error string `json:"error"`
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/sim/buttons/nope/press", http.StatusNotFound},
		{"POST", "/sim/buttons/darurat/press?hold_ms=abc", http.StatusBadRequest},
		{"POST", "/sim/buttons/darurat/press?hold_ms=0", http.StatusBadRequest},
		{"POST", "/sim/buttons/darurat/press?hold_ms=600000", http.StatusBadRequest},
		{"GET", "/sim/buttons/darurat/press", http.StatusMethodNotAllowed},
		{"DELETE", "/status", http.StatusMethodNotAllowed},
		{"GET", "/nothing", http.StatusNotFound},
	} {
		e.Error = ""
		if code := getJSON(t, tc.method, base+tc.path, &e); code != tc.code || e.Error == "" {
			t.Errorf("%s %s: %d %q, want %d with an error", tc.method, tc.path, code, e.Error, tc.code)
		}
	}

	var press PressResult
	if code := getJSON(t, "POST", base+"/sim/buttons/darurat/press?hold_ms=250", &press); code != http.StatusOK ||
		press.Button != "darurat" || press.HoldMS != 250 || !press.Raised || press.IncidentID == "" {
		t.Fatalf("press: %d %+v", code, press)
	}
	var leds []LEDView
	if code := getJSON(t, "GET", base+"/sim/leds", &leds); code != http.StatusOK || len(leds) != 1 || leds[0].Name != "status" || leds[0].Pattern == "" {
		t.Fatalf("leds: %d %+v", code, leds)
	}
	var st Status
	if code := getJSON(t, "GET", base+"/status", &st); code != http.StatusOK || st.DeviceID != testDevice ||
		st.QueueDepth != 1 || len(st.Incidents) != 1 || st.Incidents[0].ID != press.IncidentID {
		t.Fatalf("status: %d %+v", code, st)
	}
}

func TestAdminRefusesNonLocalCallers(t *testing.T) {
	d := newDaemon(t, testConfig(t, "tcp://"+freeAddr(t)))
	h := d.adminHandler()
	for _, tc := range []struct {
		name   string
		modify func(*http.Request)
	}{
		{"remote peer", func(r *http.Request) { r.RemoteAddr = "192.168.1.50:40000" }},
		{"rebound host name", func(r *http.Request) { r.Host = "evil.example:8081" }},
		{"cross-site browser request", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }},
	} {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8081/sim/buttons/darurat/press", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		tc.modify(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}

	// A daemon on real GPIO cannot have its buttons pressed over HTTP.
	d.sim = nil
	r := httptest.NewRequest("POST", "http://127.0.0.1:8081/sim/buttons/darurat/press", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusConflict {
		t.Errorf("non-sim driver: %d %s", w.Code, w.Body)
	}
	if err := d.Press(context.Background(), "darurat", time.Second); !errors.Is(err, ErrNotSim) {
		t.Errorf("Press on non-sim: %v", err)
	}
}

func TestStartFailsWhenAdminPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, "tcp://"+freeAddr(t))
	cfg.Admin.Listen = ln.Addr().String()
	d := newDaemon(t, cfg)
	if err := d.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded on a taken port")
	}
}

func TestPressBeforeStartAndAfterClose(t *testing.T) {
	cfg := testConfig(t, "tcp://"+freeAddr(t))
	d := newDaemon(t, cfg)
	if err := d.Press(t.Context(), "darurat", time.Second); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before Start: %v", err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Press(t.Context(), "nope", time.Second); !errors.Is(err, ErrUnknownButton) {
		t.Fatalf("unknown button: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := d.Press(t.Context(), "darurat", time.Second); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after Close: %v", err)
	}
	if v := d.LEDs(); v[0].On {
		t.Fatal("LED on after Close")
	}
	// The store is released: another daemon can open it.
	d2 := newDaemon(t, cfg)
	if err := d2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cfg := testConfig(t, "tcp://127.0.0.1:1")
	cfg.Admin.Listen = "0.0.0.0:8081"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Fatalf("New: %v", err)
	}
	cfg = testConfig(t, "tcp://127.0.0.1:1")
	cfg.Buttons[1].Pin = 22 // the LED's
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("New: %v", err)
	}
}
