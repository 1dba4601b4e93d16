package daemon

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/drivers/modem/pdu"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// Senders in the SMS tests: two RT heads on the kiosk's allow-list and a resident who is not.
const (
	rtHead   = "+6281234567890"
	rtHead2  = "+6281298765432"
	stranger = "+6285711112222"
)

// smsWait bounds every wait in the SMS tests. It is long because a modem that is re-opened
// backs off for seconds, and the tests run beside others on a loaded machine; a deadline only
// matters when something is broken.
const smsWait = 30 * time.Second

// newModemSim starts a simulated SIM800L on a pty.
func newModemSim(t *testing.T, opts modemtest.Options) *modemtest.Sim {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t).With("part", "modemsim")
	}
	// A kiosk that opens the port while the modem boots, or before it says SMS Ready, waits a
	// second before asking again; these tests need not (the modem package tests the waits).
	if opts.BootDelay == 0 {
		opts.BootDelay = -1
	}
	if opts.ReadyDelay == 0 {
		opts.ReadyDelay = -1
	}
	sim, err := modemtest.New(opts)
	if err != nil {
		t.Fatalf("modem simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("close modem simulator: %v", err)
		}
	})
	return sim
}

// smsConfig is a kiosk with the simulated modem and short SMS timings. brokerURL may point at
// nothing: the tests then read incidents from the outbox.
func smsConfig(t *testing.T, brokerURL string, sim *modemtest.Sim) Config {
	t.Helper()
	cfg := testConfig(t, brokerURL)
	cfg.RetryInterval = 500 * time.Millisecond
	cfg.Modem = ModemConfig{
		Device: sim.Path(),
		// As RT heads write their numbers: normalised to +62….
		Allow:             []string{"0812-3456-7890", "6281298765432"},
		RateBurst:         20,
		RateEvery:         time.Hour,
		ReassemblyTimeout: 2 * time.Second,
		HealthInterval:    time.Second,
		CommandTimeout:    2 * time.Second,
	}
	return cfg
}

// startSMSKiosk starts a kiosk on sim with no hub, and waits for its modem to be ready.
func startSMSKiosk(t *testing.T, sim *modemtest.Sim, edit func(*Config)) *Daemon {
	t.Helper()
	cfg := smsConfig(t, "tcp://"+freeAddr(t), sim)
	if edit != nil {
		edit(&cfg)
	}
	d := startDaemon(t, cfg)
	waitModemState(t, d, "ready")
	return d
}

func waitModemState(t *testing.T, d *Daemon, state string) {
	t.Helper()
	poll.Until(t, smsWait, "modem state "+state, func() (bool, string) {
		m := d.Status().Modem
		if m == nil {
			return false, "no modem in status"
		}
		return m.State == state, fmt.Sprintf("%+v", *m)
	})
}

// smsStats reads the SMS counters.
func smsStats(d *Daemon) SMSStats {
	if st := d.Status().SMS; st != nil {
		return *st
	}
	return SMSStats{}
}

// smsIncidents returns the SMS incidents in the outbox that the hub has not received.
func smsIncidents(t *testing.T, d *Daemon) []mqtt.Incident {
	t.Helper()
	pending, err := d.store.Pending()
	if err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	var out []mqtt.Incident
	for _, e := range pending {
		if e.Incident.Source == mqtt.SourceSMS {
			out = append(out, e.Incident)
		}
	}
	return out
}

// waitSMSIncidents waits until the outbox holds at least n SMS incidents and returns them.
func waitSMSIncidents(t *testing.T, d *Daemon, n int) []mqtt.Incident {
	t.Helper()
	var got []mqtt.Incident
	poll.Until(t, smsWait, fmt.Sprintf("%d SMS incidents in the outbox", n), func() (bool, string) {
		got = smsIncidents(t, d)
		return len(got) >= n, fmt.Sprintf("%d incidents, sms %+v", len(got), smsStats(d))
	})
	return got
}

// waitSIMEmpty waits until the kiosk has deleted every message from the SIM and the network
// holds none back.
func waitSIMEmpty(t *testing.T, sim *modemtest.Sim) {
	t.Helper()
	poll.Until(t, smsWait, "the SIM emptied", func() (bool, string) {
		return len(sim.Stored()) == 0 && sim.Backlog() == 0, fmt.Sprintf("stored %v, backlog %d", sim.StoredIndexes(), sim.Backlog())
	})
}

func waitStats(t *testing.T, d *Daemon, what string, cond func(SMSStats) bool) {
	t.Helper()
	poll.Until(t, smsWait, what, func() (bool, string) {
		st := smsStats(d)
		return cond(st), fmt.Sprintf("%+v", st)
	})
}

// waitSent waits until the simulator has seen n SMS from the kiosk and returns them all.
func waitSent(t *testing.T, sim *modemtest.Sim, n int) []modemtest.Sent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), smsWait)
	defer cancel()
	sent, err := sim.WaitSent(ctx, n)
	if err != nil {
		t.Fatalf("waiting for %d SMS from the kiosk: %v (sent: %+v)", n, err, sent)
	}
	return sent
}

func deliver(t *testing.T, sim *modemtest.Sim, from, text string) {
	t.Helper()
	if _, err := sim.Deliver(from, text); err != nil {
		t.Fatalf("deliver %q from %s: %v", clip(text, 40), from, err)
	}
}

func deliverPDU(t *testing.T, sim *modemtest.Sim, hexPDU string) {
	t.Helper()
	if _, err := sim.DeliverPDU(hexPDU); err != nil {
		t.Fatalf("deliver PDU %s: %v", hexPDU, err)
	}
}

// encodeDeliver makes the PDUs a network would deliver for text, with concatenation reference
// ref, timestamped now.
func encodeDeliver(t *testing.T, from, text string, ref uint16) []string {
	t.Helper()
	pdus, err := pdu.EncodeDeliver(modemtest.DefaultSMSC, from, text, time.Now(), ref, false)
	if err != nil {
		t.Fatalf("encode %q: %v", clip(text, 40), err)
	}
	return pdus
}

// partTexts is how text is split into the parts of a concatenated SMS.
func partTexts(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for _, p := range encodeDeliver(t, rtHead, text, 1) {
		d, err := pdu.DecodeDeliver(p)
		if err != nil {
			t.Fatalf("decode own PDU: %v", err)
		}
		out = append(out, d.Text)
	}
	return out
}

// data8PDU builds an SMS-DELIVER from rtHead in 8-bit data coding, whose bytes are valid in no
// text alphabet, as part seq of total (no concatenation header when total is 1).
func data8PDU(t *testing.T, ref byte, total, seq int, data []byte) string {
	t.Helper()
	fo := byte(0x04) // SMS-DELIVER, no more messages waiting
	ud := data
	if total > 1 {
		fo |= 0x40 // a user data header follows
		ud = append([]byte{0x05, 0x00, 0x03, ref, byte(total), byte(seq)}, data...)
	}
	b := []byte{0x00, fo}                                               // no SMSC address
	b = append(b, 0x0D, 0x91, 0x26, 0x18, 0x32, 0x54, 0x76, 0x98, 0xF0) // +6281234567890
	b = append(b, 0x00, 0x04)                                           // PID, DCS 8-bit data
	b = append(b, 0x52, 0x60, 0x10, 0x01, 0x00, 0x00, 0x82)             // 2025-06-01 10:00:00 +07:00
	b = append(b, byte(len(ud)))
	b = append(b, ud...)
	h := strings.ToUpper(hex.EncodeToString(b))
	d, err := pdu.DecodeDeliver(h)
	if err != nil || d.Alphabet != pdu.Data8 || d.From.Number != rtHead {
		t.Fatalf("hand-made 8-bit PDU %s decodes as %+v, %v", h, d, err)
	}
	return h
}
