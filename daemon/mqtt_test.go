package daemon

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/mqtt"
)

func pressRaised(t *testing.T, d *Daemon, button string) string {
	t.Helper()
	res, err := d.SimPress(t.Context(), button, 250*time.Millisecond)
	if err != nil || !res.Raised {
		t.Fatalf("press %s: %+v %v", button, res, err)
	}
	return res.IncidentID
}

func TestPressAckLifecycle(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	d := startDaemon(t, testConfig(t, b.URL()))
	eventually(t, "connected and subscribed", func() bool { return d.Status().Connected && b.subscribed() })
	eventually(t, "LED idle", func() bool { return ledState(d) == StateIdle })

	id := pressRaised(t, d, "kebakaran")
	got := b.waitIncidents(1)
	in := got[0]
	if in.ID != id || in.Attempt != 1 || in.Source != mqtt.SourceButton || in.Button != "kebakaran" || in.Category != "fire" || in.DeviceID != testDevice {
		t.Fatalf("published %+v", in)
	}
	eventually(t, "LED pending", func() bool { return ledState(d) == StatePending })

	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "LED received", func() bool { return ledState(d) == StateReceived })
	st := d.Status()
	if st.QueueDepth != 0 || st.LastAckAt.IsZero() || len(st.Incidents) != 1 || st.Incidents[0].State != "received" || st.Incidents[0].TicketNumber != "112-0042" {
		t.Fatalf("status after received: %+v", st)
	}

	b.ack(id, mqtt.AckAcknowledged, "")
	eventually(t, "LED acknowledged", func() bool { return ledState(d) == StateAcknowledged })
	if p := d.LEDs()[0].Pattern; p != PatternSolid {
		t.Fatalf("acknowledged shows %s", p)
	}
	// A duplicate received (the hub answering a retry) does not take the LED back.
	b.ack(id, mqtt.AckReceived, "")
	b.ack("0190b6a4-0000-7000-8000-000000000000", mqtt.AckReceived, "") // not ours
	time.Sleep(100 * time.Millisecond)
	if s := ledState(d); s != StateAcknowledged {
		t.Fatalf("late ack moved the LED to %s", s)
	}
	if n := len(b.incidents()); n != 1 {
		t.Fatalf("%d incident publishes, want 1", n)
	}
}

func TestIncidentWaitsForBroker(t *testing.T) {
	addr := freeAddr(t)
	d := startDaemon(t, testConfig(t, "tcp://"+addr))
	id := pressRaised(t, d, "darurat")
	eventually(t, "LED pending", func() bool { return ledState(d) == StatePending })
	if d.Status().Connected {
		t.Fatal("connected to nothing")
	}

	b := startBroker(t, addr)
	got := b.waitIncidents(1)
	if got[0].ID != id || got[0].Attempt != 1 || got[0].Category != "" {
		t.Fatalf("published %+v", got[0])
	}
	eventually(t, "subscribed", b.subscribed)
	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "LED received", func() bool { return ledState(d) == StateReceived })
	if p := b.presences(); len(p) == 0 || p[0] != mqtt.Online {
		t.Fatalf("presence %v, want online first", p)
	}
}

func TestPendingSurvivesRestart(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	cfg := testConfig(t, b.URL())
	d1 := startDaemon(t, cfg)
	eventually(t, "connected", func() bool { return d1.Status().Connected })
	id := pressRaised(t, d1, "darurat")
	b.waitIncidents(1) // the hub never answers
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "presence offline", func() bool {
		p := b.presences()
		return len(p) > 0 && p[len(p)-1] == mqtt.Offline
	})

	d2 := startDaemon(t, cfg)
	got := b.waitIncidents(2)
	if got[1].ID != id || got[1].Attempt != 2 {
		t.Fatalf("after restart published %+v, want %s at attempt 2", got[1], id)
	}
	if st := d2.Status(); st.QueueDepth != 1 {
		t.Fatalf("queue depth %d after restart", st.QueueDepth)
	}
	eventually(t, "subscribed", b.subscribed)
	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "queue empty", func() bool { return d2.Status().QueueDepth == 0 })
}

func TestReplayOrderAndRetry(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(t, "tcp://"+addr)
	cfg.RetryInterval = 300 * time.Millisecond
	d := startDaemon(t, cfg)
	var ids []string
	for _, name := range []string{"darurat", "kebakaran", "darurat"} {
		ids = append(ids, pressRaised(t, d, name))
	}

	b := startBroker(t, addr)
	got := b.waitIncidents(3)
	for i := range 3 {
		if got[i].ID != ids[i] {
			t.Fatalf("replay order %v, want %v", incidentIDs(got[:3]), ids)
		}
	}
	eventually(t, "subscribed", b.subscribed)
	b.ack(ids[0], mqtt.AckReceived, "")
	b.ack(ids[2], mqtt.AckReceived, "")

	// The unacknowledged one is sent again after retry_interval, and only it.
	eventually(t, "retry", func() bool {
		all := b.incidents()
		return len(all) > 3
	})
	time.Sleep(cfg.RetryInterval)
	for _, in := range b.incidents()[3:] {
		if in.ID != ids[1] {
			t.Fatalf("retried %s, which the hub acked", in.ID)
		}
		if in.Attempt < 2 {
			t.Fatalf("retry at attempt %d", in.Attempt)
		}
	}
	b.ack(ids[1], mqtt.AckReceived, "")
	eventually(t, "queue empty", func() bool { return d.Status().QueueDepth == 0 })
	n := len(b.incidents())
	time.Sleep(2 * cfg.RetryInterval)
	if m := len(b.incidents()); m != n {
		t.Fatalf("%d publishes after everything was acked", m-n)
	}
}

func incidentIDs(ins []mqtt.Incident) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

func TestRejectedIsKeptAndRetried(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	cfg := testConfig(t, b.URL())
	cfg.RetryInterval = 300 * time.Millisecond
	d := startDaemon(t, cfg)
	eventually(t, "subscribed", func() bool { return d.Status().Connected && b.subscribed() })

	id := pressRaised(t, d, "darurat")
	b.waitIncidents(1)
	b.ack(id, mqtt.AckRejected, "database unavailable")
	eventually(t, "LED fault", func() bool { return ledState(d) == StateFault })
	st := d.Status()
	if st.QueueDepth != 1 || !strings.Contains(st.Fault, "database unavailable") || st.Incidents[0].Error != "database unavailable" {
		t.Fatalf("status after rejection %+v", st)
	}
	got := b.waitIncidents(2)
	if got[1].ID != id || got[1].Attempt != 2 {
		t.Fatalf("retry %+v", got[1])
	}
	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "LED received", func() bool { return ledState(d) == StateReceived })
	if st := d.Status(); st.Fault != "" || st.QueueDepth != 0 {
		t.Fatalf("status after receipt %+v", st)
	}
}

func TestHeartbeatPresenceAndPing(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	cfg := testConfig(t, b.URL())
	cfg.HeartbeatInterval = 100 * time.Millisecond
	var logs syncBuffer
	d := startDaemon(t, cfg, WithLogger(slogTo(&logs)))
	eventually(t, "subscribed", func() bool { return d.Status().Connected && b.subscribed() })
	id := pressRaised(t, d, "darurat")
	b.waitIncidents(1)

	var hbs []mqtt.Heartbeat
	eventually(t, "heartbeats", func() bool {
		hbs = nil
		for _, m := range b.messages(mqtt.KindHeartbeat) {
			h, err := mqtt.DecodeHeartbeat(testDevice, m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			hbs = append(hbs, h)
		}
		return len(hbs) >= 3 && hbs[len(hbs)-1].QueueDepth == 1
	})
	for i := 1; i < len(hbs); i++ {
		if hbs[i].Seq != hbs[i-1].Seq+1 {
			t.Fatalf("heartbeat seq %d after %d", hbs[i].Seq, hbs[i-1].Seq)
		}
	}
	if last := hbs[len(hbs)-1]; last.LEDState != StatePending || last.Fault != "" || last.Firmware == "" {
		t.Fatalf("heartbeat %+v", last)
	}
	b.ack(id, mqtt.AckReceived, "")
	eventually(t, "heartbeat with empty queue", func() bool {
		ms := b.messages(mqtt.KindHeartbeat)
		h, _ := mqtt.DecodeHeartbeat(testDevice, ms[len(ms)-1].Payload)
		return h.QueueDepth == 0 && h.LEDState == StateReceived
	})

	cmd, _ := mqtt.Encode(mqtt.Command{V: mqtt.SchemaVersion, ID: "cmd-1", Name: mqtt.CommandPing, At: time.Now()})
	b.publish(mqtt.Topic(testDevice, mqtt.KindCommand), cmd)
	eventually(t, "ping logged", func() bool { return logs.contains("ping from hub") && logs.contains("cmd-1") })

	retained := b.srv.Topics.Messages(mqtt.Topic(testDevice, mqtt.KindPresence))
	if len(retained) != 1 || !bytes.Contains(retained[0].Payload, []byte(`"online"`)) {
		t.Fatalf("retained presence while running: %v", retained)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// mochi sends the PUBACK before it hands the message to subscribers, so the offline
	// presence may reach the test's subscription a moment after Close returns.
	eventually(t, "presence sequence online … offline", func() bool {
		p := b.presences()
		return len(p) >= 2 && p[0] == mqtt.Online && p[len(p)-1] == mqtt.Offline
	})
	// The retained presence is what a hub that starts now would see.
	retained = b.srv.Topics.Messages(mqtt.Topic(testDevice, mqtt.KindPresence))
	if len(retained) != 1 || !bytes.Contains(retained[0].Payload, []byte(`"offline"`)) {
		t.Fatalf("retained presence %v", retained)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

// A press while the disk is full, with the hub reachable: the incident is held in memory, sent,
// re-sent after a rejection, and let go once the hub has it; it never touched the disk.
func TestFullDiskIncidentStillReachesHub(t *testing.T) {
	addr := freeAddr(t)
	b := startBroker(t, addr)
	cfg := testConfig(t, b.URL())
	cfg.RetryInterval = 200 * time.Millisecond
	d := newDaemon(t, cfg)
	fs := &failingStore{store: d.store}
	fs.fail.Store(true)
	d.store = fs
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "subscribed", b.subscribed)

	res, err := d.SimPress(t.Context(), "kebakaran", 200*time.Millisecond)
	if !errors.Is(err, ErrNotStored) || !res.Raised {
		t.Fatalf("press on a full disk: %+v, %v", res, err)
	}
	got := b.waitIncidents(1)
	if got[0].ID != res.IncidentID || got[0].Attempt != 1 || got[0].Category != "fire" {
		t.Fatalf("published %+v", got[0])
	}
	b.ack(res.IncidentID, mqtt.AckRejected, "hub busy")
	eventually(t, "re-sent after the rejection", func() bool { return len(b.incidents()) >= 2 })
	if st := d.Status(); st.QueueDepth != 1 || !strings.Contains(st.Fault, "hub busy") {
		t.Fatalf("status after rejection %+v", st)
	}

	b.ack(res.IncidentID, mqtt.AckReceived, "")
	eventually(t, "let go once the hub has it", func() bool { return d.Status().QueueDepth == 0 })
	if p, _ := d.store.Pending(); len(p) != 0 {
		t.Fatalf("outbox holds %d incidents; the disk never took this one", len(p))
	}
	// The disk is still full: the kiosk still says so.
	if st := d.Status(); !strings.Contains(st.Fault, "no space left") || ledState(d) != StateFault {
		t.Fatalf("status %+v, LED %s; want the disk fault still shown", st, ledState(d))
	}
	n := len(b.incidents())
	time.Sleep(600 * time.Millisecond) // three retry intervals
	if m := len(b.incidents()); m != n {
		t.Fatalf("%d more publishes after the hub had it", m-n)
	}
}
