package vkiosk_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubclient"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/test/poll"
	"github.com/kentongan/kentongan/test/vkiosk"
)

// Deadlines are generous: the guest is emulated (TCG) on a 2-core machine that is running other
// tests at the same time. They only matter when something is broken.
const (
	onlineTimeout = 90 * time.Second
	ticketTimeout = time.Minute
	ledTimeout    = time.Minute
)

// Device IDs, one per test, registered at the hub up front. Each test starts kentongand afresh
// under its own ID with its own store, so that no test sees another's tickets or LED state.
var devices = []string{"vk-selftest", "vk-hold", "vk-brush", "vk-bounce", "vk-stuck", "vk-sms"}

// env is one guest, one hub and one simulated modem for the whole test binary: a boot costs
// seconds, and QEMU holds the modem's pty from the start.
var env struct {
	once  sync.Once
	skip  string // why the virtual kiosk does not run here: a skip, or in CI a failure
	err   error
	dir   string
	g     *vkiosk.Guest
	modem *modemtest.Sim // on the guest's vkiosk.ModemPort
	hub   *hubd.Main
	api   *hubclient.Client
	token string // of the operator api acts as
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if env.g != nil {
		if err := env.g.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close virtual kiosk:", err)
		}
	}
	// After the guest: QEMU holds the modem's pty, and a modem hung up under a running guest
	// would only log errors.
	if env.modem != nil {
		if err := env.modem.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close modem simulator:", err)
		}
	}
	if env.hub != nil {
		if err := env.hub.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close hub:", err)
		}
	}
	if env.dir != "" {
		if os.Getenv("VKIOSK_KEEP") != "" {
			fmt.Fprintln(os.Stderr, "virtual kiosk: kept", env.dir)
		} else {
			os.RemoveAll(env.dir)
		}
	}
	os.Exit(code)
}

func logger(name string) *slog.Logger {
	if os.Getenv("VKIOSK_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("proc", name)
}

// guest boots the virtual kiosk on first use. Without the kernel artefacts it skips the test
// with the command that builds them, except in CI, where a missing virtual kiosk is a failure.
func guest(t *testing.T) *vkiosk.Guest {
	t.Helper()
	if testing.Short() {
		t.Skip("virtual kiosk skipped in -short mode")
	}
	env.once.Do(setup)
	if env.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the virtual kiosk cannot run: %s", env.skip)
		}
		t.Skip(env.skip)
	}
	if env.err != nil {
		t.Fatal(env.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(env.g.Diagnostics(80))
		}
	})
	return env.g
}

func setup() {
	art, err := vkiosk.FindArtefacts(os.Getenv("KENTONGAN_VKIOSK_DIR"))
	if errors.Is(err, vkiosk.ErrNoArtefacts) && canBuild() {
		// On a fresh Debian machine, as root, the README's one test command builds what it
		// needs rather than skip the kernel tests.
		fmt.Fprintf(os.Stderr, "vkiosk: kernel artefacts missing; running build.sh (about 30 s and 225 MB the first time)\n")
		cmd := exec.Command("bash", "build.sh")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if berr := cmd.Run(); berr != nil {
			env.err = fmt.Errorf("build.sh: %w", berr)
			return
		}
		art, err = vkiosk.FindArtefacts(os.Getenv("KENTONGAN_VKIOSK_DIR"))
	}
	if errors.Is(err, vkiosk.ErrNoArtefacts) {
		env.skip = fmt.Sprintf("%v; build them with test/vkiosk/build.sh (as root on Debian 12: installs qemu-system-x86, downloads about 225 MB once into %s)", err, vkiosk.CacheDir())
		return
	}
	if err != nil {
		env.err = err
		return
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		env.skip = fmt.Sprintf("%v; install it with test/vkiosk/build.sh", err)
		return
	}
	env.dir, err = os.MkdirTemp("", "vkiosk-test-")
	if err != nil {
		env.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	initramfs := filepath.Join(env.dir, "initramfs.cpio")
	if err := vkiosk.BuildInitramfs(ctx, initramfs, vkiosk.InitramfsOptions{
		Artefacts:  art,
		Kentongand: os.Getenv("KENTONGAN_VKIOSK_KENTONGAND"),
	}); err != nil {
		env.err = err
		return
	}

	// The hub's broker listens on the host's loopback, which the guest reaches as 10.0.2.2.
	m := hubd.NewMain()
	m.Logger = logger("hub")
	if err := m.ParseFlags(ctx, []string{"--data", filepath.Join(env.dir, "hub"),
		"--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		env.err = fmt.Errorf("hub flags: %w", err)
		return
	}
	for _, id := range devices {
		m.Config.Devices = append(m.Config.Devices, hubd.DeviceConfig{ID: id, Name: "Pos virtual " + id})
	}
	if err := m.Run(ctx); err != nil {
		env.err = fmt.Errorf("start hub: %w", err)
		return
	}
	env.hub = m
	// The API wants a user: an operator, as the one who takes the 112 calls.
	env.token, err = m.IssueToken(ctx, "operator-vkiosk", account.RoleOperator, "")
	if err != nil {
		env.err = fmt.Errorf("hub API token: %w", err)
		return
	}
	env.api = hubclient.New("http://"+m.HTTPAddr(), &http.Client{Timeout: 30 * time.Second}).WithToken(env.token)

	// The modem exists before the guest: QEMU opens its pty when it starts.
	env.modem, err = modemtest.New(modemtest.Options{Logger: logger("modem")})
	if err != nil {
		env.err = fmt.Errorf("modem simulator: %w", err)
		return
	}
	env.g, err = vkiosk.Boot(ctx, vkiosk.Options{
		Artefacts: art,
		Initramfs: initramfs,
		WorkDir:   env.dir,
		ModemPath: env.modem.Path(),
		Logger:    logger("qemu"),
	})
	if err != nil {
		env.err = err
		return
	}
	fmt.Fprintf(os.Stderr, "virtual kiosk: kernel %s, %s (%s) with %d lines, ready %v after QEMU started (guest uptime %d ms)\n",
		env.g.Health.Kernel, env.g.Health.Chip, env.g.Health.DevName, env.g.Health.Lines,
		env.g.BootTime.Round(time.Millisecond), env.g.Health.BootMS)
}

// ctx is a context for one step of a test, bounded so that a hung guest fails the test instead
// of the whole test binary's timeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// Pins of the kiosk in the guest: the BCM numbers of docs/config.md's example.
const (
	pinDarurat = 17
	pinStatus  = 23
)

// kioskConfig is kentongand's configuration for one test, with the gpiocdev backend on the
// simulated chip. buttonExtra is appended to the button's entry (indented YAML keys), extra to
// the whole (top-level YAML keys).
func kioskConfig(id, chip string, brokerPort int, buttonExtra, extra string) []byte {
	return fmt.Appendf(nil, `device_id: %[1]s
name: Pos virtual %[1]s
broker:
  url: tcp://%[2]s:%[3]d
  keepalive: 5s
  connect_retry_interval: 500ms
  max_reconnect_interval: 2s
gpio:
  driver: gpiocdev
  chip: %[4]s
buttons:
  - name: darurat
    pin: %[5]d
    hold_ms: 2000
    debounce_ms: 30
%[6]s
leds:
  - name: status
    pin: %[7]d
store:
  dir: /var/lib/kentongand/%[1]s
heartbeat_interval: 1s
retry_interval: 3s
%[8]s`, id, vkiosk.HostAddr, brokerPort, chip, pinDarurat, buttonExtra, pinStatus, extra)
}

// startKiosk starts kentongand in the guest as device id and waits until the hub sees it online.
// buttonExtra and extra go into its configuration as kioskConfig says.
func startKiosk(t *testing.T, g *vkiosk.Guest, id, buttonExtra, extra string) {
	t.Helper()
	_, portStr, err := net.SplitHostPort(env.hub.MQTTAddr())
	if err != nil {
		t.Fatalf("hub broker address %q: %v", env.hub.MQTTAddr(), err)
	}
	var port int
	fmt.Sscan(portStr, &port)
	cfg := kioskConfig(id, g.Health.Chip, port, buttonExtra, extra)
	if _, err := g.StartDaemon(ctx(t), cfg); err != nil {
		t.Fatalf("start kentongand as %s: %v\nconfig:\n%s", id, err, cfg)
	}
	t.Cleanup(func() {
		if _, err := g.StopDaemon(context.Background()); err != nil {
			t.Errorf("stop kentongand %s: %v", id, err)
		}
	})
	poll.Until(t, onlineTimeout, id+" online at the hub", func() (bool, string) {
		st, err := g.DaemonState(ctx(t))
		if err != nil {
			return false, err.Error()
		}
		if !st.Running {
			t.Fatalf("kentongand %s is not running (%s); config:\n%s", id, st.Exit, cfg)
		}
		d := device(t, id)
		return d.State.Presence == hub.PresenceOnline && d.State.LastHeartbeat != nil,
			fmt.Sprintf("presence %s, last heartbeat %v", d.State.Presence, d.State.LastHeartbeat)
	})
}

// device is the hub's view of a kiosk.
func device(t *testing.T, id string) hub.DeviceStatus {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, "http://"+env.hub.HTTPAddr()+"/api/v1/devices", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET devices: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET devices: %s: %s (%v)", resp.Status, body, err)
	}
	var ds []hub.DeviceStatus
	if err := json.Unmarshal(body, &ds); err != nil {
		t.Fatalf("decode devices %s: %v", body, err)
	}
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("device %s not registered at the hub", id)
	return hub.DeviceStatus{}
}

func tickets(t *testing.T, id string) []hub.Ticket {
	t.Helper()
	ts, err := env.api.Tickets(ctx(t), hub.TicketFilter{DeviceID: id, Limit: hub.MaxLimit})
	if err != nil {
		t.Fatalf("tickets of %s: %v", id, err)
	}
	return ts
}

// settled waits until the kiosk has had every incident it raised confirmed by the hub (its
// heartbeat's queue depth is 0 in a heartbeat sent after now), so that a count of tickets
// taken afterwards is final.
func settled(t *testing.T, id string) {
	t.Helper()
	since := time.Now()
	poll.Until(t, ticketTimeout, id+" to have no unconfirmed incident", func() (bool, string) {
		d := device(t, id)
		hb := d.State.LastHeartbeat
		return hb != nil && hb.After(since) && d.State.QueueDepth == 0,
			fmt.Sprintf("last heartbeat %v, queue depth %d", hb, d.State.QueueDepth)
	})
}

// waitPattern samples the LED until it shows want over a whole window.
func waitPattern(t *testing.T, g *vkiosk.Guest, line int, want vkiosk.Pattern, window time.Duration) {
	t.Helper()
	poll.Until(t, ledTimeout, fmt.Sprintf("LED on line %d to show %s", line, want), func() (bool, string) {
		s, err := g.Sample(ctx(t), line, window)
		if err != nil {
			return false, err.Error()
		}
		got := vkiosk.Classify(s)
		return got == want, fmt.Sprintf("%s: %s", got, vkiosk.Describe(s))
	})
}

// canBuild reports whether build.sh can run here: as root on a Debian machine with apt-get, and
// not asked to stay away (KENTONGAN_VKIOSK_NOBUILD).
func canBuild() bool {
	if os.Geteuid() != 0 || os.Getenv("KENTONGAN_VKIOSK_NOBUILD") != "" || os.Getenv("KENTONGAN_VKIOSK_DIR") != "" {
		return false
	}
	_, err := exec.LookPath("apt-get")
	return err == nil
}
