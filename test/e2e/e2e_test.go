// Package e2e runs real hubs and real kiosk daemons against each other: MQTT over TCP through the
// hub's embedded broker, tickets in a SQLite file, kiosks with the simulated GPIO driver and a
// bbolt outbox in temp dirs, and a TCP proxy to cut the network between them.
package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/test/netproxy"
)

// assertOneTicketPerIncident fails if any incident ID appears on more than one ticket.
func assertOneTicketPerIncident(t *testing.T, tickets []ticket) map[string]ticket {
	t.Helper()
	byIncident := map[string]ticket{}
	numbers := map[string]bool{}
	for _, tk := range tickets {
		if prev, dup := byIncident[tk.IncidentID]; dup {
			t.Fatalf("incident %s has two tickets: %s and %s", tk.IncidentID, prev.Number, tk.Number)
		}
		if numbers[tk.Number] {
			t.Fatalf("ticket number %s given twice", tk.Number)
		}
		byIncident[tk.IncidentID] = tk
		numbers[tk.Number] = true
	}
	return byIncident
}

// The whole path once: press → ticket stored → LED "received" → operator ack → LED "acknowledged".
func TestPressToAcknowledgedLED(t *testing.T) {
	h := startHub(t, tempDir(t, "hub"), "ciakar-rw03")
	k := startKiosk(t, "ciakar-rw03", "tcp://"+h.brokerAddr(), tempDir(t, "kiosk"))
	waitLED(t, k, "idle")

	k.press("kebakaran")
	tickets := waitTickets(t, h, "ciakar-rw03", 1)
	tk := tickets[0]
	if tk.Source != "button" || tk.Category != "fire" || tk.Priority != "emergency" || tk.Status != "new" {
		t.Errorf("ticket = %+v, want a new emergency fire ticket from a button", tk)
	}
	if tk.Number == "" || tk.IncidentID == "" || tk.AcknowledgedAt != nil {
		t.Errorf("ticket = %+v, want a number, an incident id and no acknowledgement yet", tk)
	}
	waitLED(t, k, "received")
	eventually(t, "queue to drain", func() (bool, string) {
		d := k.queueDepth()
		return d == 0, fmt.Sprint(d)
	})

	h.ack(tk.ID)
	waitLED(t, k, "acknowledged")
	after := h.tickets("ciakar-rw03")
	if len(after) != 1 || after[0].Status != "acknowledged" || after[0].AcknowledgedAt == nil {
		t.Fatalf("after ack: %+v, want one acknowledged ticket with acknowledged_at", after)
	}
	// The kiosk learnt the ticket number the hub gave.
	found := false
	for _, in := range k.d.Status().Incidents {
		if in.ID == tk.IncidentID && in.TicketNumber == tk.Number {
			found = true
		}
	}
	if !found {
		t.Errorf("kiosk status %+v does not show incident %s as ticket %s", k.d.Status().Incidents, tk.IncidentID, tk.Number)
	}
}

// A press while the hub cannot be reached, the kiosk stopped (as by a power cut) before any
// acknowledgement and started again: the incident is re-sent from disk, and there is one ticket.
func TestKioskRestartBeforeAckResendsOnce(t *testing.T) {
	h := startHub(t, tempDir(t, "hub"), "ciakar-rw03")
	proxy, err := netproxy.New(h.brokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Refuse(true)

	store := tempDir(t, "kiosk")
	k := startKiosk(t, "ciakar-rw03", proxy.URL(), store)
	k.press("medis")
	waitLED(t, k, "pending")
	if d := k.queueDepth(); d != 1 {
		t.Fatalf("queue depth = %d, want 1", d)
	}
	k.stop()

	k2 := startKiosk(t, "ciakar-rw03", proxy.URL(), store)
	if d := k2.queueDepth(); d != 1 {
		t.Fatalf("after restart queue depth = %d, want the 1 incident from disk", d)
	}
	proxy.Refuse(false)
	waitLED(t, k2, "received")
	tickets := waitTickets(t, h, "ciakar-rw03", 1)
	if len(tickets) != 1 || tickets[0].Category != "medical" {
		t.Fatalf("tickets = %+v, want exactly one medical ticket", tickets)
	}
}

// The hub has stored the ticket but its acknowledgement never reaches the kiosk (the link
// swallows traffic back to the kiosk); the kiosk is stopped and started: it re-sends, and the
// hub answers with the same ticket instead of making a second.
func TestKioskRestartAfterHubStoredResendsSameTicket(t *testing.T) {
	h := startHub(t, tempDir(t, "hub"), "ciakar-rw03")
	proxy, err := netproxy.New(h.brokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	store := tempDir(t, "kiosk")
	k := startKiosk(t, "ciakar-rw03", proxy.URL(), store)
	waitLED(t, k, "idle")
	proxy.HoldDownstream(true)
	k.press("kebakaran")
	first := waitTickets(t, h, "ciakar-rw03", 1)[0]
	if got := k.ledState(); got != "pending" {
		t.Fatalf("LED = %q while the ack is held back, want pending", got)
	}
	k.stop()
	proxy.CutAll()
	proxy.HoldDownstream(false)

	k2 := startKiosk(t, "ciakar-rw03", proxy.URL(), store)
	waitLED(t, k2, "received")
	tickets := h.tickets("ciakar-rw03")
	if len(tickets) != 1 || tickets[0].ID != first.ID {
		t.Fatalf("tickets after re-send = %+v, want only %s", tickets, first.Number)
	}
	var seen bool
	for _, in := range k2.d.Status().Incidents {
		if in.ID == first.IncidentID && in.TicketNumber == first.Number {
			seen = true
		}
	}
	if !seen {
		t.Errorf("restarted kiosk does not show ticket %s for incident %s: %+v", first.Number, first.IncidentID, k2.d.Status().Incidents)
	}
}

// The hub stops while a kiosk keeps taking presses; when the hub is back on the same data dir,
// every queued incident arrives and none twice, and the tickets from before are still there.
func TestHubRestartWhileKioskHoldsIncidents(t *testing.T) {
	hubDir := tempDir(t, "hub")
	h := startHub(t, hubDir, "kutabumi-rw07")
	proxy, err := netproxy.New(h.brokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	k := startKiosk(t, "kutabumi-rw07", proxy.URL(), tempDir(t, "kiosk"))

	k.press("darurat")
	before := waitTickets(t, h, "kutabumi-rw07", 1)
	waitLED(t, k, "received")

	h.stop()
	for _, b := range []string{"kebakaran", "medis", "darurat"} {
		k.press(b)
	}
	eventually(t, "three incidents queued", func() (bool, string) {
		d := k.queueDepth()
		return d == 3, fmt.Sprint(d)
	})

	h2 := startHub(t, hubDir, "kutabumi-rw07")
	proxy.SetTarget(h2.brokerAddr())
	proxy.CutAll()
	all := waitTickets(t, h2, "kutabumi-rw07", 4)
	eventually(t, "queue to drain", func() (bool, string) {
		d := k.queueDepth()
		return d == 0, fmt.Sprint(d)
	})
	// Give any stray re-send time to land before counting.
	time.Sleep(1500 * time.Millisecond)
	all = h2.tickets("kutabumi-rw07")
	if len(all) != 4 {
		t.Fatalf("tickets = %d, want 4 (1 before the restart, 3 queued)", len(all))
	}
	byIncident := assertOneTicketPerIncident(t, all)
	if _, ok := byIncident[before[0].IncidentID]; !ok {
		t.Errorf("ticket %s from before the restart is gone", before[0].Number)
	}
	waitLED(t, k, "received")
}

// Two kiosks pressing at once each get their own tickets, and only their own acknowledgements.
func TestTwoKiosksConcurrently(t *testing.T) {
	h := startHub(t, tempDir(t, "hub"), "ciakar-rw03", "tegalangus-rw02")
	a := startKiosk(t, "ciakar-rw03", "tcp://"+h.brokerAddr(), tempDir(t, "a"))
	b := startKiosk(t, "tegalangus-rw02", "tcp://"+h.brokerAddr(), tempDir(t, "b"))
	waitLED(t, a, "idle")
	waitLED(t, b, "idle")

	const presses = 5
	var wg sync.WaitGroup
	for _, k := range []*kiosk{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range presses {
				k.press([]string{"darurat", "kebakaran", "medis"}[i%3])
			}
		}()
	}
	wg.Wait()

	ta := waitTickets(t, h, "ciakar-rw03", presses)
	tb := waitTickets(t, h, "tegalangus-rw02", presses)
	if len(ta) != presses || len(tb) != presses {
		t.Fatalf("tickets: %d for a, %d for b; want %d each", len(ta), len(tb), presses)
	}
	assertOneTicketPerIncident(t, append(append([]ticket{}, ta...), tb...))
	for _, k := range []*kiosk{a, b} {
		eventually(t, "queue of "+k.id+" to drain", func() (bool, string) {
			d := k.queueDepth()
			return d == 0, fmt.Sprint(d)
		})
	}

	// Each kiosk knows exactly its own tickets.
	mine := func(k *kiosk, want []ticket) {
		t.Helper()
		wantNum := map[string]string{}
		for _, tk := range want {
			wantNum[tk.IncidentID] = tk.Number
		}
		got := k.d.Status().Incidents
		if len(got) != len(want) {
			t.Fatalf("kiosk %s knows %d incidents, want %d: %+v", k.id, len(got), len(want), got)
		}
		for _, in := range got {
			if wantNum[in.ID] != in.TicketNumber {
				t.Errorf("kiosk %s has incident %s as ticket %q, hub says %q", k.id, in.ID, in.TicketNumber, wantNum[in.ID])
			}
		}
	}
	mine(a, ta)
	mine(b, tb)

	// An operator acknowledges a's tickets: a's LED changes, b's does not.
	for _, tk := range ta {
		h.ack(tk.ID)
	}
	waitLED(t, a, "acknowledged")
	time.Sleep(300 * time.Millisecond)
	if got := b.ledState(); got != "received" {
		t.Errorf("kiosk b's LED = %q after an ack for kiosk a, want received", got)
	}
}

// An operator acknowledges while the kiosk is cut off, and the hub restarts before the kiosk is
// back (so the broker's session, which held the undelivered ack, is gone): the acknowledgement
// still reaches the kiosk's LED once the link is back.
func TestAckWhileKioskOfflineReachesLEDOnReconnect(t *testing.T) {
	hubDir := tempDir(t, "hub")
	h := startHub(t, hubDir, "ciakar-rw03")
	proxy, err := netproxy.New(h.brokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	k := startKiosk(t, "ciakar-rw03", proxy.URL(), tempDir(t, "kiosk"))
	k.press("darurat")
	tk := waitTickets(t, h, "ciakar-rw03", 1)[0]
	waitLED(t, k, "received")

	proxy.Refuse(true)
	waitLED(t, k, "received") // the ticket's state still shows; the link is down
	eventually(t, "kiosk to notice the cut", func() (bool, string) {
		return !k.d.Status().Connected, "still connected"
	})
	h.ack(tk.ID)
	time.Sleep(300 * time.Millisecond)
	if got := k.ledState(); got != "received" {
		t.Fatalf("LED = %q while cut off, want received", got)
	}
	h.stop()
	h2 := startHub(t, hubDir, "ciakar-rw03")
	proxy.SetTarget(h2.brokerAddr())
	proxy.Refuse(false)
	waitLED(t, k, "acknowledged")
}

// An operator pings a kiosk from the hub's API; the kiosk answers with a heartbeat at once,
// long before its next scheduled one, and the hub shows it.
func TestPingAnsweredWithHeartbeat(t *testing.T) {
	h := startHub(t, tempDir(t, "hub"), "ciakar-rw03")
	cfg := kioskConfig("ciakar-rw03", "tcp://"+h.brokerAddr(), tempDir(t, "kiosk"))
	cfg.HeartbeatInterval = time.Hour
	startKioskCfg(t, cfg)

	seq := func() uint64 {
		var devs []struct {
			ID    string `json:"id"`
			State struct {
				Presence     string `json:"presence"`
				HeartbeatSeq uint64 `json:"heartbeat_seq"`
			} `json:"state"`
		}
		h.getJSON(h.base+"/api/v1/devices", &devs)
		for _, d := range devs {
			if d.ID == "ciakar-rw03" {
				return d.State.HeartbeatSeq
			}
		}
		t.Fatalf("ciakar-rw03 not in %+v", devs)
		return 0
	}
	// The kiosk sends one heartbeat on connecting.
	eventually(t, "first heartbeat", func() (bool, string) { s := seq(); return s == 1, fmt.Sprint(s) })

	resp, err := h.do(http.MethodPost, h.base+"/api/v1/devices/ciakar-rw03/ping", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ping: %s", resp.Status)
	}
	eventually(t, "heartbeat answering the ping", func() (bool, string) { s := seq(); return s == 2, fmt.Sprint(s) })
}
