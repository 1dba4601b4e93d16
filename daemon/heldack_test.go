package daemon

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// A press the full disk would not take is sent from memory; the hub's answers about it must
// reach the LEDs and /status like any other's (the fault suite found them dropped: the resident
// saw the kiosk forget their report), and once the disk takes writes the incident and its latest
// answer are on disk as a recent record, not pending.
func TestHeldIncidentShowsHubAnswers(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	cfg := testConfig(t, b.URL())
	cfg.RetryInterval = 200 * time.Millisecond // the held incidents are written on the retry tick
	d := newDaemon(t, cfg)
	fs := &failingStore{store: d.store}
	fs.fail.Store(true)
	d.store = fs
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "connected and subscribed", func() bool { return d.Status().Connected && b.subscribed() })

	res, err := d.SimPress(t.Context(), "kebakaran", 250*time.Millisecond)
	if !errors.Is(err, ErrNotStored) || !res.Raised {
		t.Fatalf("press on a full disk: %+v %v", res, err)
	}
	id := res.IncidentID
	b.waitIncidents(1)
	state := func() (string, string) {
		for _, in := range d.Status().Incidents {
			if in.ID == id {
				return in.State, in.TicketNumber
			}
		}
		return "", ""
	}
	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "the held incident shown as received", func() bool { s, n := state(); return s == "received" && n == "112-0042" })
	if st := d.Status(); st.QueueDepth != 0 || st.LEDState != StateFault {
		t.Fatalf("status %+v; want nothing pending, and the LED still on the disk fault", st)
	}
	b.ack(id, mqtt.AckAcknowledged, "")
	eventually(t, "the held incident shown as acknowledged", func() bool { s, _ := state(); return s == "acknowledged" })
	b.ack(id, mqtt.AckReceived, "") // late: must not undo
	time.Sleep(100 * time.Millisecond)
	if s, _ := state(); s != "acknowledged" {
		t.Fatalf("a late received took the held incident back to %q", s)
	}

	// Space is freed: the incident is on disk as a recent record with the hub's latest answer.
	fs.fail.Store(false)
	eventually(t, "the held incident on disk as acknowledged", func() bool {
		rec, err := d.store.Recent(time.Now())
		p, perr := d.store.Pending()
		return err == nil && perr == nil && len(p) == 0 && len(rec) == 1 && rec[0].IncidentID == id && rec[0].Status == mqtt.AckAcknowledged
	})
	eventually(t, "LED acknowledged, fault cleared", func() bool { return ledState(d) == StateAcknowledged && d.Status().Fault == "" })
	if s, _ := state(); s != "acknowledged" {
		t.Fatalf("after the write the incident shows %q", s)
	}
}

// fullDiskStore refuses every write, as a full SD card does, while full is set; reads work.
type fullDiskStore struct {
	store
	full atomic.Bool
}

func (s *fullDiskStore) err() error { return &pathError{syscall.ENOSPC} }

func (s *fullDiskStore) Put(in mqtt.Incident, now time.Time) error {
	if s.full.Load() {
		return s.err()
	}
	return s.store.Put(in, now)
}

func (s *fullDiskStore) PutSent(in mqtt.Incident, now time.Time) (mqtt.Incident, error) {
	if s.full.Load() {
		return mqtt.Incident{}, s.err()
	}
	return s.store.PutSent(in, now)
}

func (s *fullDiskStore) Claim(now, sentBefore time.Time) ([]mqtt.Incident, error) {
	if s.full.Load() {
		return nil, s.err()
	}
	return s.store.Claim(now, sentBefore)
}

func (s *fullDiskStore) Ack(a mqtt.Ack, now time.Time) (outbox.AckResult, error) {
	if s.full.Load() {
		return outbox.AckResult{}, s.err()
	}
	return s.store.Ack(a, now)
}

// Reports stored while the hub was out of reach must still be sent when the disk has filled up
// since: marking them sent is a write the disk refuses (the fault suite found them held back
// until space was freed). Once it is, the hub's answer is recorded.
func TestFullDiskStillSendsStoredIncidents(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(t, "tcp://"+addr)
	cfg.RetryInterval = 200 * time.Millisecond
	d := newDaemon(t, cfg)
	fs := &fullDiskStore{store: d.store}
	d.store = fs
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := pressRaised(t, d, "kebakaran") // stored, offline
	fs.full.Store(true)
	b := startBroker(t, addr)
	got := b.waitIncidents(1)
	if got[0].ID != id {
		t.Fatalf("published %+v, want the stored incident %s", got[0], id)
	}
	eventually(t, "the disk fault shown", func() bool { return strings.Contains(d.Status().Fault, "no space left") })
	b.ack(id, mqtt.AckReceived, "") // cannot be recorded yet: the incident stays pending
	fs.full.Store(false)
	eventually(t, "the hub's answer recorded after a retry", func() bool {
		// The hub answers every re-send; answering again here stands in for that, since the
		// first answer may have found the disk still full.
		b.ack(id, mqtt.AckReceived, "")
		st := d.Status()
		return st.QueueDepth == 0 && st.Fault == "" && len(st.Incidents) == 1 && st.Incidents[0].State == "received"
	})
}

func (s *fullDiskStore) QueueSMS(m outbox.SMS) (bool, error) {
	if s.full.Load() {
		return false, s.err()
	}
	return s.store.QueueSMS(m)
}

// A receipt the hub asks for while the kiosk's disk is full is sent from memory: the hub sends
// each once, so dropping it (as the kiosk did, found by the fault suite) loses the reporter's
// ticket number for good.
func TestFullDiskStillSendsSMSReplies(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sim := newModemSim(t, modemtest.Options{})
	d := newDaemon(t, smsConfig(t, b.URL(), sim))
	fs := &fullDiskStore{store: d.store}
	d.store = fs
	fs.full.Store(true)
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitModemState(t, d, "ready")
	eventually(t, "connected and subscribed", func() bool { return d.Status().Connected && b.subscribed() })

	receipt := "Laporan Anda diterima. Nomor tiket 112-0042."
	b.publish(mqtt.Topic(testDevice, mqtt.KindCommand), smsSendCommand(t, "cmd-receipt", rtHead, receipt))
	sent := waitSent(t, sim, 1)
	if sent[0].To != rtHead || sent[0].Text != receipt {
		t.Fatalf("sent %+v, want the receipt to %s", sent[0], rtHead)
	}
	poll.Until(t, smsWait, "nothing left to send", func() (bool, string) {
		st := d.Status()
		return len(st.SMSQueue) == 0 && st.SMS.Sent == 1, fmt.Sprintf("queue %+v, sms %+v", st.SMSQueue, *st.SMS)
	})
}

// On a full disk the outbox cannot record that an incident was sent; the kiosk must still wait
// the retry interval between re-sends, not re-send its whole backlog at every tick of its retry
// timer (four times an interval), which flooded the hub with a large backlog.
func TestFullDiskResendsAtTheRetryInterval(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(t, "tcp://"+addr)
	cfg.RetryInterval = 400 * time.Millisecond
	d := newDaemon(t, cfg)
	fs := &fullDiskStore{store: d.store}
	d.store = fs
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := pressRaised(t, d, "kebakaran") // stored, offline
	fs.full.Store(true)
	b := startBroker(t, addr)
	b.waitIncidents(1)
	start := time.Now()
	time.Sleep(2 * time.Second) // a window of five retry intervals, never ack'ed
	n := 0
	for _, in := range b.incidents() {
		if in.ID == id {
			n++
		}
	}
	// At most one send per interval, plus the first and some slack: 2 s / 400 ms = 5. Re-sent
	// at every tick (100 ms) it would be about 20. A loaded machine sends fewer, never more.
	if limit := int(time.Since(start)/cfg.RetryInterval) + 3; n > limit {
		t.Fatalf("incident sent %d times in %v, want at most %d: one per retry interval", n, time.Since(start).Round(time.Millisecond), limit)
	}
}
