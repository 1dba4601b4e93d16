package demo

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/hubclient"
	"github.com/kentongan/kentongan/hub/hubd"
)

// The demo plays its whole scenario against a real hub: a fire ticket at Ciakar acknowledged by
// the demo operator (with the kiosk's LED following), a medical ticket at Kutabumi left new, and
// an RT head's SMS at Tegal Angus answered with its ticket number.
func TestDemoScenario(t *testing.T) {
	m := hubd.NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.ParseFlags(context.Background(), []string{"--demo", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	Register(&m.Config)
	Register(&m.Config) // twice is harmless
	if len(m.Config.Devices) != len(Posts) {
		t.Fatalf("devices = %d, want %d", len(m.Config.Devices), len(Posts))
	}
	var fleet *Fleet
	m.DemoFunc = func(ctx context.Context, m *hubd.Main) error {
		f, err := Start(ctx, m, Options{AckAfter: 100 * time.Millisecond, Logger: m.Logger})
		fleet = f
		if err == nil {
			m.DeferClose(f.Close)
		}
		return err
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	api := hubclient.New("http://"+m.HTTPAddr(), nil).WithToken(fleet.Token)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		fire, _ := api.Tickets(ctx, hub.TicketFilter{DeviceID: "ciakar-rw03"})
		med, _ := api.Tickets(ctx, hub.TicketFilter{DeviceID: "kutabumi-rw07"})
		led := ""
		for _, l := range fleet.kiosks[0].LEDs() {
			led = l.State
		}
		water, _ := api.Tickets(ctx, hub.TicketFilter{DeviceID: "tegalangus-rw02"})
		receipt := fleet.modems[2].Sent()
		if len(fire) == 1 && fire[0].Status == hub.StatusAcknowledged && fire[0].Category == "fire" &&
			fire[0].Confirmation.State == hub.ConfirmYes &&
			len(med) == 1 && med[0].Status == hub.StatusNew && med[0].Category == "medical" && led == "acknowledged" &&
			len(water) == 1 && water[0].Category == "water" && water[0].Reporter == RTHead &&
			len(receipt) == 1 && receipt[0].To == RTHead && strings.Contains(receipt[0].Text, water[0].Number) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not play out: ciakar %+v, kutabumi %+v, ciakar LED %q, tegal angus %+v, SMS sent %+v", fire, med, led, water, receipt)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ts, _ := api.Tickets(ctx, hub.TicketFilter{DeviceID: "tegalangus-rw02"}); len(ts) != 1 || ts[0].Source != "sms" {
		t.Errorf("tegalangus-rw02 has tickets %+v; want only the RT head's SMS", ts)
	}
	// The fire was acknowledged by the scripted operator, and the person at the keyboard can log
	// in with the password the demo printed.
	if fire, _ := api.Tickets(ctx, hub.TicketFilter{DeviceID: "ciakar-rw03"}); len(fire) != 1 || fire[0].AcknowledgedBy != ScriptOperator {
		t.Errorf("fire ticket %+v; want acknowledged by %s", fire, ScriptOperator)
	}
	if len(fleet.Login) < 16 {
		t.Errorf("demo password %q", fleet.Login)
	}
	if _, _, _, err := m.Accounts.Login(ctx, Operator, fleet.Login, "127.0.0.1", "test"); err != nil {
		t.Errorf("log in as the demo operator: %v", err)
	}
}

func TestHTTPBase(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8080":      "http://localhost:8080",
		"0.0.0.0:8080":   "http://localhost:8080",
		":8080":          "http://localhost:8080",
		"127.0.0.1:9000": "http://127.0.0.1:9000",
	} {
		if got := httpBase(in); got != want {
			t.Errorf("httpBase(%q) = %q, want %q", in, got, want)
		}
	}
}
