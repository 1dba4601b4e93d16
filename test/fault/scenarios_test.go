package fault

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/test/poll"
)

// settleTimeout bounds how long a fleet may take to deliver everything after the faults end.
func settleTimeout() time.Duration { return trialsForDur(90*time.Second, 5*time.Minute) }

func trialsForDur(short, long time.Duration) time.Duration {
	if *flagLong {
		return long
	}
	return short
}

// Scenario 1: a kiosk loses power (SIGKILL) at a random moment around a press or an SMS: before
// the outbox write, between the write and the publish, between the publish and the hub's ack.
// Each kill and restart is a trial.
func TestKioskKilled(t *testing.T) {
	s := newScenario(t, "1. kentongand SIGKILLed and restarted")
	f := newFleet(t, s, fleetOptions{kiosks: 2})
	ctx, cancel := context.WithCancel(context.Background())
	load := f.load(ctx, 300*time.Millisecond, 4)
	for range trialsFor(12, 450) {
		k := f.kiosks[s.rnd.IntN(len(f.kiosks))]
		var wg sync.WaitGroup
		if s.rnd.IntN(3) == 0 {
			k.text()
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			k.press(pctx)
		})
		// A press raises its incident after hold_ms (40) and the debounce (10); it is stored,
		// published and acked within a few ms of that, and the admin API answers once the
		// 150 ms press is over. Half the kills aim at those few ms, the rest anywhere.
		if s.rnd.IntN(2) == 0 {
			time.Sleep(s.between(40*time.Millisecond, 90*time.Millisecond))
		} else {
			time.Sleep(s.between(0, 400*time.Millisecond))
		}
		p, _ := k.current()
		p.Kill()
		wg.Wait()
		k.start()
		s.trials++
	}
	cancel()
	load.Wait()
	f.settle(settleTimeout())
	f.finish()
}

// Scenario 2: the hub, and its embedded broker with it, is SIGKILLed during ingest and
// restarted on the same data directory. Each kill is a trial.
func TestHubKilled(t *testing.T) {
	s := newScenario(t, "2. hub SIGKILLed during ingest and restarted")
	f := newFleet(t, s, fleetOptions{kiosks: 3})
	ctx, cancel := context.WithCancel(context.Background())
	load := f.load(ctx, 80*time.Millisecond, 3)
	for range trialsFor(6, 200) {
		time.Sleep(s.between(100*time.Millisecond, 1500*time.Millisecond))
		f.hub.Kill()
		time.Sleep(s.between(0, 500*time.Millisecond)) // the kiosks see the broker gone
		f.startHub()
		s.trials++
	}
	cancel()
	load.Wait()
	f.settle(settleTimeout())
	f.finish()
}

// Scenario 3: the network between the kiosks and the hub is cut and restored: connections
// refused (the hub's host down), every connection dropped at once, or half-open (the hub's
// answers silently lost while the kiosk's packets still arrive). Each cut is a trial.
func TestNetworkCut(t *testing.T) {
	s := newScenario(t, "3. network cut: refused, dropped, half-open")
	f := newFleet(t, s, fleetOptions{kiosks: 3})
	ctx, cancel := context.WithCancel(context.Background())
	load := f.load(ctx, 150*time.Millisecond, 3)
	n := trialsFor(6, 80)
	for i := range n {
		time.Sleep(s.between(200*time.Millisecond, time.Second))
		outage := s.between(500*time.Millisecond, 3*time.Second)
		if *flagLong {
			outage = s.between(time.Second, 10*time.Second)
			if i%40 == 20 {
				outage = 2 * time.Minute // a broadband outage, not a blip
			}
		}
		switch i % 3 {
		case 0:
			f.proxy.Refuse(true)
			time.Sleep(outage)
			f.proxy.Refuse(false)
		case 1:
			f.proxy.CutAll()
			f.proxy.Refuse(true) // the cut lasts: reconnects are refused until it ends
			time.Sleep(outage)
			f.proxy.Refuse(false)
		case 2:
			// Half-open: nothing is refused or closed, answers just stop. Longer than the
			// kiosks' 2 s keepalive, so that they must notice on their own.
			f.proxy.HoldDownstream(true)
			time.Sleep(outage + 3*time.Second)
			f.proxy.HoldDownstream(false)
		}
		s.trials++
	}
	cancel()
	load.Wait()
	f.settle(settleTimeout())
	f.finish()
}

// Scenario 4: the GSM modem hangs, answers garbage, is unplugged mid-command and plugged back,
// or has a send refused, while RT heads text reports. Each fault is a trial.
func TestModemFaults(t *testing.T) {
	s := newScenario(t, "4. modem hangs, garbage, unplugged, send refused")
	f := newFleet(t, s, fleetOptions{kiosks: 2})
	ctx, cancel := context.WithCancel(context.Background())
	load := f.load(ctx, 400*time.Millisecond, 2)
	for i := range trialsFor(8, 150) {
		k := f.kiosks[s.rnd.IntN(len(f.kiosks))]
		k.text()
		time.Sleep(s.between(0, 300*time.Millisecond)) // into the read, the store or the reply
		d := s.between(500*time.Millisecond, 3*time.Second)
		switch i % 4 {
		case 0:
			k.sim.Hang(true)
			k.text()
			time.Sleep(d)
			k.sim.Hang(false)
		case 1:
			k.sim.Garbage(true)
			k.text()
			time.Sleep(d)
			k.sim.Garbage(false)
		case 2:
			if err := k.sim.Unplug(); err != nil {
				t.Fatalf("unplug: %v", err)
			}
			k.text() // arrives at the SIM while the cable is out
			time.Sleep(d)
			if err := k.sim.Replug(); err != nil {
				t.Fatalf("replug: %v", err)
			}
		case 3:
			k.sim.FailNext("AT+CMGS", "+CMS ERROR: 38")
			k.text()
			time.Sleep(d)
		}
		s.trials++
	}
	cancel()
	load.Wait()
	f.settle(settleTimeout())
	f.finish()
}

// Scenario 5: the kiosk's SD card fills up. The kiosk must say so loudly (fault on the LEDs,
// in /status, in the heartbeat the hub shows, in its log), keep and deliver what it had already
// accepted, hold new presses and SMS in memory and still send them, and, once space is freed,
// get everything delivered and acknowledged. Each fill-and-free cycle is a trial.
func TestDiskFull(t *testing.T) {
	needRoot(t, "the full-disk scenario")
	s := newScenario(t, "5. kiosk disk full, then freed")
	store := mountTmpfs(t, 4<<20)
	f := newFleet(t, s, fleetOptions{kiosks: 1, storeDir: func(int) string { return store }})
	k := f.kiosks[0]
	ctx := context.Background()
	confirmed := map[string]bool{}
	for i := range trialsFor(3, 80) {
		// Reports accepted while the hub is out of reach wait on disk.
		f.proxy.Refuse(true)
		for range 2 {
			if _, err := k.press(ctx); err != nil {
				t.Fatalf("press with disk space: %v", err)
			}
		}
		filler := fill(t, store)
		// The disk is full, though the outbox file may still have free pages of its own: press
		// until one cannot be stored. It must still be raised, and the refusal said plainly.
		for n := 0; ; n++ {
			res, err := k.press(ctx)
			if err == nil {
				if n == 2000 {
					t.Fatalf("2000 presses stored on a full disk")
				}
				continue
			}
			if res.IncidentID == "" || !strings.Contains(res.Error, "not stored") {
				t.Fatalf("press on a full disk answered %+v, %v; want the incident raised and reported not stored", res, err)
			}
			t.Logf("trial %d: press %d on the full disk was not stored", i, n+1)
			break
		}
		k.text()
		p, _ := k.current()
		poll.Until(t, 30*time.Second, "the kiosk to show the full disk", func() (bool, string) {
			st, err := k.status()
			if err != nil {
				return false, err.Error()
			}
			return st.LEDState == "fault" && strings.Contains(st.Fault, "no space"), fmt.Sprintf("LED %q, fault %q", st.LEDState, st.Fault)
		})
		if p.Find(reNotOnDisk) == nil {
			t.Fatalf("no error log line about the incident kept off disk:\n%s", p.Tail(20))
		}
		// Back online while still full: everything reaches the hub, which hears of the fault.
		f.proxy.Refuse(false)
		if i == 0 {
			poll.Until(t, 30*time.Second, "the hub to show the kiosk's disk fault", func() (bool, string) {
				fault, err := f.deviceFault(k.id)
				if err != nil {
					return false, err.Error()
				}
				return strings.Contains(fault, "no space"), fault
			})
		}
		// Still full: what the disk had, and what was held in memory, reaches the hub anyway.
		poll.Until(t, 30*time.Second, "every press made so far to be a ticket while the disk is full", func() (bool, string) {
			have, err := f.hubIncidents(k.id)
			if err != nil {
				return false, err.Error()
			}
			for _, r := range s.ledger.Reports() {
				if r.Kind == KindButton && !confirmed[r.Key] && !have[r.Key] {
					return false, "no ticket for " + r.Key
				}
			}
			for _, r := range s.ledger.Reports() {
				confirmed[r.Key] = true // the API lists the newest tickets: check each report once
			}
			return true, ""
		})
		if i%2 == 1 {
			// Some more time full and online, acks arriving that cannot be written.
			time.Sleep(s.between(0, 3*time.Second))
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		f.settle(settleTimeout())
		s.trials++
	}
	f.finish()
}

var reNotOnDisk = regexp.MustCompile(`level=ERROR msg="(INCIDENT NOT ON DISK|SMS report not on disk)`)

// Scenario 6: the hub's store is slow: the test holds an exclusive lock on the SQLite file (as
// a backup tool or a stuck writer would) for seconds, longer than the hub's busy timeout, while
// every kiosk floods it with reports. The hub must push back (no ack before the commit), not
// crash, lose nothing, and keep its memory bounded. Each lock is a trial.
func TestSlowStore(t *testing.T) {
	s := newScenario(t, "6. hub store locked (BEGIN EXCLUSIVE) under a flood")
	f := newFleet(t, s, fleetOptions{kiosks: 4})
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.hubDir(), hubDBFile)+"?_pragma=busy_timeout(20000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.Sleep(time.Second) // let the hub's start-up allocations settle before the baseline
	before := vmRSS(f.hub)
	peak := before
	load := f.load(ctx, 40*time.Millisecond, 4)
	for range trialsFor(3, 50) {
		time.Sleep(s.between(300*time.Millisecond, 1500*time.Millisecond))
		held := s.between(time.Second, 7*time.Second) // the hub's busy timeout is 5 s
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
			t.Fatalf("lock the hub's database: %v", err)
		}
		for end := time.Now().Add(held); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			peak = max(peak, vmRSS(f.hub))
		}
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatalf("unlock the hub's database: %v", err)
		}
		conn.Close()
		if f.hub.Exited() {
			t.Fatalf("the hub died while its store was locked:\n%s", f.hub.Tail(40))
		}
		s.trials++
	}
	cancel()
	load.Wait()
	f.settle(settleTimeout())
	after := vmRSS(f.hub)
	t.Logf("hub VmRSS: %d KiB before, %d KiB peak while locked, %d KiB after", before, peak, after)
	// Generous: the point is that a stalled store does not make the hub buffer without end.
	if limit := before + 200<<10; peak > limit {
		t.Errorf("hub VmRSS peaked at %d KiB with its store locked, over %d KiB (%d KiB before)", peak, limit, before)
	}
	f.finish()
}

// Scenario 7: kiosks whose clocks are hours ahead of or behind the hub's. The hub orders tickets
// and computes deadlines by its own clock (created_at); the device's occurred_at is kept as sent
// but changes neither. Each press is a trial.
func TestClockSkew(t *testing.T) {
	s := newScenario(t, "7. clock skew of hours between kiosk and hub")
	hours := func() time.Duration { return time.Duration(1+s.rnd.IntN(11)) * time.Hour }
	skews := map[string]time.Duration{"fault-ahead": hours(), "fault-behind": -hours()}
	f := newFleet(t, s, fleetOptions{kiosks: 1, extra: []string{"fault-ahead", "fault-behind"}})
	type skewed struct {
		id   string
		skew time.Duration
		dir  string
		d    *daemon.Daemon
	}
	var ks []*skewed
	for _, id := range []string{"fault-ahead", "fault-behind"} {
		k := &skewed{id: id, skew: skews[id], dir: t.TempDir()}
		cfgPath := writeFile(t, filepath.Join(f.dir, id+".yaml"), buttonKioskYAML(id, f.proxy.URL(), k.dir))
		cfg, err := daemon.LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New(cfg, daemon.WithClock(func() time.Time { return time.Now().Add(k.skew) }), daemon.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		k.d = d
		t.Cleanup(func() { d.Close() })
		ks = append(ks, k)
		t.Logf("%s runs %v off the hub's clock", id, k.skew)
	}
	start := time.Now()
	var order []string // incident IDs in the order pressed, each received before the next
	pressedAt := map[string]time.Time{}
	for range trialsFor(9, 150) {
		i := s.rnd.IntN(3)
		var id string
		if i == 2 {
			res, err := f.kiosks[0].press(context.Background())
			if err != nil {
				t.Fatalf("press on %s: %v", f.kiosks[0].id, err)
			}
			id = res.IncidentID
		} else {
			k := ks[i]
			res, err := k.d.SimPress(context.Background(), "panik", 150*time.Millisecond)
			if err != nil || !res.Raised {
				t.Fatalf("press on %s: %+v %v", k.id, res, err)
			}
			id = res.IncidentID
			s.ledger.Add(Report{Key: id, Kind: KindButton, Device: k.id})
			poll.Until(t, 30*time.Second, "the hub's ack on "+k.id, func() (bool, string) {
				for _, in := range k.d.Status().Incidents {
					if in.ID == id {
						return in.State == "received", in.State
					}
				}
				return false, "not listed"
			})
		}
		pressedAt[id] = time.Now()
		order = append(order, id)
		s.trials++
	}
	f.settle(settleTimeout())
	var tickets []struct {
		IncidentID string     `json:"incident_id"`
		DeviceID   string     `json:"device_id"`
		Number     string     `json:"number"`
		Priority   string     `json:"priority"`
		OccurredAt time.Time  `json:"occurred_at"`
		CreatedAt  time.Time  `json:"created_at"`
		AckDue     *time.Time `json:"ack_due"`
	}
	if err := f.api("/api/v1/tickets?limit=1000", &tickets); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	byID := map[string]int{}
	for i, tk := range tickets {
		byID[tk.IncidentID] = i
	}
	var prev time.Time
	var prevNumber string
	for _, id := range order {
		i, ok := byID[id]
		if !ok {
			continue // counted as lost by the check
		}
		tk := tickets[i]
		if tk.CreatedAt.Before(start.Add(-time.Second)) || tk.CreatedAt.After(end.Add(time.Second)) {
			t.Errorf("ticket %s from %s created at %v, outside the hub's clock during the run [%v, %v]", tk.Number, tk.DeviceID, tk.CreatedAt, start, end)
		}
		if tk.CreatedAt.Before(prev) || tk.Number <= prevNumber {
			t.Errorf("ticket %s (created %v) from %s is ordered before ticket %s (created %v), pressed earlier", tk.Number, tk.CreatedAt, tk.DeviceID, prevNumber, prev)
		}
		prev, prevNumber = tk.CreatedAt, tk.Number
		// The device's own time of the press is kept as it said it.
		want := pressedAt[id].Add(skews[tk.DeviceID])
		if d := tk.OccurredAt.Sub(want); d < -time.Minute || d > time.Minute {
			t.Errorf("ticket %s from %s: occurred_at %v, want the device's clock %v", tk.Number, tk.DeviceID, tk.OccurredAt, want)
		}
		// By the hub's clock: the deadline and created_at are read from it a moment apart.
		if tk.Priority == "emergency" && (tk.AckDue == nil || tk.AckDue.Sub(tk.CreatedAt.Add(5*time.Minute)).Abs() > time.Second) {
			t.Errorf("emergency ticket %s from %s (created %v, occurred %v) is due for ack at %v, want created_at + 5 min", tk.Number, tk.DeviceID, tk.CreatedAt, tk.OccurredAt, tk.AckDue)
		}
	}
	for _, k := range ks {
		k.d.Close()
		readOutbox(t, k.dir, k.id, &s.ledger)
	}
	f.finish()
}

// buttonKioskYAML is the configuration of a kiosk with a panic button and no modem.
func buttonKioskYAML(id, brokerURL, dir string) string {
	return fmt.Sprintf(`device_id: %s
name: Pos %s
broker:
  url: %s
  keepalive: 2s
  connect_retry_interval: 200ms
  max_reconnect_interval: 500ms
gpio:
  driver: sim
buttons:
  - {name: panik, category: medical, pin: 22, hold_ms: 40, debounce_ms: 10, cancel_window_ms: 0, chatter_edges: 1000, chatter_window_ms: 1}
leds:
  - {name: status, pin: 23}
store:
  dir: %s
admin:
  listen: 127.0.0.1:0
retry_interval: 1s
heartbeat_interval: 1s
`, id, id, brokerURL, dir)
}
