package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/test/netproxy"
	"github.com/kentongan/kentongan/test/proc"
)

// The tests in this file run the real binaries as separate processes, so that a kiosk can be
// killed the way a power cut kills it: SIGKILL, no clean-up, no goodbye to the broker.

// binaries builds kentongand and kentongan-hub once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	return proc.Build(t, "./cmd/kentongand", "./cmd/kentongan-hub")
}

func TestMain(m *testing.M) { proc.Main(m) }

// startLogWait is how long a binary may take to log that it listens, on a loaded CI machine.
const startLogWait = 20 * time.Second

// startProc starts one of the binaries; with E2E_LOG set its log is echoed.
func startProc(t *testing.T, name string, args ...string) *proc.Proc {
	t.Helper()
	return proc.StartWith(t, proc.Options{Echo: os.Getenv("E2E_LOG") != ""}, filepath.Join(binaries(t), name), args...)
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	reHTTP   = regexp.MustCompile(`msg="HTTP API listening".* addr=(\S+)`)
	reBroker = regexp.MustCompile(`msg="embedded MQTT broker listening".* addr=(\S+)`)
	reAdmin  = regexp.MustCompile(`msg="kentongand started".* admin=(\S+)`)
)

func kioskYAML(storeDir, brokerURL string) string {
	return fmt.Sprintf(`device_id: ciakar-rw03
name: Pos Ronda RW 03 Ciakar
broker:
  url: %s
  connect_retry_interval: 200ms
  max_reconnect_interval: 500ms
gpio:
  driver: sim
buttons:
  - {name: medis, category: medical, pin: 22, hold_ms: 50}
leds:
  - {name: status, pin: 23}
store:
  dir: %s
admin:
  listen: 127.0.0.1:0
retry_interval: 1s
`, brokerURL, storeDir)
}

func adminJSON(t *testing.T, method, url string, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, body, err)
		}
	}
}

func binaryLED(t *testing.T, admin string) string {
	t.Helper()
	var leds []struct{ Name, State string }
	adminJSON(t, http.MethodGet, "http://"+admin+"/sim/leds", &leds)
	for _, l := range leds {
		if l.Name == "status" {
			return l.State
		}
	}
	t.Fatalf("no status LED in %+v", leds)
	return ""
}

// A resident presses while the hub is unreachable; the kiosk loses power (SIGKILL) with the LED
// on "pending". After the restart the incident comes back from disk, reaches the hub once the
// link is back, and becomes exactly one ticket.
func TestBinaryKioskPowerCutBeforeAck(t *testing.T) {
	dir := t.TempDir()
	hubCfg := writeFile(t, filepath.Join(dir, "hub.yaml"), "devices:\n  - {id: ciakar-rw03, name: Pos Ronda RW 03 Ciakar, site: {kecamatan: Panongan, kelurahan: Ciakar, rw: \"03\", rt: \"01\"}}\n")
	hubBin := startProc(t, "kentongan-hub", "--config", hubCfg, "--data", filepath.Join(dir, "hub"), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	httpAddr := hubBin.WaitLine(reHTTP, startLogWait)
	brokerAddr := hubBin.WaitLine(reBroker, startLogWait)
	h := newRemoteHub(t, filepath.Join(dir, "hub"), httpAddr)

	proxy, err := netproxy.New(brokerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Refuse(true)

	kioskCfg := writeFile(t, filepath.Join(dir, "kiosk.yaml"), kioskYAML(filepath.Join(dir, "kiosk"), proxy.URL()))
	k1 := startProc(t, "kentongand", "--config", kioskCfg)
	admin := k1.WaitLine(reAdmin, startLogWait)
	var press struct {
		Raised     bool   `json:"raised"`
		IncidentID string `json:"incident_id"`
	}
	adminJSON(t, http.MethodPost, "http://"+admin+"/sim/buttons/medis/press?hold_ms=200", &press)
	if !press.Raised || press.IncidentID == "" {
		t.Fatalf("press answered %+v, want a raised incident", press)
	}
	eventually(t, "LED pending", func() (bool, string) {
		s := binaryLED(t, admin)
		return s == "pending", s
	})
	k1.Kill()

	k2 := startProc(t, "kentongand", "--config", kioskCfg)
	admin2 := k2.WaitLine(reAdmin, startLogWait)
	var st struct {
		QueueDepth int `json:"queue_depth"`
	}
	adminJSON(t, http.MethodGet, "http://"+admin2+"/status", &st)
	if st.QueueDepth != 1 {
		t.Fatalf("after the power cut queue_depth = %d, want the 1 incident from disk", st.QueueDepth)
	}
	proxy.Refuse(false)
	eventually(t, "LED received", func() (bool, string) {
		s := binaryLED(t, admin2)
		return s == "received", s
	})
	var tickets []ticket
	eventually(t, "one ticket", func() (bool, string) {
		tickets = h.list(t)
		return len(tickets) >= 1, fmt.Sprint(len(tickets))
	})
	time.Sleep(1500 * time.Millisecond) // past one retry_interval: a stray re-send would show
	tickets = h.list(t)
	if len(tickets) != 1 || tickets[0].IncidentID != press.IncidentID || tickets[0].Category != "medical" {
		t.Fatalf("tickets = %+v, want exactly one medical ticket for incident %s", tickets, press.IncidentID)
	}
}

// remoteHub reads the API of a hub running as a separate process.
type remoteHub struct{ base, token string }

// newRemoteHub makes an operator and an API token with the hub binary's own user and token
// commands, on the running hub's data directory, as an administrator would.
func newRemoteHub(t *testing.T, dataDir, httpAddr string) *remoteHub {
	t.Helper()
	bin := filepath.Join(binaries(t), "kentongan-hub")
	add := exec.Command(bin, "user", "add", "--data", dataDir, "--name", "operator-e2e", "--role", "operator")
	add.Stdin = strings.NewReader("kata-sandi-e2e-123\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("kentongan-hub user add: %v\n%s", err, out)
	}
	var stderr strings.Builder
	tok := exec.Command(bin, "token", "add", "--data", dataDir, "--user", "operator-e2e", "--name", "e2e")
	tok.Stderr = &stderr
	out, err := tok.Output()
	if err != nil {
		t.Fatalf("kentongan-hub token add: %v\n%s", err, stderr.String())
	}
	return &remoteHub{base: "http://" + httpAddr, token: strings.TrimSpace(string(out))}
}

func (h *remoteHub) list(t *testing.T) []ticket {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, h.base+"/api/v1/tickets", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET tickets: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []ticket
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET tickets: %s: %s", resp.Status, body)
	}
	return out
}

// A config file that cannot be used stops each binary at once, with a message naming the key.
func TestBinaryConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		bin, config, want string
	}{
		{"kentongand", "name: no id\nbroker: {url: tcp://127.0.0.1:1}\ngpio: {driver: sim}\nstore: {dir: /tmp/x}\n", "device_id"},
		{"kentongand", "device_id: a\nbroker: {url: tcp://127.0.0.1:1}\ngpio: {driver: sim}\nstore: {dir: /tmp/x}\nadmin: {listen: 0.0.0.0:8081}\n", "admin.listen"},
		{"kentongand", "device_id: a\nbroker: {url: tcp://127.0.0.1:1}\ngpio: {driver: sim}\nstore: {dir: /tmp/x}\nbutons: []\n", "butons"},
		{"kentongan-hub", "devices:\n  - {name: tanpa id}\n", "devices[0].id"},
		{"kentongan-hub", "http:\n  lisen: :8080\n", "http.lisen"},
	}
	for i, tt := range tests {
		cfg := writeFile(t, filepath.Join(dir, fmt.Sprintf("c%d.yaml", i)), tt.config)
		cmd := exec.Command(filepath.Join(binaries(t), tt.bin), "--config", cfg)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s with %q started; want it refused", tt.bin, tt.config)
			continue
		}
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%s refused %q with %q; want the message to name %q", tt.bin, tt.config, out, tt.want)
		}
	}
	for _, bin := range []string{"kentongand", "kentongan-hub"} {
		out, err := exec.Command(filepath.Join(binaries(t), bin), "--config", filepath.Join(dir, "missing.yaml")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "missing.yaml") {
			t.Errorf("%s with a missing config: err=%v, output %q; want a refusal naming the file", bin, err, out)
		}
	}
}
