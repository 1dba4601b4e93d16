// Package demo runs a small fleet of simulated kiosks against a hub in the same process, so that
// one command shows the whole path: a panic button pressed at an RT/RW post, the ticket at the
// 112 centre, and the kiosk's LED going from pending to received to acknowledged.
//
// The kiosks are real kentongand daemons with the simulated GPIO driver: each has its own bbolt
// outbox under the hub's data directory and talks to the hub's broker over TCP. Each has a
// simulated SIM800L modem on a pseudo-terminal, opened as a serial port, through which an RT
// head's SMS report arrives and the 112 centre's replies leave.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubclient"
	"github.com/kentongan/kentongan/hub/hubd"
)

// Post is an RT/RW post with a kiosk.
type Post struct {
	ID   string
	Name string
	Site hub.Site
	// Head is the phone number of the post's RT/RW head: on the kiosk's SMS allow-list, and
	// asked by the hub to confirm a press of the post's panic button.
	Head string
}

// Posts are the demo fleet: real kelurahan/desa of Kabupaten Tangerang; coordinates approximate.
var Posts = []Post{
	{"ciakar-rw03", "Pos Ronda RW 03 Ciakar", hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "01", Lat: -6.2745, Lon: 106.5223}, "+6281298760003"},
	{"kutabumi-rw07", "Pos Kamling RW 07 Kutabumi", hub.Site{Kecamatan: "Pasar Kemis", Kelurahan: "Kutabumi", RW: "07", RT: "04", Lat: -6.1698, Lon: 106.5571}, "+6281298760007"},
	{"tegalangus-rw02", "Pos Ronda RW 02 Tegal Angus", hub.Site{Kecamatan: "Teluknaga", Kelurahan: "Tegal Angus", RW: "02", RT: "03", Lat: -6.0737, Lon: 106.6621}, RTHead},
}

// Register adds the demo posts to the hub's device list, unless the config already has them.
func Register(cfg *hubd.Config) {
	have := map[string]bool{}
	for _, d := range cfg.Devices {
		have[d.ID] = true
	}
	for _, p := range Posts {
		if !have[p.ID] {
			cfg.Devices = append(cfg.Devices, hubd.DeviceConfig{ID: p.ID, Name: p.Name, Site: p.Site, RTRWHeads: []string{p.Head}})
		}
	}
}

// Options tune the demo. Zero values take the defaults.
type Options struct {
	Hold     time.Duration // how long the demo holds a button down (default 2.5 s, over the 2 s threshold)
	AckAfter time.Duration // how long the demo operator waits before acknowledging (default 5 s)
	Logger   *slog.Logger
}

// RTHead is the demo's RT head at Tegal Angus, on that kiosk's allow-list.
const RTHead = "+6281298760002"

// Demo accounts: the person at the keyboard logs in as Operator; the scenario acts as
// ScriptOperator.
const (
	Operator       = "operator"
	ScriptOperator = "operator-demo"
)

// Fleet is the running demo.
type Fleet struct {
	// Login is Operator's password for this run, and Token an API token of Operator's.
	Login, Token string

	kiosks []*daemon.Daemon
	modems []*modemtest.Sim
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
}

// Start starts one kiosk per post against the running hub m, then plays the scenario in the
// background: a fire reported at Ciakar and acknowledged by the demo operator, and a medical
// emergency at Kutabumi left for the person at the keyboard to acknowledge.
func Start(ctx context.Context, m *hubd.Main, opts Options) (*Fleet, error) {
	if opts.Hold == 0 {
		opts.Hold = 2500 * time.Millisecond
	}
	if opts.AckAfter == 0 {
		opts.AckAfter = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	f := &Fleet{done: make(chan struct{}), log: log}
	for _, p := range Posts {
		cfg := KioskConfig(p.ID, m.BrokerURL(), filepath.Join(m.DataDir(), "demo-kiosks", p.ID))
		cfg.Name = p.Name
		klog := log.With("kiosk", p.ID)
		sim, err := modemtest.New(modemtest.Options{Logger: klog.With("part", "modem-sim")})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("demo kiosk %s: modem simulator: %w", p.ID, err)
		}
		f.modems = append(f.modems, sim)
		cfg.Modem.Device = sim.Path()
		cfg.Modem.Allow = []string{p.Head}
		d, err := daemon.New(cfg, daemon.WithLogger(klog), daemon.WithLEDObserver(func(led, state, pattern string) {
			klog.Info("kiosk LED", "led", led, "state", state, "pattern", pattern)
		}))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("demo kiosk %s: %w", p.ID, err)
		}
		if err := d.Start(ctx); err != nil {
			d.Close()
			f.Close()
			return nil, fmt.Errorf("demo kiosk %s: %w", p.ID, err)
		}
		f.kiosks = append(f.kiosks, d)
		log.Info("demo kiosk started", "kiosk", p.ID, "name", p.Name, "kecamatan", p.Site.Kecamatan, "admin", "http://"+d.AdminAddr())
	}
	// The scripted operator reaches the API with a token of its own; the person at the keyboard
	// gets an account with a fresh random password each run, never a default one.
	token, err := m.IssueToken(ctx, ScriptOperator, account.RoleOperator, "")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	if f.Login, f.Token, err = demoLogin(ctx, m); err != nil {
		f.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	base := httpBase(m.HTTPAddr())
	log.Info("demo: log in to the dashboard", "url", base+"/", "user", Operator, "password", f.Login)
	log.Info("demo: API token of the demo operator, for kentonganctl and curl", "KENTONGAN_TOKEN", f.Token)
	sctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	api := hubclient.New(base, &http.Client{Timeout: 10 * time.Second}).WithToken(token)
	go func() {
		defer close(f.done)
		if err := f.play(sctx, api, opts); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("demo scenario stopped", "err", err)
		}
	}()
	return f, nil
}

// KioskConfig is a demo kiosk's configuration: three buttons and one status LED on the sim driver.
func KioskConfig(id, brokerURL, storeDir string) daemon.Config {
	cfg := daemon.Config{DeviceID: id, Name: id}
	cfg.Broker.URL = brokerURL
	cfg.GPIO.Driver = "sim"
	cfg.Store.Dir = storeDir
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Buttons = []daemon.Button{
		{Name: "darurat", Pin: 17},
		{Name: "kebakaran", Category: "fire", Pin: 27},
		{Name: "medis", Category: "medical", Pin: 22},
	}
	cfg.LEDs = []daemon.LED{{Name: "status", Pin: 23}}
	return cfg
}

func (f *Fleet) play(ctx context.Context, api *hubclient.Client, opts Options) error {
	ciakar, kutabumi := f.kiosks[0], f.kiosks[1]
	if err := waitConnected(ctx, ciakar); err != nil {
		return err
	}
	f.log.Info("demo: a resident holds the fire button at Pos Ronda RW 03 Ciakar", "button", "kebakaran", "hold", opts.Hold)
	since := time.Now()
	if err := ciakar.Press(ctx, "kebakaran", opts.Hold); err != nil {
		return fmt.Errorf("press at ciakar-rw03: %w", err)
	}
	tk, err := waitTicket(ctx, api, "ciakar-rw03", since)
	if err != nil {
		return err
	}
	f.log.Info("demo: ticket created at the hub", "ticket", tk.Number, "id", tk.ID, "category", tk.Category, "priority", tk.Priority)
	// The hub asks the post's RT head, through the kiosk's modem, whether it is real; the head
	// answers YA. The ticket was queued at once and does not wait for the answer.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	asked, err := f.modems[0].WaitSent(wctx, 1)
	cancel()
	if err == nil {
		f.log.Info("demo: the RT head of RW 03 Ciakar is asked to confirm", "to", asked[0].To, "sms", asked[0].Text)
		if _, err := f.modems[0].Deliver(Posts[0].Head, "YA "+tk.Number); err != nil {
			return fmt.Errorf("deliver confirmation at ciakar-rw03: %w", err)
		}
		f.log.Info("demo: the RT head answers", "from", Posts[0].Head, "sms", "YA "+tk.Number)
	}
	select {
	case <-time.After(opts.AckAfter):
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, err := api.Acknowledge(ctx, tk.ID, "", "Damkar diberangkatkan"); err != nil {
		return err
	}
	f.log.Info("demo: operator acknowledged the ticket", "ticket", tk.Number)

	if err := waitConnected(ctx, kutabumi); err != nil {
		return err
	}
	f.log.Info("demo: a resident holds the medical button at Pos Kamling RW 07 Kutabumi", "button", "medis")
	since = time.Now()
	if err := kutabumi.Press(ctx, "medis", opts.Hold); err != nil {
		return fmt.Errorf("press at kutabumi-rw07: %w", err)
	}
	tk2, err := waitTicket(ctx, api, "kutabumi-rw07", since)
	if err != nil {
		return err
	}

	// An RT head at Tegal Angus reports by SMS to the kiosk's SIM, and gets the ticket number back.
	tegal, sim := f.kiosks[2], f.modems[2]
	if err := waitConnected(ctx, tegal); err != nil {
		return err
	}
	const report = "LAPOR AIR PDAM mati sejak kemarin di RT 03, mohon dicek"
	f.log.Info("demo: the RT head of RW 02 Tegal Angus texts the kiosk", "from", RTHead, "sms", report)
	since = time.Now()
	if _, err := sim.Deliver(RTHead, report); err != nil {
		return fmt.Errorf("deliver SMS at tegalangus-rw02: %w", err)
	}
	tk3, err := waitTicket(ctx, api, "tegalangus-rw02", since)
	if err != nil {
		return err
	}
	f.log.Info("demo: SMS report became a ticket", "ticket", tk3.Number, "category", tk3.Category, "priority", tk3.Priority)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if sent, err := sim.WaitSent(rctx, 1); err == nil {
		f.log.Info("demo: the kiosk's modem sent the receipt", "to", sent[0].To, "sms", sent[0].Text)
	}

	f.log.Info("demo: your turn — acknowledge this ticket and watch the Kutabumi kiosk's LED",
		"ticket", tk2.Number,
		"command", "curl -X POST -H 'Authorization: Bearer "+f.Token+"' "+api.BaseURL()+"/api/v1/tickets/"+tk2.ID+"/ack")
	return nil
}

// demoLogin makes sure the demo's Operator exists with a new random password, and gives it a
// new API token.
func demoLogin(ctx context.Context, m *hubd.Main) (password, token string, err error) {
	password, err = hubd.RandomPassword()
	if err != nil {
		return "", "", err
	}
	by := account.Actor{CLI: "demo"}
	_, err = m.Accounts.CreateUser(ctx, by, account.NewUser{Name: Operator, FullName: "Operator Demo", Role: account.RoleOperator, Password: password})
	if hub.ErrorCode(err) == hub.CodeConflict { // kept from an earlier run in the same data dir
		err = m.Accounts.SetPassword(ctx, by, Operator, "", password)
	}
	if err != nil {
		return "", "", fmt.Errorf("operator account: %w", err)
	}
	_, token, err = m.Accounts.CreateToken(ctx, by, Operator, "demo", account.ScopeAPI, 24*time.Hour)
	if err != nil {
		return "", "", fmt.Errorf("operator token: %w", err)
	}
	return password, token, nil
}

// httpBase turns a listener address such as "[::]:8080" into a URL a person can open.
func httpBase(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func waitConnected(ctx context.Context, d *daemon.Daemon) error {
	for !d.Status().Connected {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitTicket waits for the device's first ticket created at or after since (the hub runs in this
// process, so its clock is ours); tickets from an earlier demo run in the same data dir are older.
func waitTicket(ctx context.Context, api *hubclient.Client, deviceID string, since time.Time) (hub.Ticket, error) {
	for {
		ts, err := api.Tickets(ctx, hub.TicketFilter{DeviceID: deviceID, Limit: 1})
		if err == nil && len(ts) > 0 && !ts[0].CreatedAt.Before(since.Add(-time.Second)) {
			return ts[0], nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return hub.Ticket{}, ctx.Err()
		}
	}
}

// Close stops the scenario and every kiosk (their outboxes are kept for the next run).
func (f *Fleet) Close() error {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
	var errs []error
	for _, d := range f.kiosks {
		errs = append(errs, d.Close())
	}
	for _, s := range f.modems {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
