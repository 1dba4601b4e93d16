package hubd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

func testLogger() *slog.Logger {
	if os.Getenv("HUB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newHub returns a configured, not yet running hub on dir with free ports.
func newHub(t *testing.T, dir string, devices ...string) *hubd.Main {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = testLogger()
	if err := m.ParseFlags(context.Background(), []string{"--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		t.Fatalf("parse flags: %v", err)
	}
	for _, id := range devices {
		m.Config.Devices = append(m.Config.Devices, hubd.DeviceConfig{ID: id, Name: "Pos " + id})
	}
	return m
}

// startHub runs a hub and closes it at the end of the test.
func startHub(t *testing.T, dir string, devices ...string) *hubd.Main {
	t.Helper()
	m := newHub(t, dir, devices...)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run hub: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	return m
}

// kiosk is a paho client behaving like kentongand on the wire: client ID kentongand-<id>, its
// ack topic subscribed at QoS 1.
type kiosk struct {
	t  *testing.T
	id string
	c  paho.Client

	mu   sync.Mutex
	acks []mqtt.Ack
	bad  []string // ack payloads that did not decode
}

func newKiosk(t *testing.T, brokerURL, id string) *kiosk {
	t.Helper()
	k := &kiosk{t: t, id: id}
	opts := paho.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID("kentongand-" + id).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(30 * time.Second)
	k.c = paho.NewClient(opts)
	if tok := k.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("kiosk %s: connect to %s: %v", id, brokerURL, tok.Error())
	}
	t.Cleanup(func() { k.c.Disconnect(0) })
	tok := k.c.Subscribe(mqtt.Topic(id, mqtt.KindAck), mqtt.QoSAck, func(_ paho.Client, m paho.Message) {
		a, err := mqtt.DecodeAck(m.Payload())
		k.mu.Lock()
		defer k.mu.Unlock()
		if err != nil {
			k.bad = append(k.bad, string(m.Payload()))
			return
		}
		k.acks = append(k.acks, a)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("kiosk %s: subscribe: %v", id, tok.Error())
	}
	return k
}

func (k *kiosk) incident() mqtt.Incident {
	id, err := mqtt.NewIncidentID()
	if err != nil {
		k.t.Fatal(err)
	}
	return mqtt.Incident{
		V: mqtt.SchemaVersion, ID: id, DeviceID: k.id, Source: mqtt.SourceButton, Button: "darurat",
		OccurredAt: time.Now(), Attempt: 1,
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := mqtt.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishRaw publishes on one of the kiosk's topics and waits for the broker's PUBACK.
func (k *kiosk) publishRaw(kind mqtt.Kind, payload []byte) {
	k.t.Helper()
	k.publishTo(mqtt.Topic(k.id, kind), payload)
}

func (k *kiosk) publishTo(topic string, payload []byte) {
	k.t.Helper()
	tok := k.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		k.t.Fatalf("kiosk %s: publish %s: %v", k.id, topic, tok.Error())
	}
}

func (k *kiosk) send(in mqtt.Incident) {
	k.t.Helper()
	k.publishRaw(mqtt.KindIncident, encode(k.t, in))
}

func (k *kiosk) snapshot() []mqtt.Ack {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]mqtt.Ack(nil), k.acks...)
}

// waitAcks waits until cond holds over the acks received so far.
func (k *kiosk) waitAcks(what string, timeout time.Duration, cond func([]mqtt.Ack) bool) []mqtt.Ack {
	k.t.Helper()
	var acks []mqtt.Ack
	poll.Until(k.t, timeout, "kiosk "+k.id+": "+what, func() (bool, string) {
		acks = k.snapshot()
		k.mu.Lock()
		bad := k.bad
		k.mu.Unlock()
		return cond(acks), fmt.Sprintf("%d acks, newest %+v, undecodable %q", len(acks), truncate(acks), bad)
	})
	return acks
}

func truncate(acks []mqtt.Ack) []mqtt.Ack {
	if len(acks) > 5 {
		return acks[len(acks)-5:]
	}
	return acks
}

// ackFor returns the acks about one incident, in arrival order.
func ackFor(acks []mqtt.Ack, incidentID string) []mqtt.Ack {
	var out []mqtt.Ack
	for _, a := range acks {
		if a.IncidentID == incidentID {
			out = append(out, a)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	poll.Until(t, timeout, what, cond)
}

// api is a minimal HTTP client for the hub's API, signed in with an administrator's token.
type api struct {
	t     *testing.T
	base  string
	token string
}

func newAPI(t *testing.T, m *hubd.Main) *api { return newAPIAs(t, m, "test-admin") }

// newAPIAs is newAPI signed in as the operator (an admin) of that name: actions are recorded
// as theirs.
func newAPIAs(t *testing.T, m *hubd.Main, name string) *api {
	t.Helper()
	token, err := m.IssueToken(context.Background(), name, account.RoleAdmin, "")
	if err != nil {
		t.Fatalf("API token: %v", err)
	}
	return &api{t: t, base: "http://" + m.HTTPAddr(), token: token}
}

// do sends a request and decodes a JSON answer into out (if not nil); it returns the status.
func (a *api) do(method, path, body string, out any) int {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func (a *api) metrics() string {
	a.t.Helper()
	resp, err := http.Get(a.base + "/metrics")
	if err != nil {
		a.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET /metrics: %s", resp.Status)
	}
	return string(raw)
}

// metricLine reports whether the exposition has exactly this sample line.
func metricLine(exposition, line string) bool {
	for _, l := range strings.Split(exposition, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (e apiError) String() string { return fmt.Sprintf("%s: %s", e.Error.Code, e.Error.Message) }
