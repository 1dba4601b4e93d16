package daemon

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/test/poll"
)

// A kiosk that loses power in the middle of sending an SMS leaves the modem, which has its own
// supply, at the "> " prompt waiting for the message. The restarted kiosk must get it back to
// the command line, not take it for dead (the fault suite found it lost to every later SMS).
func TestModemLeftAtPromptIsRecovered(t *testing.T) {
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// What the kiosk had written when the power went: a send command, no message after it.
	port, err := os.OpenFile(sim.Path(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := port.WriteString("AT+CMGS=20\r"); err != nil {
		t.Fatal(err)
	}
	poll.True(t, smsWait, "the modem at the prompt", func() bool {
		return slices.ContainsFunc(sim.Commands(), func(c string) bool { return strings.HasPrefix(c, "AT+CMGS=20") })
	})
	time.Sleep(100 * time.Millisecond) // the prompt is written after the command is logged
	port.Close()

	d2 := startSMSKiosk(t, sim, nil) // waits for the modem to be ready
	deliver(t, sim, rtHead, "DARURAT banjir di RT 02")
	waitSMSIncidents(t, d2, 1)
}
