package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/provisioning"
	"github.com/kentongan/kentongan/provisioning/laptop"
	"github.com/kentongan/kentongan/provisioning/provtest"
	"github.com/kentongan/kentongan/test/poll"
)

var provSite = hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "02"}

// startProvHub is a hub with its TLS device listener, which enrolled kiosks are sent to.
func startProvHub(t *testing.T) *hubd.Main { return startProvHubClock(t, nil) }

func startProvHubClock(t *testing.T, clock hub.Clock) *hubd.Main {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = testLogger("hub")
	if clock != nil {
		m.Clock = clock
	}
	args := []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--mqtts", "127.0.0.1:0"}
	if err := m.ParseFlags(context.Background(), args); err != nil {
		t.Fatalf("hub flags: %v", err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("start hub: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func enrollToken(t *testing.T, m *hubd.Main, ttl time.Duration) string {
	t.Helper()
	_, secret, err := m.Enroll.CreateToken(context.Background(), "admin-e2e", enroll.NewToken{Site: provSite, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// provKiosk is a blank kiosk with the sim GPIO driver, in provisioning mode.
type provKiosk struct {
	p      *daemon.Provisioner
	serial string
}

const provBase = `gpio:
  driver: sim
admin:
  listen: 127.0.0.1:0
broker:
  connect_retry_interval: 200ms
  max_reconnect_interval: 500ms
  keepalive: 2s
retry_interval: 500ms
`

func newProvKiosk(t *testing.T, dir, serial string) *provKiosk {
	t.Helper()
	p, err := daemon.NewProvisioner(daemon.ProvisionConfig{StateDir: dir, Base: []byte(provBase),
		Hardware: func() (provisioning.Hardware, error) {
			return provisioning.Hardware{Board: "Raspberry Pi 4 Model B Rev 1.4", Serial: serial}, nil
		},
		PressTimeout: 30 * time.Second, HubTimeout: 30 * time.Second,
		Options: []daemon.Option{daemon.WithLogger(testLogger("kiosk-" + serial))}}, testLogger("prov-"+serial))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &provKiosk{p: p, serial: serial}
}

// cut pulls the cable when the laptop is about to send (before) or has just sent (after) its
// request of type typ, as a technician tripping over the cable would.
type cut struct {
	typ    provisioning.Type
	before bool
}

type cuttingWriter struct {
	w     io.Writer
	cable *provtest.Cable
	cut   *cut
	mu    sync.Mutex
	fired bool
}

func (c *cuttingWriter) Write(b []byte) (int, error) {
	c.mu.Lock()
	fire := c.cut != nil && !c.fired && len(b) > 5 && provisioning.Type(b[5]) == c.cut.typ
	if fire {
		c.fired = true
	}
	c.mu.Unlock()
	if fire && c.cut.before {
		c.cable.Pull()
		return 0, errors.New("cable pulled")
	}
	n, err := c.w.Write(b)
	if fire {
		time.Sleep(50 * time.Millisecond) // let the request reach the kiosk
		c.cable.Pull()
	}
	return n, err
}

// provision runs `kentonganctl provision`'s flow against k over a fresh cable, pressing the
// buttons the self-test asks for. It returns the run's result, error and printed text.
func provision(t *testing.T, m *hubd.Main, k *provKiosk, token string, c *cut) (laptop.Result, error, string) {
	t.Helper()
	cable, err := provtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer cable.Pull()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	served := make(chan struct{})
	go func() {
		defer close(served)
		k.p.Serve(ctx, cable.Device)
	}()
	// Buttons are pressed as the self-test asks, as the technician would.
	pressCtx, stopPressing := context.WithCancel(ctx)
	defer stopPressing()
	go func() {
		for pressCtx.Err() == nil {
			if b := k.p.SelfTestPrompt(); b != "" {
				k.p.PressSim(pressCtx, b, 150*time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	line := struct {
		io.Reader
		io.Writer
	}{cable.Laptop, &cuttingWriter{w: cable.Laptop, cable: cable, cut: c}}
	res, err := laptop.Run(ctx, laptop.Options{Line: line, Port: "pty", Hub: "http://" + m.HTTPAddr(), Token: token,
		Site: &provSite, Out: &out, Client: "e2e", LineTimeout: time.Second, Attempts: 3, PollInterval: 50 * time.Millisecond})
	cable.Pull()
	<-served
	return res, err, out.String()
}

func fleetBySerial(t *testing.T, m *hubd.Main, serial string) []enroll.FleetDevice {
	t.Helper()
	all, err := m.Enroll.Fleet(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []enroll.FleetDevice
	for _, d := range all {
		if d.Hardware.Serial == serial {
			out = append(out, d)
		}
	}
	return out
}

// TestProvisionBlankKiosk: blank kiosk → provisioned over a pty → self-test with its buttons
// pressed → the test report is a test ticket at the hub, never routed → a real press is routed.
func TestProvisionBlankKiosk(t *testing.T) {
	m := startProvHub(t)
	k := newProvKiosk(t, t.TempDir(), "10000000e2e00001")
	res, err, out := provision(t, m, k, enrollToken(t, m, time.Hour), nil)
	t.Log("\n" + out)
	if err != nil || !res.Passed {
		t.Fatalf("provisioning: %v, passed %v", err, res.Passed)
	}
	for _, want := range []string{"[1/5]", "TEKAN TOMBOL \"darurat\"", "RINGKASAN / SUMMARY", "SELESAI / DONE"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	id := res.DeviceID
	if devs := fleetBySerial(t, m, k.serial); len(devs) != 1 || devs[0].ID != id {
		t.Fatalf("fleet: %+v, want one device %s", devs, id)
	}
	h := &hubProc{t: t, m: m, base: "http://" + m.HTTPAddr()}
	tok, err := m.IssueToken(context.Background(), "operator-e2e", "operator", "")
	if err != nil {
		t.Fatal(err)
	}
	h.token = tok
	var testTicket *ticketAgency
	eventually(t, "the self-test's ticket", func() (bool, string) {
		for _, tk := range h.ticketsAgency(id) {
			if tk.Test {
				testTicket = &tk
				return true, ""
			}
		}
		return false, ""
	})
	if testTicket.Agency != "" && testTicket.Agency != hub.AgencyTriage {
		t.Fatalf("the test ticket was routed to %q", testTicket.Agency)
	}
	// A real press of the fire button, held past its hold time, is routed.
	d := k.p.Daemon()
	if d == nil {
		t.Fatal("no daemon runs after provisioning")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r, err := d.SimPress(ctx, "kebakaran", 2500*time.Millisecond); err != nil || !r.Raised {
		t.Fatalf("press: %+v, %v", r, err)
	}
	eventually(t, "the fire ticket, routed", func() (bool, string) {
		for _, tk := range h.ticketsAgency(id) {
			if !tk.Test && tk.Category == "fire" {
				return tk.Agency != "" && tk.Agency != hub.AgencyTriage, tk.Agency
			}
		}
		return false, "no fire ticket"
	})
}

// TestProvisionCablePulled: the cable pulled at each step of the protocol, then the same command
// run again: the kiosk ends provisioned exactly once, with no orphan device at the hub.
func TestProvisionCablePulled(t *testing.T) {
	m := startProvHub(t)
	for i, c := range []cut{
		{provisioning.TypeHello, false},
		{provisioning.TypeCSR, false},
		{provisioning.TypeInstall, true}, // enrolled at the hub, nothing stored on the kiosk
		{provisioning.TypeInstall, false},
		{provisioning.TypeSelfTest, false},
		{provisioning.TypePoll, false},
	} {
		name := fmt.Sprintf("%s-before=%v", c.typ, c.before)
		t.Run(name, func(t *testing.T) {
			k := newProvKiosk(t, t.TempDir(), fmt.Sprintf("10000000cafe%04d", i))
			token := enrollToken(t, m, time.Hour)
			_, err, out := provision(t, m, k, token, &c)
			if !errors.Is(err, provisioning.ErrClosed) {
				t.Fatalf("first run: %v, want the pulled cable\n%s", err, out)
			}
			if !strings.Contains(out, "aman diulang") {
				t.Errorf("the technician is not told to run again:\n%s", out)
			}
			res, err, out := provision(t, m, k, token, nil)
			if err != nil || !res.Passed {
				t.Fatalf("second run: %v\n%s", err, out)
			}
			devs := fleetBySerial(t, m, k.serial)
			if len(devs) != 1 || devs[0].ID != res.DeviceID {
				t.Fatalf("fleet for this board: %+v, want exactly %s", devs, res.DeviceID)
			}
			poll.True(t, 20*time.Second, "the kiosk connected as "+res.DeviceID, func() bool {
				d := k.p.Daemon()
				return d != nil && d.Status().DeviceID == res.DeviceID && d.Status().Connected
			})
		})
	}
}

// TestProvisionRefusedToken: an expired token and a token already spent on another board are
// refused with a clear message, and the kiosk is left blank.
func TestProvisionRefusedToken(t *testing.T) {
	clock := &offsetClock{}
	m := startProvHubClock(t, clock)
	spent := enrollToken(t, m, time.Hour)
	if _, err, out := provision(t, m, newProvKiosk(t, t.TempDir(), "10000000aaaa0001"), spent, nil); err != nil {
		t.Fatalf("first kiosk: %v\n%s", err, out)
	}
	k := newProvKiosk(t, t.TempDir(), "10000000aaaa0002")
	_, err, out := provision(t, m, k, spent, nil)
	if !errors.Is(err, enroll.ErrTokenUsed) || !strings.Contains(out, "sudah dipakai") {
		t.Fatalf("reused token: %v\n%s", err, out)
	}
	expiring := enrollToken(t, m, time.Minute)
	clock.advance(2 * time.Minute)
	_, err, out = provision(t, m, k, expiring, nil)
	if !errors.Is(err, enroll.ErrTokenExpired) || !strings.Contains(out, "kedaluwarsa") {
		t.Fatalf("expired token: %v\n%s", err, out)
	}
	if k.p.Daemon() != nil {
		t.Fatal("a refused kiosk runs a daemon")
	}
}

type ticketAgency struct {
	ticket
	Agency string `json:"agency"`
	Test   bool   `json:"test"`
}

func (h *hubProc) ticketsAgency(deviceID string) []ticketAgency {
	h.t.Helper()
	var out []ticketAgency
	h.getJSON(h.base+"/api/v1/tickets?limit=1000&device_id="+deviceID, &out)
	return out
}

// offsetClock is the wall clock moved on by what a test asks.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.off)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}
