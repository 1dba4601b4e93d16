package browser

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/demo"
	"github.com/kentongan/kentongan/test/poll"
)

var update = flag.Bool("update", false, "write the dashboard's screenshots to docs/screenshots")

// screenshotDir is where docs/dashboard.md finds the screenshots.
const screenshotDir = "../../docs/screenshots"

// Screen size the dashboard is laid out for: a 112 centre's common monitor.
const screenW, screenH = 1366, 768

// TestScreenshots renders the queue, a ticket and the map from a real hub with a small demo
// fleet, at 1366×768. With -update it writes docs/screenshots/{queue,ticket,map}.png:
//
//	go test ./test/browser -run Screenshots -update
//
// Without it, it checks that the pages render their data and that the committed screenshots are
// there at that size.
func TestScreenshots(t *testing.T) {
	ctx := newBrowser(t)
	posts := []post{}
	for _, p := range demo.Posts {
		posts = append(posts, post{ID: p.ID, Name: p.Name, Site: p.Site})
	}
	posts[0].Heads = []string{demo.RTHead}
	posts = append(posts,
		post{ID: "bitung-rw05", Name: "Pos Ronda RW 05 Bitung Jaya", Site: hub.Site{Kecamatan: "Cikupa", Kelurahan: "Bitung Jaya", RW: "05", RT: "02", Lat: -6.2271, Lon: 106.5218}},
		post{ID: "saga-rw01", Name: "Pos Kamling RW 01 Saga", Site: hub.Site{Kecamatan: "Balaraja", Kelurahan: "Saga", RW: "01", RT: "03", Lat: -6.1991, Lon: 106.4433}},
		post{ID: "kadu-rw04", Name: "Pos Ronda RW 04 Kadu", Site: hub.Site{Kecamatan: "Curug", Kelurahan: "Kadu", RW: "04", RT: "01", Lat: -6.2589, Lon: 106.5826}},
	)
	h := startHub(t, posts...)
	h.addUser("siti", "Siti Rahmawati", account.RoleOperator, "", "kentongan-siti-112")

	kiosks := map[string]*kiosk{}
	modems := map[string]*modemtest.Sim{}
	for _, p := range posts[:5] { // kadu-rw04 stays unheard: the map shows it grey
		cfg := kioskConfig(p.ID, h.m.BrokerURL(), filepath.Join(t.TempDir(), p.ID))
		cfg.Name = p.Name
		if p.ID == "ciakar-rw03" || p.ID == "tegalangus-rw02" {
			sim, err := modemtest.New(modemtest.Options{Logger: logger(p.ID + "-modem")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			modems[p.ID] = sim
			cfg.Modem.Device = sim.Path()
			cfg.Modem.Allow = []string{demo.RTHead}
		}
		kiosks[p.ID] = startKiosk(t, cfg)
	}

	svc := h.m.Service
	// A fire at Ciakar, taken on and sent to Damkar; its RT head confirms it if asked.
	kiosks["ciakar-rw03"].press("kebakaran")
	fire := h.waitTicket("ciakar-rw03", 1)
	confirm(t, h, modems["ciakar-rw03"], fire)
	if _, err := svc.Acknowledge(t.Context(), fire.ID, "siti", "Penelepon dikonfirmasi, asap terlihat dari jalan"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Dispatch(t.Context(), fire.ID, "damkar", "siti", "Pos Damkar Panongan berangkat"); err != nil {
		t.Fatal(err)
	}
	// An RT head at Tegal Angus reports a water cut by SMS.
	if _, err := modems["tegalangus-rw02"].Deliver(demo.RTHead, "LAPOR AIR PDAM mati sejak kemarin di RT 03, mohon dicek"); err != nil {
		t.Fatal(err)
	}
	h.waitTicket("tegalangus-rw02", 1)
	// A medical emergency at Kutabumi, acknowledged; a panic button at Bitung Jaya, new.
	kiosks["kutabumi-rw07"].press("medis")
	med := h.waitTicket("kutabumi-rw07", 1)
	if _, err := svc.Acknowledge(t.Context(), med.ID, "siti", "Ambulans PSC 119 dihubungi"); err != nil {
		t.Fatal(err)
	}
	kiosks["bitung-rw05"].press("darurat")
	h.waitTicket("bitung-rw05", 1)
	kiosks["saga-rw01"].press("darurat")
	prank := h.waitTicket("saga-rw01", 1)
	if _, err := svc.MarkFalseAlarm(t.Context(), prank.ID, "siti", "Anak-anak bermain tombol"); err != nil {
		t.Fatal(err)
	}

	login(t, ctx, h.base, "siti", "kentongan-siti-112")
	shots := map[string][]byte{}

	do(t, ctx, "open the queue", chromedp.Navigate(h.base+"/"), chromedp.WaitVisible(chromedp.CSS("#queue-rows tr[data-id]")))
	waitLive(t, ctx)
	rows := eval[int](t, ctx, `document.querySelectorAll("#queue-rows tr[data-id]").length`)
	if rows < 4 {
		t.Errorf("queue shows %d open tickets, want at least 4", rows)
	}
	if first := eval[string](t, ctx, `document.querySelector("#queue-rows tr[data-id]").className`); !strings.Contains(first, "prio-emergency") {
		t.Errorf("first row %q is not an emergency", first)
	}
	shots["queue"] = screenshot(t, ctx)

	do(t, ctx, "open the fire ticket", chromedp.Navigate(h.base+"/tickets/"+fire.ID), chromedp.WaitVisible(chromedp.CSS("#history")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#history tbody tr").length`); n < 3 {
		t.Errorf("the fire ticket's history has %d entries, want at least 3", n)
	}
	shots["ticket"] = screenshot(t, ctx)

	do(t, ctx, "open the map", chromedp.Navigate(h.base+"/map"), chromedp.WaitVisible(chromedp.CSS("#map .leaflet-interactive")))
	// Tiles cannot load here (no host resolves but this one): the markers must all be there.
	poll.Until(t, wait, "the map's markers", func() (bool, string) {
		n := eval[int](t, ctx, `document.querySelectorAll("#map path.leaflet-interactive").length`)
		return n >= 5+4, fmt.Sprintf("%d markers", n)
	})
	poll.True(t, wait, "the map to say that tiles failed", func() bool {
		return eval[bool](t, ctx, `!document.getElementById("map-notiles").classList.contains("hidden")`)
	})
	shots["map"] = screenshot(t, ctx)

	for name, b := range shots {
		path := filepath.Join(screenshotDir, name+".png")
		if *update {
			if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
			continue
		}
		checkPNG(t, path)
	}
}

// confirm answers YA for the post's RT head if the hub asks for a confirmation of the ticket,
// so that the ticket page shows an answer. A hub that asks nobody for this kind of ticket is
// left alone.
func confirm(t *testing.T, h *hubProc, sim *modemtest.Sim, tk *hub.Ticket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sent, err := sim.WaitSent(ctx, 1)
	if err != nil || !strings.Contains(sent[0].Text, tk.Number) {
		t.Logf("no confirmation request for %s (%v); the ticket page shows none", tk.Number, err)
		return
	}
	if _, err := sim.Deliver(demo.RTHead, "YA "+tk.Number); err != nil {
		t.Fatal(err)
	}
	poll.True(t, wait, "the RT head's YA on "+tk.Number, func() bool {
		got, err := h.m.Service.Ticket(t.Context(), tk.ID)
		return err == nil && got.Confirmation.Yes > 0
	})
}

// screenshot captures the visible 1366×768 page.
func screenshot(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	// Let timers tick and the fonts settle; the screenshot is of the page as a person sees it.
	do(t, ctx, "settle", chromedp.Sleep(300*time.Millisecond))
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	b, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if cfg.Width != screenW || cfg.Height != screenH {
		t.Errorf("screenshot is %d×%d, want %d×%d", cfg.Width, cfg.Height, screenW, screenH)
	}
	return b
}

// checkPNG checks a committed screenshot: present, a PNG, 1366×768.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("screenshot missing (go test ./test/browser -run Screenshots -update): %v", err)
		return
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if cfg.Width != screenW || cfg.Height != screenH {
		t.Errorf("%s is %d×%d, want %d×%d", path, cfg.Width, cfg.Height, screenW, screenH)
	}
}
