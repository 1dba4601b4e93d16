package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

const testDevice = "ciakar-rw03"

// testConfig is a kiosk with fast timings. brokerURL may point at nothing.
func testConfig(t *testing.T, brokerURL string) Config {
	t.Helper()
	return Config{
		DeviceID: testDevice,
		Broker: BrokerConfig{
			URL:                  brokerURL,
			ConnectRetryInterval: 50 * time.Millisecond,
			MaxReconnectInterval: 200 * time.Millisecond,
		},
		GPIO:  GPIOConfig{Driver: DriverSim},
		Store: StoreConfig{Dir: t.TempDir()},
		Admin: AdminConfig{Listen: "127.0.0.1:0"},
		Buttons: []Button{
			{Name: "darurat", Pin: 17, HoldMS: 100, DebounceMS: 5},
			{Name: "kebakaran", Category: "fire", Pin: 27, HoldMS: 100, DebounceMS: 5},
		},
		LEDs: []LED{{Name: "status", Pin: 22}},
		// Long, so that tests counting publishes see no retries unless they ask for them.
		RetryInterval:     time.Minute,
		HeartbeatInterval: time.Minute,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	w := &afterTestWriter{w: t.Output()}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// afterTestWriter drops what is written after its test ended: paho may still run a reconnect
// attempt, and call our handlers, for a moment after Disconnect returns, and the testing
// package panics on output from a finished test.
type afterTestWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (a *afterTestWriter) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return len(p), nil
	}
	return a.w.Write(p)
}

func (a *afterTestWriter) stop() {
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
}

// slogTo logs to w as well as the test's output.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startDaemon(t *testing.T, cfg Config, opts ...Option) *Daemon {
	t.Helper()
	d := newDaemon(t, cfg, opts...)
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d
}

func newDaemon(t *testing.T, cfg Config, opts ...Option) *Daemon {
	t.Helper()
	d, err := New(cfg, append([]Option{WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 15*time.Second, what, cond)
}

func ledState(d *Daemon) string {
	for _, l := range d.LEDs() {
		if l.Name == "status" {
			return l.State
		}
	}
	return ""
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// broker is an in-process MQTT broker that records everything published under the Kentongan
// root and plays the hub's part by publishing acks and commands.
type broker struct {
	t    *testing.T
	srv  *mochi.Server
	Addr string

	mu   sync.Mutex
	msgs []message
}

func startBroker(t *testing.T, addr string) *broker {
	t.Helper()
	srv := mochi.New(&mochi.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, srv: srv, Addr: tcp.Address()}
	err := srv.Subscribe(mqtt.Root+"/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.msgs = append(b.msgs, message{Topic: pk.TopicName, Payload: append([]byte(nil), pk.Payload...), Retain: pk.FixedHeader.Retain})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *broker) URL() string { return "tcp://" + b.Addr }

func (b *broker) messages(kind mqtt.Kind) []message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []message
	for _, m := range b.msgs {
		if _, k, err := mqtt.ParseTopic(m.Topic); err == nil && k == kind {
			out = append(out, m)
		}
	}
	return out
}

func (b *broker) incidents() []mqtt.Incident {
	b.t.Helper()
	var out []mqtt.Incident
	for _, m := range b.messages(mqtt.KindIncident) {
		in, err := mqtt.DecodeIncident(testDevice, m.Payload)
		if err != nil {
			b.t.Fatalf("daemon published an invalid incident: %v", err)
		}
		out = append(out, in)
	}
	return out
}

func (b *broker) waitIncidents(n int) []mqtt.Incident {
	b.t.Helper()
	var got []mqtt.Incident
	eventually(b.t, "incident publishes", func() bool {
		got = b.incidents()
		return len(got) >= n
	})
	return got
}

func (b *broker) presences() []string {
	var out []string
	for _, m := range b.messages(mqtt.KindPresence) {
		p, err := mqtt.DecodePresence(testDevice, m.Payload)
		if err != nil {
			b.t.Fatalf("invalid presence: %v", err)
		}
		out = append(out, p.State)
	}
	return out
}

func (b *broker) ack(id string, status mqtt.AckStatus, errText string) {
	b.t.Helper()
	payload, err := mqtt.Encode(mqtt.Ack{V: mqtt.SchemaVersion, IncidentID: id, TicketID: "tk-" + id[:8],
		TicketNumber: "112-0042", Status: status, At: time.Now().UTC(), Error: errText})
	if err != nil {
		b.t.Fatal(err)
	}
	b.publish(mqtt.Topic(testDevice, mqtt.KindAck), payload)
}

func (b *broker) publish(topic string, payload []byte) {
	b.t.Helper()
	if err := b.srv.Publish(topic, payload, false, 1); err != nil {
		b.t.Fatal(err)
	}
}

// subscribed reports whether the daemon's ack subscription is in place, so that acks sent now
// reach it.
func (b *broker) subscribed() bool {
	return len(b.srv.Topics.Subscribers(mqtt.Topic(testDevice, mqtt.KindAck)).Subscriptions) > 0
}

// getJSON fetches an admin endpoint and decodes the answer.
func getJSON(t *testing.T, method, url string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode
}
