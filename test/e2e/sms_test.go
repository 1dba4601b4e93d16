package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/drivers/modem/pdu"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/test/netproxy"
)

const rtHead = "+6281234567890"

// newModemSim starts a simulated SIM800L on a pty; the kiosk opens it as a serial port.
func newModemSim(t *testing.T) *modemtest.Sim {
	t.Helper()
	sim, err := modemtest.New(modemtest.Options{Logger: testLogger("modem")})
	if err != nil {
		t.Fatalf("modem simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func smsKioskConfig(id, brokerURL, storeDir, modemPath string) daemon.Config {
	cfg := kioskConfig(id, brokerURL, storeDir)
	cfg.Modem.Device = modemPath
	cfg.Modem.Allow = []string{"0812-3456-7890"} // as an RT head writes it: normalised to +62…
	cfg.Modem.HealthInterval = 2 * time.Second
	return cfg
}

// waitSent waits until the simulator has seen n SMS sent by the kiosk and returns them.
func waitSent(t *testing.T, sim *modemtest.Sim, n int) []modemtest.Sent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent, err := sim.WaitSent(ctx, n)
	if err != nil {
		t.Fatalf("waiting for %d SMS from the kiosk: %v (sent so far: %+v)", n, err, sim.Sent())
	}
	return sent
}

func ticketByReporterText(t *testing.T, h *hubProc, device, contains string) fullTicket {
	t.Helper()
	var found fullTicket
	eventually(t, "a ticket whose text contains "+contains, func() (bool, string) {
		var all []fullTicket
		h.getJSON(h.base+"/api/v1/tickets?limit=1000&device_id="+device, &all)
		for _, tk := range all {
			if strings.Contains(tk.Text, contains) {
				found = tk
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d tickets", len(all))
	})
	return found
}

type fullTicket struct {
	ticket
	Text     string `json:"text"`
	Reporter string `json:"reporter"`
}

// An RT head's SMS reports, single-part, multi-part and UCS-2, become tickets with the right
// category and priority, and the head gets a receipt with the ticket number, then an update when
// an operator takes the ticket on. STATUS and BATAL are answered; INFO is answered by the kiosk.
func TestSMSReportsBecomeTicketsWithReplies(t *testing.T) {
	h := startHub(t, t.TempDir(), "ciakar-rw03")
	sim := newModemSim(t)
	k := startKioskCfg(t, smsKioskConfig("ciakar-rw03", "tcp://"+h.brokerAddr(), tempDir(t, "kiosk"), sim.Path()))

	longWater := "LAPOR AIR PDAM mati sejak kemarin pagi di RT 01 sampai RT 05. " +
		strings.Repeat("Warga sudah menampung air hujan dan membeli air galon, mohon segera diperbaiki. ", 4)
	cases := []struct {
		text, category, priority string
	}{
		{"DARURAT KEBAKARAN rumah di gang 3", "fire", "emergency"},
		{longWater, "water", "normal"},                                             // three parts
		{"lapor jalan berlubang besar depan masjid 🚧 hati-hati", "road", "normal"}, // UCS-2
	}
	for i, c := range cases {
		if _, err := sim.Deliver(rtHead, c.text); err != nil {
			t.Fatalf("deliver %q: %v", c.text, err)
		}
		tk := ticketByReporterText(t, h, "ciakar-rw03", c.text[:20])
		if tk.Category != c.category || tk.Priority != c.priority || tk.Source != "sms" || tk.Reporter != rtHead || tk.Text != c.text {
			t.Errorf("SMS %q became ticket %+v (text %q), want category %s, priority %s, reporter %s",
				c.text, tk.ticket, tk.Text, c.category, c.priority, rtHead)
		}
		sent := waitSent(t, sim, i+1)
		if r := sent[i]; r.To != rtHead || !strings.Contains(r.Text, tk.Number) {
			t.Errorf("receipt %+v: want an SMS to %s naming ticket %s", r, rtHead, tk.Number)
		}
	}
	eventually(t, "the SIM emptied", func() (bool, string) {
		return len(sim.Stored()) == 0, fmt.Sprint(sim.Stored())
	})

	// The operator takes the fire on: the head hears it.
	fire := ticketByReporterText(t, h, "ciakar-rw03", "KEBAKARAN")
	h.ack(fire.ID)
	sent := waitSent(t, sim, 4)
	if r := sent[3]; r.To != rtHead || !strings.Contains(r.Text, fire.Number) {
		t.Errorf("status update %+v: want ticket %s", r, fire.Number)
	}

	// STATUS is answered by the hub; INFO by the kiosk itself.
	if _, err := sim.Deliver(rtHead, "status "+fire.Number); err != nil {
		t.Fatal(err)
	}
	sent = waitSent(t, sim, 5)
	if !strings.Contains(sent[4].Text, fire.Number) {
		t.Errorf("STATUS answer %q does not name the ticket", sent[4].Text)
	}
	if _, err := sim.Deliver(rtHead, "INFO"); err != nil {
		t.Fatal(err)
	}
	sent = waitSent(t, sim, 6)
	if !strings.Contains(sent[5].Text, "DARURAT") || !strings.Contains(sent[5].Text, "LAPOR") {
		t.Errorf("help text %q does not explain DARURAT and LAPOR", sent[5].Text)
	}

	// BATAL cancels the road report.
	road := ticketByReporterText(t, h, "ciakar-rw03", "jalan berlubang")
	if _, err := sim.Deliver(rtHead, "BATAL "+road.Number); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the road ticket cancelled", func() (bool, string) {
		tk := ticketByReporterText(t, h, "ciakar-rw03", "jalan berlubang")
		return tk.Status == "cancelled", tk.Status
	})
	// Requests and help make no tickets.
	if n := len(h.tickets("ciakar-rw03")); n != 3 {
		t.Errorf("%d tickets, want the 3 reports", n)
	}
	if st := k.d.Status(); st.Modem == nil || st.Modem.State != "ready" || st.Modem.Operator == "" || st.SMS == nil || st.SMS.Raised != 5 {
		t.Errorf("kiosk status modem=%+v sms=%+v", st.Modem, st.SMS)
	}
}

// The hub is unreachable when the SMS arrives; the kiosk stores the report, deletes it from the
// SIM, and loses power. After the restart the report reaches the hub once: one ticket, one
// delete, one receipt. A second copy of the same SMS (a modem that delivers again) is
// recognised and makes no second ticket.
func TestBinarySMSPowerCutBeforeHubAck(t *testing.T) {
	dir := t.TempDir()
	hubCfg := writeFile(t, filepath.Join(dir, "hub.yaml"), "devices:\n  - {id: ciakar-rw03, name: Pos Ronda RW 03 Ciakar}\n")
	hubBin := startProc(t, "kentongan-hub", "--config", hubCfg, "--data", filepath.Join(dir, "hub"), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	httpAddr := hubBin.WaitLine(reHTTP, startLogWait)
	brokerAddr := hubBin.WaitLine(reBroker, startLogWait)
	h := newRemoteHub(t, filepath.Join(dir, "hub"), httpAddr)
	proxy, err := netproxy.New(brokerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Refuse(true)

	sim := newModemSim(t)
	kioskCfg := writeFile(t, filepath.Join(dir, "kiosk.yaml"), kioskYAML(filepath.Join(dir, "kiosk"), proxy.URL())+
		fmt.Sprintf("modem:\n  device: %s\n  allow: [\"%s\"]\n", sim.Path(), rtHead))
	k1 := startProc(t, "kentongand", "--config", kioskCfg)
	admin := k1.WaitLine(reAdmin, startLogWait)

	// The PDU as the network delivers it, with the service centre's timestamp.
	pdus, err := pdu.EncodeDeliver("+6281100000", rtHead, "DARURAT BANJIR air masuk rumah setinggi lutut",
		time.Now().Truncate(time.Second), 0, false)
	if err != nil || len(pdus) != 1 {
		t.Fatalf("encode deliver: %v, %d parts", err, len(pdus))
	}
	first, err := sim.DeliverPDU(pdus[0])
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the SMS stored and deleted from the SIM", func() (bool, string) {
		var st struct {
			QueueDepth int `json:"queue_depth"`
		}
		adminJSON(t, http.MethodGet, "http://"+admin+"/status", &st)
		return st.QueueDepth == 1 && len(sim.Stored()) == 0, fmt.Sprintf("queue %d, SIM %v", st.QueueDepth, sim.Stored())
	})
	k1.Kill()

	// The network delivers the same SMS again while the kiosk is down.
	second, err := sim.DeliverPDU(pdus[0])
	if err != nil {
		t.Fatal(err)
	}
	k2 := startProc(t, "kentongand", "--config", kioskCfg)
	k2.WaitLine(reAdmin, startLogWait)
	proxy.Refuse(false)
	sent := waitSent(t, sim, 1)
	var tickets []ticket
	eventually(t, "one ticket", func() (bool, string) {
		tickets = h.list(t)
		return len(tickets) >= 1, fmt.Sprint(len(tickets))
	})
	time.Sleep(1500 * time.Millisecond) // past one retry_interval: a stray re-send would show
	tickets = h.list(t)
	if len(tickets) != 1 || tickets[0].Category != "disaster" || tickets[0].Priority != "emergency" {
		t.Fatalf("tickets = %+v, want exactly one emergency disaster ticket", tickets)
	}
	if !strings.Contains(sent[0].Text, tickets[0].Number) {
		t.Errorf("receipt %q does not name %s", sent[0].Text, tickets[0].Number)
	}
	eventually(t, "the second copy deleted", func() (bool, string) {
		return len(sim.Stored()) == 0, fmt.Sprint(sim.Stored())
	})
	// Each copy is deleted once, once it is known to be safe (a copy may have waited in the
	// network's backlog and landed in any slot).
	total := 0
	for i := 1; i <= 30; i++ {
		total += sim.Deletes(i)
	}
	if total != 2 {
		t.Errorf("%d deletes for the two copies (slots %d and %d at delivery), want 2", total, first, second)
	}
	if n := len(sim.Sent()); n != 1 {
		t.Errorf("%d SMS sent, want one receipt: %+v", n, sim.Sent())
	}
}

// A panic press at a post asks its RT/RW heads by SMS, through the kiosk's own modem, to confirm
// it; their YA and TIDAK answers come back through the same modem and show on the ticket, which
// was created and queued at once, without waiting for them.
func TestPanicPressConfirmedByRTRWHeadsBySMS(t *testing.T) {
	const rwHead = "+6281298760001"
	h := startHubWith(t, t.TempDir(), func(d *hubd.DeviceConfig) {
		d.RTRWHeads = []string{"0812-3456-7890", rwHead}
	}, "ciakar-rw03")
	sim := newModemSim(t)
	cfg := smsKioskConfig("ciakar-rw03", "tcp://"+h.brokerAddr(), tempDir(t, "kiosk"), sim.Path())
	cfg.Modem.Allow = append(cfg.Modem.Allow, rwHead)
	k := startKioskCfg(t, cfg)
	eventually(t, "modem ready", func() (bool, string) {
		st := k.d.Status()
		return st.Modem != nil && st.Modem.State == "ready", fmt.Sprintf("%+v", st.Modem)
	})

	k.press("darurat")
	press := waitTickets(t, h, "ciakar-rw03", 1)[0]
	if press.Status != "new" || press.Priority != "emergency" {
		t.Fatalf("press ticket %+v", press)
	}
	// Both heads are asked, each naming the ticket.
	asked := waitSent(t, sim, 2)
	to := map[string]string{}
	for _, m := range asked {
		to[m.To] = m.Text
	}
	for _, head := range []string{rtHead, rwHead} {
		if !strings.Contains(to[head], press.Number) || !strings.Contains(strings.ToUpper(to[head]), "YA") {
			t.Errorf("confirmation request to %s: %q, want one naming %s and asking for YA", head, to[head], press.Number)
		}
	}

	confirmation := func() map[string]any {
		var tk map[string]any
		resp, err := h.do(http.MethodGet, h.base+"/api/v1/tickets/"+press.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil {
			t.Fatal(err)
		}
		if c, ok := tk["confirmation"].(map[string]any); ok {
			return c
		}
		if inner, ok := tk["ticket"].(map[string]any); ok {
			if c, ok := inner["confirmation"].(map[string]any); ok {
				return c
			}
		}
		return nil
	}
	if c := confirmation(); c == nil || c["state"] != "pending" {
		t.Errorf("before any answer the confirmation is %v, want pending", c)
	}

	if _, err := sim.Deliver(rtHead, "ya "+press.Number); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the RT head's YA on the ticket", func() (bool, string) {
		c := confirmation()
		return c != nil && c["state"] == "yes", fmt.Sprint(c)
	})
	if _, err := sim.Deliver(rwHead, "TIDAK "+press.Number); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the heads disagreeing", func() (bool, string) {
		c := confirmation()
		return c != nil && c["state"] == "disputed", fmt.Sprint(c)
	})
	// Answers make no tickets.
	if n := len(h.tickets("ciakar-rw03")); n != 1 {
		t.Errorf("%d tickets, want only the press", n)
	}
}
