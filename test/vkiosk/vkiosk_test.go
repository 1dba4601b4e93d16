package vkiosk_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/test/poll"
	"github.com/kentongan/kentongan/test/vkiosk"
	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

// press and release are the pulls that close and open a button's switch to ground.
func press(ms int) guestapi.Step   { return guestapi.Step{Pull: guestapi.PullDown, MS: ms} }
func release(ms int) guestapi.Step { return guestapi.Step{Pull: guestapi.PullUp, MS: ms} }

// The kernel side on its own: a line of the simulated chip, requested through the GPIO character
// device with pull-up and edge events as kentongand's gpiocdev backend does, with and without the
// kernel's debounce, sees the simulator pull it down and up, with kernel timestamps, and is
// released.
func TestKernelGPIOCharacterDevice(t *testing.T) {
	g := guest(t)
	for _, c := range []struct {
		line     int
		debounce time.Duration
	}{{5, 0}, {6, 30 * time.Millisecond}} {
		t.Run(fmt.Sprintf("debounce=%v", c.debounce), func(t *testing.T) {
			st, err := g.SelfTest(ctx(t), c.line, c.debounce)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("GPIO%d", c.line); st.Name != want {
				t.Errorf("line %d is named %q, want %s (configfs line names)", c.line, st.Name, want)
			}
			if strings.Join(st.Edges, ",") != "falling,rising" {
				t.Errorf("edges %v, want falling then rising", st.Edges)
			}
			if !st.KernelTimestamps {
				t.Error("an edge came without a kernel timestamp")
			}
		})
	}
}

// A hold past hold_ms raises exactly one ticket; the LED shows the press at once, then
// "received" (slow blink), then "acknowledged" (solid) after an operator acknowledges.
func TestHoldRaisesOneTicketAndLEDFollowsIt(t *testing.T) {
	g := guest(t)
	const id = "vk-hold"
	startKiosk(t, g, id, "", "")

	pressed := make(chan error, 1)
	go func() {
		_, err := g.Sequence(ctx(t), pinDarurat, press(3500), release(0))
		pressed <- err
	}()
	// Feedback while the button is down: solid before the hold has passed. Windows are short
	// and repeated, since the host does not know when inside the guest the press began.
	var seen []string
	ok := false
	for !ok && len(seen) < 20 {
		s, err := g.Sample(ctx(t), pinStatus, 600*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		p := vkiosk.Classify(s)
		seen = append(seen, string(p))
		ok = p == vkiosk.PatternSolid
		select {
		case err := <-pressed:
			pressed <- err
			if !ok {
				t.Fatalf("the LED was never solid while the button was held: windows %v", seen)
			}
		default:
		}
	}
	if !ok {
		t.Fatalf("the LED was never solid while the button was held: windows %v", seen)
	}
	if err := <-pressed; err != nil {
		t.Fatal(err)
	}

	var ts []hub.Ticket
	poll.Until(t, ticketTimeout, "a ticket for the hold", func() (bool, string) {
		ts = tickets(t, id)
		return len(ts) >= 1, fmt.Sprintf("%d tickets", len(ts))
	})
	waitPattern(t, g, pinStatus, vkiosk.PatternSlowBlink, 2500*time.Millisecond)
	settled(t, id)
	if ts = tickets(t, id); len(ts) != 1 {
		t.Fatalf("one hold raised %d tickets, want 1: %+v", len(ts), ts)
	}
	if ts[0].Status != hub.StatusNew {
		t.Errorf("ticket %s is %s, want %s", ts[0].Number, ts[0].Status, hub.StatusNew)
	}

	if _, err := env.api.Acknowledge(ctx(t), ts[0].ID, "", "petugas menuju lokasi"); err != nil {
		t.Fatalf("acknowledge %s: %v", ts[0].Number, err)
	}
	waitPattern(t, g, pinStatus, vkiosk.PatternSolid, 2500*time.Millisecond)
	if ts = tickets(t, id); len(ts) != 1 || ts[0].Status != hub.StatusAcknowledged {
		t.Fatalf("after the ack: %+v, want one acknowledged ticket", ts)
	}
}

// A 50 ms brush raises nothing. The hold after it proves the kiosk was listening: one ticket,
// not two.
func TestBrushRaisesNoTicket(t *testing.T) {
	g := guest(t)
	const id = "vk-brush"
	startKiosk(t, g, id, "", "")

	res, err := g.Sequence(ctx(t), pinDarurat, press(50), release(3000))
	if err != nil {
		t.Fatal(err)
	}
	if res.ActualMS[0] > 1500 {
		t.Fatalf("the brush lasted %.0f ms in the guest, too close to hold_ms to mean anything", res.ActualMS[0])
	}
	if n := len(tickets(t, id)); n != 0 {
		t.Fatalf("a %.0f ms brush raised %d tickets", res.ActualMS[0], n)
	}
	if _, err := g.Sequence(ctx(t), pinDarurat, press(2500), release(0)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, ticketTimeout, "a ticket for the hold after the brush", func() (bool, string) {
		n := len(tickets(t, id))
		return n >= 1, fmt.Sprintf("%d tickets", n)
	})
	settled(t, id)
	if ts := tickets(t, id); len(ts) != 1 {
		t.Fatalf("a brush and a hold raised %d tickets, want 1: %+v", len(ts), ts)
	}
}

// Contact bounce on press and on release, shorter than debounce_ms, around one long hold: one
// ticket.
func TestBouncingEdgesRaiseOneTicket(t *testing.T) {
	g := guest(t)
	const id = "vk-bounce"
	startKiosk(t, g, id, "", "")

	steps := []guestapi.Step{
		press(4), release(3), press(6), release(2), press(3), release(5), // closing
		press(2600),
		release(3), press(4), release(2), press(5), release(0), // opening
	}
	if _, err := g.Sequence(ctx(t), pinDarurat, steps...); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, ticketTimeout, "a ticket for the bouncing press", func() (bool, string) {
		n := len(tickets(t, id))
		return n >= 1, fmt.Sprintf("%d tickets", n)
	})
	settled(t, id)
	if ts := tickets(t, id); len(ts) != 1 {
		t.Fatalf("one bouncing press raised %d tickets, want 1: %+v", len(ts), ts)
	}
}

// A button held down far beyond its stuck threshold (shortened in the config) is reported as a
// stuck-button fault, in the heartbeat and on the LED, and raises at most the one incident of its
// press, not a stream of them; released, it is healthy again.
func TestStuckButtonIsOneFault(t *testing.T) {
	g := guest(t)
	const id = "vk-stuck"
	const stuckAfter = 5 * time.Second
	startKiosk(t, g, id, fmt.Sprintf("    stuck_after_ms: %d", stuckAfter.Milliseconds()), "")

	// The guest holds the button for four times the threshold while the host watches.
	held := make(chan error, 1)
	go func() {
		_, err := g.Sequence(ctx(t), pinDarurat, press(int(4*stuckAfter/time.Millisecond)), release(0))
		held <- err
	}()
	poll.Until(t, stuckAfter+ticketTimeout, "a stuck-button fault in the heartbeat", func() (bool, string) {
		d := device(t, id)
		return strings.Contains(d.State.Fault, "stuck"), fmt.Sprintf("fault %q", d.State.Fault)
	})
	// The fault outranks the ticket's "received" (slow blink) on the LED.
	waitPattern(t, g, pinStatus, vkiosk.PatternFastBlink, 2*time.Second)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	settled(t, id)
	if ts := tickets(t, id); len(ts) > 1 {
		t.Fatalf("a button stuck for %v raised %d tickets, want at most 1: %+v", 4*stuckAfter, len(ts), ts)
	}
	poll.Until(t, ticketTimeout, "the fault to clear once the button is released", func() (bool, string) {
		d := device(t, id)
		return d.State.Fault == "", fmt.Sprintf("fault %q", d.State.Fault)
	})
}
