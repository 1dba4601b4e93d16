package vkiosk_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
	"github.com/kentongan/kentongan/test/vkiosk"
	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

// rtHead is the RT head whose phone texts the kiosk, on its allow-list.
const rtHead = "+6281234567890"

// smsTimeout bounds a round trip through the guest's serial port, kentongand, the hub and back.
const smsTimeout = 90 * time.Second

// modemConfig is kentongand's modem section for the guest's serial port.
func modemConfig() string {
	return fmt.Sprintf("modem:\n  device: %s\n  allow: [%q]\n", vkiosk.ModemDevice, rtHead)
}

// logModem prints, when the test failed, what the simulated modem received: where an SMS got
// stuck between the guest and the modem.
func logModem(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		cmds := env.modem.Commands()
		if len(cmds) > 40 {
			cmds = cmds[len(cmds)-40:]
		}
		t.Logf("the modem's last commands: %q\nsent: %+v\nstored: %v", cmds, env.modem.Sent(), env.modem.Stored())
	})
}

// The serial plumbing on its own, without kentongand: QEMU gave the guest a second UART, and
// "AT" written to it in the guest reaches the simulated modem on the host's pty, whose "OK"
// comes back.
func TestGuestSerialPortReachesModem(t *testing.T) {
	g := guest(t)
	logModem(t)
	if _, ok := g.SerialPort(vkiosk.ModemPort); !ok {
		t.Fatalf("the guest has no UART at %s; its serial ports: %+v", vkiosk.ModemPort, g.Health.Serial)
	}
	before := len(env.modem.Commands())
	// Retried like a modem driver's first AT: what the modem said while nobody had the port
	// open comes first, and a port opened mid-byte may garble a command.
	var res guestapi.SerialExchange
	poll.Until(t, smsTimeout, "OK from the modem through "+vkiosk.ModemDevice, func() (bool, string) {
		var err error
		res, err = g.SerialExchange(ctx(t), vkiosk.ModemPort, []byte("AT\r"), "OK\r\n", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return res.Matched, fmt.Sprintf("read %q", res.Read)
	})
	// The guest's tty, not yet raw, may echo the modem's own boot messages back to it in front
	// of our "AT" ("CaAT"); a modem ignores what precedes "AT" (V.250 5.2.1), and answers.
	if cmds := env.modem.Commands()[before:]; !slices.ContainsFunc(cmds, func(c string) bool { return strings.HasSuffix(c, "AT") }) {
		t.Errorf("the modem received %q, want AT among them", cmds)
	}
}

// An RT head's SMS reaches kentongand in the guest through its serial port: one ticket at the
// host's hub, a fire, an emergency, from SMS, and the receipt naming the ticket goes back out
// through the same port. The receipt proves the AT+CMGS exchange passes the port both ways:
// the "> " prompt without a line ending reaches the daemon, the PDU and its Ctrl-Z the modem.
func TestSMSReportThroughGuestSerialPort(t *testing.T) {
	g := guest(t)
	const id = "vk-sms"
	const text = "DARURAT KEBAKARAN rumah di gang 3"
	logModem(t)
	startKiosk(t, g, id, "", modemConfig())

	// Delivered once the modem is ready, so that a failure says whether the modem or the report
	// is at fault (delivered earlier, the report would wait on the SIM and still arrive).
	poll.Until(t, smsTimeout, id+"'s modem ready in its heartbeat", func() (bool, string) {
		m := device(t, id).State.Modem
		if m == nil {
			return false, "no modem in the heartbeat"
		}
		return m.State == "ready", fmt.Sprintf("%+v", *m)
	})
	sentBefore := len(env.modem.Sent())
	if _, err := env.modem.Deliver(rtHead, text); err != nil {
		t.Fatalf("deliver %q: %v", text, err)
	}
	poll.Until(t, smsTimeout, "a ticket for the SMS", func() (bool, string) {
		n := len(tickets(t, id))
		return n >= 1, fmt.Sprintf("%d tickets", n)
	})
	settled(t, id)
	ts := tickets(t, id)
	if len(ts) != 1 {
		t.Fatalf("one SMS raised %d tickets, want 1: %+v", len(ts), ts)
	}
	tk := ts[0]
	if tk.Category != "fire" || tk.Priority != hub.PriorityEmergency || tk.Source != mqtt.SourceSMS ||
		tk.Reporter != rtHead || tk.Text != text || tk.Unverified {
		t.Errorf("the SMS became ticket %s: category %q, priority %q, source %q, reporter %q, text %q, unverified %v; "+
			"want fire, emergency, sms, %s, %q, verified", tk.Number, tk.Category, tk.Priority, tk.Source,
			tk.Reporter, tk.Text, tk.Unverified, rtHead, text)
	}

	wctx, cancel := context.WithTimeout(ctx(t), smsTimeout)
	defer cancel()
	sent, err := env.modem.WaitSent(wctx, sentBefore+1)
	if err != nil {
		t.Fatalf("no receipt from the kiosk: %v", err)
	}
	if r := sent[sentBefore]; r.To != rtHead || !strings.Contains(r.Text, tk.Number) {
		t.Errorf("receipt to %s: %q, want an SMS to %s naming ticket %s", r.To, r.Text, rtHead, tk.Number)
	}
	// The report is deleted from the SIM once the kiosk has stored it.
	poll.Until(t, smsTimeout, "the SIM emptied", func() (bool, string) {
		st := env.modem.Stored()
		return len(st) == 0, fmt.Sprint(st)
	})
}
