package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/test/poll"
)

// hubProc is a real hub started in-process: embedded broker on a free TCP port, SQLite in a
// temp dir, HTTP on a free port.
type hubProc struct {
	t     testing.TB
	dir   string
	m     *hubd.Main
	base  string
	token string // an API token of operator-e2e
}

func testLogger(name string) *slog.Logger {
	if os.Getenv("E2E_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("proc", name)
}

// startHub starts a hub on dir (reused across restarts), knowing the given devices.
func startHub(t testing.TB, dir string, devices ...string) *hubProc {
	t.Helper()
	return startHubWith(t, dir, nil, devices...)
}

// startHubWith is startHub with a chance to change each device's configuration.
func startHubWith(t testing.TB, dir string, device func(*hubd.DeviceConfig), devices ...string) *hubProc {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = testLogger("hub")
	args := []string{"--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}
	if err := m.ParseFlags(context.Background(), args); err != nil {
		t.Fatalf("hub flags: %v", err)
	}
	for _, id := range devices {
		dc := hubd.DeviceConfig{ID: id, Name: "Pos " + id}
		if device != nil {
			device(&dc)
		}
		m.Config.Devices = append(m.Config.Devices, dc)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("start hub: %v", err)
	}
	h := &hubProc{t: t, dir: dir, m: m, base: "http://" + m.HTTPAddr()}
	t.Cleanup(func() { h.stop() })
	token, err := m.IssueToken(context.Background(), "operator-e2e", account.RoleOperator, "")
	if err != nil {
		t.Fatalf("API token: %v", err)
	}
	h.token = token
	return h
}

func (h *hubProc) stop() {
	if h.m != nil {
		if err := h.m.Close(); err != nil {
			h.t.Errorf("close hub: %v", err)
		}
		h.m = nil
	}
}

func (h *hubProc) brokerAddr() string { return h.m.MQTTAddr() }

type ticket struct {
	ID             string     `json:"id"`
	Number         string     `json:"number"`
	IncidentID     string     `json:"incident_id"`
	DeviceID       string     `json:"device_id"`
	Source         string     `json:"source"`
	Category       string     `json:"category"`
	Priority       string     `json:"priority"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
}

func (h *hubProc) tickets(deviceID string) []ticket {
	h.t.Helper()
	url := h.base + "/api/v1/tickets?limit=1000"
	if deviceID != "" {
		url += "&device_id=" + deviceID
	}
	var out []ticket
	h.getJSON(url, &out)
	return out
}

func (h *hubProc) getJSON(url string, v any) {
	h.t.Helper()
	resp, err := h.do(http.MethodGet, url, nil)
	if err != nil {
		h.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := decodeList(body, v); err != nil {
		h.t.Fatalf("GET %s: decode %s: %v", url, body, err)
	}
}

// decodeList accepts either a bare array or an object wrapping it in "tickets".
func decodeList(body []byte, v any) error {
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		return json.Unmarshal(body, v)
	}
	var wrap map[string]json.RawMessage
	if err := json.Unmarshal(body, &wrap); err != nil {
		return err
	}
	if raw, ok := wrap["tickets"]; ok {
		return json.Unmarshal(raw, v)
	}
	return json.Unmarshal(body, v)
}

// do sends an API request as operator-e2e.
func (h *hubProc) do(method, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return http.DefaultClient.Do(req)
}

func (h *hubProc) ack(ticketID string) {
	h.t.Helper()
	url := h.base + "/api/v1/tickets/" + ticketID + "/ack"
	resp, err := h.do(http.MethodPost, url, []byte(`{"by":"operator-e2e","note":"tim menuju lokasi"}`))
	if err != nil {
		h.t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("POST %s: %s: %s", url, resp.Status, body)
	}
}

// kiosk is a real kentongand with the sim GPIO driver.
type kiosk struct {
	t   testing.TB
	id  string
	dir string
	d   *daemon.Daemon
}

func kioskConfig(id, brokerURL, storeDir string) daemon.Config {
	cfg := daemon.Config{
		DeviceID: id,
		Name:     "Pos " + id,
	}
	cfg.Broker.URL = brokerURL
	cfg.GPIO.Driver = "sim"
	cfg.Store.Dir = storeDir
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Buttons = []daemon.Button{
		{Name: "darurat", Pin: 17, HoldMS: 50},
		{Name: "kebakaran", Category: "fire", Pin: 27, HoldMS: 50},
		{Name: "medis", Category: "medical", Pin: 22, HoldMS: 50},
	}
	cfg.LEDs = []daemon.LED{{Name: "status", Pin: 23}}
	cfg.RetryInterval = 500 * time.Millisecond
	cfg.HeartbeatInterval = time.Second
	cfg.Broker.ConnectRetryInterval = 200 * time.Millisecond
	cfg.Broker.MaxReconnectInterval = 500 * time.Millisecond
	cfg.Broker.KeepAlive = 2 * time.Second
	return cfg
}

// startKiosk starts a kiosk whose store lives in dir (reused across restarts).
func startKiosk(t testing.TB, id, brokerURL, dir string) *kiosk {
	t.Helper()
	return startKioskCfg(t, kioskConfig(id, brokerURL, dir))
}

func startKioskCfg(t testing.TB, cfg daemon.Config) *kiosk {
	t.Helper()
	d, err := daemon.New(cfg, daemon.WithLogger(testLogger(cfg.DeviceID)))
	if err != nil {
		t.Fatalf("new kiosk %s: %v", cfg.DeviceID, err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start kiosk %s: %v", cfg.DeviceID, err)
	}
	k := &kiosk{t: t, id: cfg.DeviceID, dir: cfg.Store.Dir, d: d}
	t.Cleanup(func() { k.stop() })
	return k
}

func (k *kiosk) stop() {
	if k.d != nil {
		if err := k.d.Close(); err != nil {
			k.t.Errorf("close kiosk %s: %v", k.id, err)
		}
		k.d = nil
	}
}

func (k *kiosk) press(button string) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := k.d.SimPress(ctx, button, 150*time.Millisecond)
	if err != nil {
		k.t.Fatalf("press %s on %s: %v", button, k.id, err)
	}
	if !res.Raised {
		k.t.Fatalf("press %s on %s raised no incident: %+v", button, k.id, res)
	}
}

// ledState reads the status LED through the admin HTTP endpoint, as a technician's tool would.
func (k *kiosk) ledState() string {
	k.t.Helper()
	resp, err := http.Get("http://" + k.d.AdminAddr() + "/sim/leds")
	if err != nil {
		k.t.Fatalf("GET /sim/leds on %s: %v", k.id, err)
	}
	defer resp.Body.Close()
	var leds []struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Pattern string `json:"pattern"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&leds); err != nil {
		k.t.Fatalf("decode /sim/leds on %s: %v", k.id, err)
	}
	for _, l := range leds {
		if l.Name == "status" {
			return l.State
		}
	}
	k.t.Fatalf("kiosk %s has no status LED in %+v", k.id, leds)
	return ""
}

func (k *kiosk) queueDepth() int {
	k.t.Helper()
	return k.d.Status().QueueDepth
}

// eventually polls cond until it holds or the deadline passes. The deadline is generous because
// CI machines are slow; the benchmarks, not the tests, measure speed.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	poll.Until(t, 20*time.Second, what, cond)
}

func waitLED(t *testing.T, k *kiosk, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("LED of %s to show %q", k.id, want), func() (bool, string) {
		got := k.ledState()
		return got == want, got
	})
}

func waitTickets(t *testing.T, h *hubProc, deviceID string, n int) []ticket {
	t.Helper()
	var got []ticket
	eventually(t, fmt.Sprintf("%d tickets for %s", n, deviceID), func() (bool, string) {
		got = h.tickets(deviceID)
		return len(got) >= n, fmt.Sprintf("%d tickets", len(got))
	})
	return got
}

func tempDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
