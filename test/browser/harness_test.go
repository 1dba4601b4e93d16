// Package browser tests the operators' dashboard in a real browser: Debian's chromium, driven
// over the DevTools protocol by chromedp, against a real hub (hub/hubd on free ports with a
// temporary data directory) and real kiosk daemons with simulated buttons and LEDs.
//
// test/chrome finds (or installs) and starts the browser: without chromium the tests skip, and
// with CI=true they fail instead.
package browser

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/test/chrome"
	"github.com/kentongan/kentongan/test/poll"
)

// wait is how long a test waits for something the browser or the hub must do. It is generous
// because CI machines are slow and loaded; it only matters when something is broken.
const wait = 30 * time.Second

func logger(name string) *slog.Logger {
	if os.Getenv("BROWSER_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("proc", name)
}

// newBrowser starts a headless chromium (see test/chrome) at the screenshots' window size and
// returns a tab's context.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	return chrome.New(t, chrome.Options{
		Timeout: wait,
		Flags: []chromedp.ExecAllocatorOption{
			chromedp.Flag("hide-scrollbars", true),
			chromedp.WindowSize(screenW, screenH),
		},
		Start: []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(screenW, screenH)},
	})
}

// do runs browser steps with a deadline.
func do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	chrome.Do(t, ctx, wait, what, steps...)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	return chrome.Eval[T](t, ctx, wait, expr)
}

// post is a kiosk's place and where it stands.
type post struct {
	ID, Name string
	Site     hub.Site
	Heads    []string
}

// hubProc is a real hub in this process.
type hubProc struct {
	t    testing.TB
	m    *hubd.Main
	base string
}

// startHub starts a hub in a temporary directory knowing the given posts.
func startHub(t testing.TB, posts ...post) *hubProc {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = logger("hub")
	args := []string{"--data", filepath.Join(t.TempDir(), "hub"), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}
	if err := m.ParseFlags(context.Background(), args); err != nil {
		t.Fatalf("hub flags: %v", err)
	}
	for _, p := range posts {
		m.Config.Devices = append(m.Config.Devices, hubd.DeviceConfig{ID: p.ID, Name: p.Name, Site: p.Site, RTRWHeads: p.Heads})
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("start hub: %v", err)
	}
	h := &hubProc{t: t, m: m, base: "http://" + m.HTTPAddr()}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	return h
}

// addUser creates a user who logs in with password.
func (h *hubProc) addUser(name, fullName, role, agency, password string) {
	h.t.Helper()
	_, err := h.m.Accounts.CreateUser(context.Background(), account.Actor{CLI: "test"},
		account.NewUser{Name: name, FullName: fullName, Role: role, Agency: agency, Password: password})
	if err != nil {
		h.t.Fatalf("add user %s: %v", name, err)
	}
}

// tickets returns the device's tickets, newest first, straight from the hub's service.
func (h *hubProc) tickets(deviceID string) []*hub.Ticket {
	h.t.Helper()
	ts, err := h.m.Service.Tickets(context.Background(), hub.TicketFilter{DeviceID: deviceID, Limit: hub.MaxLimit})
	if err != nil {
		h.t.Fatalf("tickets of %s: %v", deviceID, err)
	}
	return ts
}

// waitTicket waits for the device's n-th ticket and returns the newest.
func (h *hubProc) waitTicket(deviceID string, n int) *hub.Ticket {
	h.t.Helper()
	var ts []*hub.Ticket
	poll.Until(h.t, wait, fmt.Sprintf("%d tickets from %s", n, deviceID), func() (bool, string) {
		ts = h.tickets(deviceID)
		return len(ts) >= n, fmt.Sprintf("%d tickets", len(ts))
	})
	return ts[0]
}

// kiosk is a real kentongand with simulated GPIO.
type kiosk struct {
	t testing.TB
	d *daemon.Daemon
}

// kioskConfig is a kiosk with the demo's three buttons (short hold times, for quick tests) and
// one status LED.
func kioskConfig(id, brokerURL, dir string) daemon.Config {
	cfg := daemon.Config{DeviceID: id, Name: id}
	cfg.Broker.URL = brokerURL
	cfg.GPIO.Driver = "sim"
	cfg.Store.Dir = dir
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

func startKiosk(t testing.TB, cfg daemon.Config) *kiosk {
	t.Helper()
	d, err := daemon.New(cfg, daemon.WithLogger(logger(cfg.DeviceID)))
	if err != nil {
		t.Fatalf("new kiosk %s: %v", cfg.DeviceID, err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start kiosk %s: %v", cfg.DeviceID, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close kiosk %s: %v", cfg.DeviceID, err)
		}
	})
	k := &kiosk{t: t, d: d}
	poll.True(t, wait, cfg.DeviceID+" to connect", func() bool { return d.Status().Connected })
	return k
}

// press holds a button long enough to raise an incident.
func (k *kiosk) press(button string) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	res, err := k.d.SimPress(ctx, button, 150*time.Millisecond)
	if err != nil {
		k.t.Fatalf("press %s: %v", button, err)
	}
	if !res.Raised {
		k.t.Fatalf("press %s raised no incident: %+v", button, res)
	}
}

// led is the state the kiosk's status LED shows.
func (k *kiosk) led() string {
	for _, l := range k.d.LEDs() {
		if l.Name == "status" {
			return l.State
		}
	}
	k.t.Fatalf("kiosk has no status LED")
	return ""
}

// login signs in through the login page and waits for the queue.
func login(t testing.TB, ctx context.Context, base, name, password string) {
	t.Helper()
	do(t, ctx, "log in as "+name,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="name"]`), name),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), password),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#queue`)),
	)
}

// waitLive waits until the page's event stream is connected, so that what follows reaches the
// page as a live event and not with the page load.
func waitLive(t testing.TB, ctx context.Context) {
	t.Helper()
	poll.True(t, wait, "the page's event stream to connect", func() bool {
		return eval[bool](t, ctx, `(function(){var l=document.getElementById("live");return !!l && !l.hidden && !l.classList.contains("off")})()`)
	})
}

// httpStatus fetches a URL from inside the page, with its session, and returns the status.
func httpStatus(t testing.TB, ctx context.Context, path string) int {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	n, err := chromedp.Run(c, chromedp.Evaluate[int](
		fmt.Sprintf(`fetch(%q, {credentials: "same-origin"}).then(r => r.status)`, path), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s in the page: %v", path, err)
	}
	return n
}

// apiStatus does a GET with an API token, as a tool would.
func apiStatus(t testing.TB, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
