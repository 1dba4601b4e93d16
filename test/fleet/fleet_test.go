package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/test/fleet"
	"github.com/kentongan/kentongan/test/netproxy"
	"github.com/kentongan/kentongan/test/poll"
)

// wait is generous: it only matters when something is broken.
const wait = 30 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("FLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startHub runs the real hub in-process on free ports with n simulated kiosks registered.
func startHub(t *testing.T, n int) *hubd.Main {
	t.Helper()
	return startHubIn(t, t.TempDir(), n)
}

// startHubIn is startHub on a given data directory, for a hub restarted on its database.
func startHubIn(t *testing.T, dir string, n int) *hubd.Main {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = testLogger()
	if err := m.ParseFlags(context.Background(), []string{"--data", dir, "--http", "127.0.0.1:0",
		"--mqtt", "127.0.0.1:0", "--mqtts", "off"}); err != nil {
		t.Fatalf("parse flags: %v", err)
	}
	m.Config.Devices = fleet.Devices(fleet.DefaultDevicePrefix, n, 0, 1)
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

func newFleet(t *testing.T, cfg fleet.Config) *fleet.Fleet {
	t.Helper()
	cfg.Logger = testLogger()
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = 100 * time.Millisecond
	}
	f, err := fleet.New(cfg)
	if err != nil {
		t.Fatalf("new fleet: %v", err)
	}
	t.Cleanup(f.Close)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.Connect(ctx); err != nil {
		t.Fatalf("connect fleet: %v", err)
	}
	if err := f.WaitConnected(ctx, cfg.Kiosks); err != nil {
		t.Fatalf("fleet: %d of %d kiosks connected: %v", f.Stats().Connected, cfg.Kiosks, err)
	}
	return f
}

// background runs fn until the test ends.
func background(t *testing.T, fn func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// hubTickets maps the incident ID of every ticket in the hub's store to its ticket ID.
func hubTickets(t *testing.T, m *hubd.Main) map[string]string {
	t.Helper()
	ts, err := m.Store.Tickets(context.Background(), hub.TicketFilter{Limit: hub.MaxLimit})
	if err != nil {
		t.Fatalf("hub tickets: %v", err)
	}
	out := map[string]string{}
	for _, tk := range ts {
		if prev, ok := out[tk.IncidentID]; ok {
			t.Errorf("incident %s has two tickets, %s and %s", tk.IncidentID, prev, tk.ID)
		}
		out[tk.IncidentID] = tk.ID
	}
	return out
}

func waitAcked(t *testing.T, f *fleet.Fleet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.WaitAcked(ctx); err != nil {
		s := f.Stats()
		t.Fatalf("%d of %d incidents not received by the hub: %v", s.Unacked, s.Incidents, err)
	}
}

func TestEveryPressIsAckedWithItsTicket(t *testing.T) {
	t.Parallel()
	const n = 20
	m := startHub(t, n)
	f := newFleet(t, fleet.Config{Broker: m.BrokerURL(), Kiosks: n, Heartbeat: 200 * time.Millisecond, SpreadSources: true})
	background(t, f.RunHeartbeats)
	background(t, f.RunRetries)

	var ids []string
	for i := range n {
		src := fleet.Button
		if i%4 == 0 {
			src = fleet.SMS
		}
		id, err := f.Press(i, src)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	waitAcked(t, f)

	s := f.Stats()
	if s.Incidents != n || s.Acked != n || s.Unacked != 0 || s.Duplicated != 0 || s.Rejected != 0 || s.UnknownAcks != 0 {
		t.Errorf("stats = %+v, want %d incidents all acked once", s, n)
	}
	if s.P50 <= 0 || s.P99 < s.P50 || s.Max < s.P99 {
		t.Errorf("latencies p50 %v p99 %v max %v: want 0 < p50 <= p99 <= max", s.P50, s.P99, s.Max)
	}
	tickets := hubTickets(t, m)
	if len(tickets) != n {
		t.Errorf("hub has %d tickets, want %d", len(tickets), n)
	}
	for _, id := range ids {
		got, ok := f.Received(id)
		if !ok || got != tickets[id] {
			t.Errorf("incident %s: fleet saw ticket %q (received %v), hub has %q", id, got, ok, tickets[id])
		}
	}
	// The hub hears every kiosk's heartbeats.
	poll.Until(t, wait, "heartbeats from every kiosk at the hub", func() (bool, string) {
		heard := 0
		for _, d := range m.Service.Devices(context.Background()) {
			if d.State.HeartbeatSeq >= 2 {
				heard++
			}
		}
		return heard == n, fmt.Sprintf("%d of %d kiosks with 2 heartbeats", heard, n)
	})
}

func TestSMSReportsCarrySenderAndText(t *testing.T) {
	t.Parallel()
	m := startHub(t, 2)
	f := newFleet(t, fleet.Config{Broker: m.BrokerURL(), Kiosks: 2})
	id, err := f.Press(1, fleet.SMS)
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, f)
	ticket, _ := f.Received(id)
	tk, err := m.Store.Ticket(context.Background(), ticket)
	if err != nil {
		t.Fatalf("ticket of %s: %v", id, err)
	}
	if tk.Source != "sms" || tk.Reporter == "" || tk.Text == "" || tk.DeviceID != fleet.DeviceID(fleet.DefaultDevicePrefix, 1) {
		t.Errorf("ticket = source %q reporter %q text %q device %q; want an SMS report from sim-00002",
			tk.Source, tk.Reporter, tk.Text, tk.DeviceID)
	}
}

// Kiosks whose connections are killed while their incidents are unanswered, by a hub restart
// that also loses the broker's sessions, re-send them on reconnect; the restarted hub answers
// with the same tickets, so nothing is lost or doubled.
func TestKilledConnectionCausesResendNotLoss(t *testing.T) {
	t.Parallel()
	const n = 10
	dir := t.TempDir()
	m := startHubIn(t, dir, n)
	p, err := netproxy.New(m.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// No retry timer: only the reconnect can cause the re-sends seen here.
	f := newFleet(t, fleet.Config{Broker: p.URL(), Kiosks: n, RetryInterval: time.Hour})
	background(t, f.RunRetries)

	p.HoldDownstream(true)
	for i := range n {
		if _, err := f.Press(i, fleet.Button); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, wait, "hub to ticket every press", func() (bool, string) {
		got := len(hubTickets(t, m))
		return got == n, fmt.Sprintf("%d tickets", got)
	})
	if s := f.Stats(); s.Acked != 0 {
		t.Fatalf("%d acks got through a held connection", s.Acked)
	}
	p.Refuse(true)
	p.CutAll()
	if err := m.Close(); err != nil {
		t.Fatalf("stop hub: %v", err)
	}
	m = startHubIn(t, dir, n)
	p.SetTarget(m.MQTTAddr())
	p.HoldDownstream(false)
	p.Refuse(false)
	waitAcked(t, f)

	s := f.Stats()
	if s.Resent < n || s.Unacked != 0 || s.Duplicated != 0 || s.Disconnects < n {
		t.Errorf("stats = %+v; want >= %d re-sent and disconnects, none lost or duplicated", s, n)
	}
	if got := len(hubTickets(t, m)); got != n {
		t.Errorf("hub has %d tickets after the re-sends, want %d", got, n)
	}
}

// An incident unanswered for the retry interval is re-sent on the same connection.
func TestUnansweredIncidentIsResentAfterRetryInterval(t *testing.T) {
	t.Parallel()
	m := startHub(t, 3)
	p, err := netproxy.New(m.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	f := newFleet(t, fleet.Config{Broker: p.URL(), Kiosks: 3, RetryInterval: 100 * time.Millisecond})
	background(t, f.RunRetries)
	p.HoldDownstream(true)
	if _, err := f.Press(0, fleet.Button); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, wait, "re-sends while the hub's answer is held", func() (bool, string) {
		s := f.Stats()
		return s.Resent >= 2, fmt.Sprintf("%d re-sent", s.Resent)
	})
	p.HoldDownstream(false)
	waitAcked(t, f)
	if s := f.Stats(); s.Duplicated != 0 || s.Disconnects != 0 {
		t.Errorf("stats = %+v; want no duplicate and no lost connection", s)
	}
	if got := len(hubTickets(t, m)); got != 1 {
		t.Errorf("hub has %d tickets, want 1", got)
	}
}

// Incidents queued before the kiosks connect are published on connect, and drained kiosks
// leave, freeing their connection for those waiting (MaxConns).
func TestQueuedIncidentsDrainWithBoundedConnections(t *testing.T) {
	t.Parallel()
	const n, queued = 12, 3
	m := startHub(t, n)
	f, err := fleet.New(fleet.Config{Broker: m.BrokerURL(), Kiosks: n, MaxConns: 4, DisconnectDrained: true,
		ConnectRetry: 100 * time.Millisecond, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	for i := range n {
		if err := f.Queue(i, queued, fleet.Button); err != nil {
			t.Fatal(err)
		}
	}
	background(t, f.RunRetries)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, f)
	if got := len(hubTickets(t, m)); got != n*queued {
		t.Errorf("hub has %d tickets, want %d", got, n*queued)
	}
	poll.Until(t, wait, "drained kiosks to disconnect", func() (bool, string) {
		c := f.Stats().Connected
		return c == 0, fmt.Sprintf("%d connected", c)
	})
}

func TestBurstPressesEachKioskOnce(t *testing.T) {
	t.Parallel()
	const n = 10
	m := startHub(t, n)
	f := newFleet(t, fleet.Config{Broker: m.BrokerURL(), Kiosks: n})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.RunLoad(ctx, fleet.Load{BurstKiosks: n, BurstWindow: 200 * time.Millisecond, SMSShare: 0.5, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, f)
	perDevice := map[string]int{}
	ts, err := m.Store.Tickets(context.Background(), hub.TicketFilter{Limit: hub.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		perDevice[tk.DeviceID]++
	}
	if len(perDevice) != n {
		t.Errorf("tickets from %d kiosks, want %d: %v", len(perDevice), n, perDevice)
	}
	for d, c := range perDevice {
		if c != 1 {
			t.Errorf("kiosk %s pressed %d times in the burst, want once", d, c)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []fleet.Config{
		{Kiosks: 1},
		{Broker: "tcp://127.0.0.1:1", Kiosks: 0},
		{Broker: "tcp://127.0.0.1:1", Kiosks: 1, DevicePrefix: "Bad Prefix"},
		{Broker: "tcp://127.0.0.1:1", Kiosks: 1, Heartbeat: -time.Second},
		{Broker: "tcp://127.0.0.1:1", Kiosks: 1, MaxConns: -1},
	} {
		if _, err := fleet.New(cfg); !errors.Is(err, fleet.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	f, err := fleet.New(fleet.Config{Broker: "tcp://127.0.0.1:1", Kiosks: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Press(2, fleet.Button); !errors.Is(err, fleet.ErrNoKiosk) {
		t.Errorf("Press(2) in a fleet of 2 = %v, want ErrNoKiosk", err)
	}
	if err := f.RunLoad(context.Background(), fleet.Load{BurstKiosks: 3}); !errors.Is(err, fleet.ErrLoad) {
		t.Errorf("a burst of 3 in a fleet of 2 = %v, want ErrLoad", err)
	}
}

func TestParseRateAndBurst(t *testing.T) {
	for in, want := range map[string]float64{"0.1/s": 0.1, "6/m": 0.1, "36/h": 0.01, "2": 2} {
		if got, err := fleet.ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x/s", "1/d", "-1/s"} {
		if _, err := fleet.ParseRate(in); !errors.Is(err, fleet.ErrLoad) {
			t.Errorf("ParseRate(%q) = %v, want ErrLoad", in, err)
		}
	}
	if k, w, err := fleet.ParseBurst("500:60"); err != nil || k != 500 || w != time.Minute {
		t.Errorf("ParseBurst(500:60) = %d, %v, %v", k, w, err)
	}
	if k, w, err := fleet.ParseBurst("5:250ms"); err != nil || k != 5 || w != 250*time.Millisecond {
		t.Errorf("ParseBurst(5:250ms) = %d, %v, %v", k, w, err)
	}
	for _, in := range []string{"500", "0:1", "a:1", "5:x", "5:-1"} {
		if _, _, err := fleet.ParseBurst(in); !errors.Is(err, fleet.ErrLoad) {
			t.Errorf("ParseBurst(%q) = %v, want ErrLoad", in, err)
		}
	}
}

func TestHubConfigIsReadByTheHub(t *testing.T) {
	const n = 40
	path := t.TempDir() + "/hub.yaml"
	c := fleet.HubConfig{DataDir: "./data", MQTT: "127.0.0.1:0", Devices: fleet.Devices("pos", n, time.Minute, 3)}
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	cfg, err := hubd.LoadConfig(path)
	if err != nil {
		t.Fatalf("the hub refuses the generated config: %v", err)
	}
	if len(cfg.Devices) != n {
		t.Fatalf("%d devices, want %d", len(cfg.Devices), n)
	}
	kec := map[string]bool{}
	for i, d := range cfg.Devices {
		if d.ID != fleet.DeviceID("pos", i) || d.Site.Kecamatan == "" || d.Site.Kelurahan == "" || d.Site.RT == "" ||
			d.Site.Lat > -6 || d.Site.Lat < -6.4 || d.Supervision != 3*time.Minute {
			t.Errorf("device %d = %+v", i, d)
		}
		kec[d.Site.Kecamatan] = true
	}
	if len(kec) != len(fleet.Kecamatan) {
		t.Errorf("devices in %d kecamatan, want all %d", len(kec), len(fleet.Kecamatan))
	}
}

func TestSourceAddrsAreDistinctLoopbackHosts(t *testing.T) {
	seen := map[string]int{}
	for i := range 70_000 {
		ip := fleet.SourceAddr(i).To4()
		if ip == nil || !ip.IsLoopback() || ip[3] == 0 || ip[3] == 255 || ip[2] == 0 || ip[2] == 255 {
			t.Fatalf("SourceAddr(%d) = %v: want a loopback host address", i, ip)
		}
		if j, ok := seen[ip.String()]; ok {
			t.Fatalf("SourceAddr(%d) = SourceAddr(%d) = %v", i, j, ip)
		}
		seen[ip.String()] = i
	}
}
