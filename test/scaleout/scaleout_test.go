// Package scaleout tests the hub as replicas (docs/scale-out.md): two kentongan-hub processes on
// one PostgreSQL database and one Mosquitto, sharing the incidents through a shared
// subscription, while simulated kiosks report; one replica is killed under load.
package scaleout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/mosquittotest"
	"github.com/kentongan/kentongan/test/pgtest"
	"github.com/kentongan/kentongan/test/poll"
	"github.com/kentongan/kentongan/test/proc"
)

// TestMain stops the private PostgreSQL server. pgtest.Main exits the process, so the hub binary's
// directory is not removed here: a later proc.Build removes it once it is a day old.
func TestMain(m *testing.M) { pgtest.Main(m) }

// hubBinary builds kentongan-hub once per test run.
func hubBinary(t *testing.T) string {
	t.Helper()
	return filepath.Join(proc.Build(t, "./cmd/kentongan-hub"), "kentongan-hub")
}

const (
	kiosks       = 8
	perKiosk     = 40
	pressEvery   = 60 * time.Millisecond // 8 kiosks: about 130 incidents a second for 2.4 s
	resendAfter  = time.Second           // the real kiosk's retry_interval, shortened
	leaderRetry  = "500ms"
	testDeadline = 45 * time.Second
)

var (
	runningRe = regexp.MustCompile(`msg="kentongan-hub running" http=(\S+)`)
	leadsRe   = regexp.MustCompile(`msg="this replica leads`)
)

// kiosk is a simulated device: it keeps every incident until the hub says "received", and
// re-sends what is unanswered, as kentongand's outbox does.
type kiosk struct {
	id string
	c  paho.Client

	mu       sync.Mutex
	pending  map[string]mqtt.Incident // unanswered, by incident ID
	sentAt   map[string]time.Time
	received map[string]string // incident ID -> ticket number
	rejected []string
	resends  int
}

func newKiosk(t *testing.T, url, id string) *kiosk {
	t.Helper()
	k := &kiosk{id: id, pending: map[string]mqtt.Incident{}, sentAt: map[string]time.Time{}, received: map[string]string{}}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("kiosk-" + id).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectTimeout(10 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			c.Subscribe(mqtt.Topic(id, mqtt.KindAck), mqtt.QoSAck, k.onAck)
		})
	k.c = paho.NewClient(o)
	if tok := k.c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("kiosk %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { k.c.Disconnect(0) })
	return k
}

func (k *kiosk) onAck(_ paho.Client, m paho.Message) {
	a, err := mqtt.DecodeAck(m.Payload())
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch a.Status {
	case mqtt.AckReceived:
		if _, ok := k.pending[a.IncidentID]; ok || k.received[a.IncidentID] == "" {
			delete(k.pending, a.IncidentID)
			k.received[a.IncidentID] = a.TicketNumber
		}
	case mqtt.AckRejected:
		k.rejected = append(k.rejected, a.IncidentID+": "+a.Error)
	}
}

func (k *kiosk) publish(in mqtt.Incident) error {
	b, err := mqtt.Encode(in)
	if err != nil {
		return err
	}
	tok := k.c.Publish(mqtt.Topic(k.id, mqtt.KindIncident), mqtt.QoSIncident, false, b)
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("publish %s: no PUBACK", in.ID)
	}
	return tok.Error()
}

// press creates and publishes one incident.
func (k *kiosk) press() error {
	id, err := mqtt.NewIncidentID()
	if err != nil {
		return err
	}
	in := mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: k.id, Source: mqtt.SourceButton, Button: "darurat",
		Category: "fire", OccurredAt: time.Now().UTC(), Attempt: 1}
	k.mu.Lock()
	k.pending[id], k.sentAt[id] = in, time.Now()
	k.mu.Unlock()
	return k.publish(in)
}

// resend re-publishes incidents unanswered for longer than resendAfter.
func (k *kiosk) resend() {
	var due []mqtt.Incident
	k.mu.Lock()
	for id, in := range k.pending {
		if time.Since(k.sentAt[id]) >= resendAfter {
			in.Attempt++
			k.pending[id], k.sentAt[id] = in, time.Now()
			due = append(due, in)
		}
	}
	k.resends += len(due)
	k.mu.Unlock()
	for _, in := range due {
		_ = k.publish(in) // a failed publish is retried at the next round
	}
}

func (k *kiosk) state() (pending, received, resends int, rejected []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pending), len(k.received), k.resends, append([]string(nil), k.rejected...)
}

// replica starts one kentongan-hub replica and returns it with its HTTP address.
func replica(t *testing.T, name, brokerURL, dsn string, devices []string) (*proc.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nhttp: {listen: \"127.0.0.1:0\"}\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "mqtt: {broker_url: %q, replica_id: %q}\n", brokerURL, name)
	fmt.Fprintf(&b, "store: {postgres_url: %q}\nleader: {retry: %s}\nsupervision: {scan: 500ms}\ndevices:\n", dsn, leaderRetry)
	for _, d := range devices {
		fmt.Fprintf(&b, "  - {id: %s, name: Pos %s, site: {kecamatan: Curug, kelurahan: Binong, rw: \"03\", rt: \"01\"}}\n", d, d)
	}
	cfg := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := proc.StartWith(t, proc.Options{Name: "hub-" + name, Echo: os.Getenv("SCALEOUT_LOG") != ""}, hubBinary(t), "--config", cfg)
	addr := p.WaitLine(runningRe, 60*time.Second)
	return p, addr
}

func leaderMetric(addr string) (string, error) {
	return metric(addr, "kentongan_hub_leader ")
}

// metric is the value of the first /metrics line starting with prefix.
func metric(addr, prefix string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for l := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no %s in /metrics", prefix)
}

// TestReplicaKilledUnderLoad: two replicas share the load; the one that leads is killed with
// SIGKILL while incidents flow; every incident becomes exactly one ticket, every kiosk has every
// "received", and the survivor takes over leadership.
func TestReplicaKilledUnderLoad(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	dsn := pgtest.URL(t)
	hubBinary(t) // build before the clock matters

	devices := make([]string, kiosks)
	for i := range devices {
		devices[i] = fmt.Sprintf("pos-%02d", i)
	}
	// One after the other: the first creates the schema.
	a, addrA := replica(t, "a", broker.URL(), dsn, devices)
	b, addrB := replica(t, "b", broker.URL(), dsn, devices)

	var leader, survivor *proc.Proc
	var leaderAddr, survivorAddr string
	poll.Until(t, 30*time.Second, "one replica leading", func() (bool, string) {
		la := a.Find(leadsRe) != nil
		lb := b.Find(leadsRe) != nil
		switch {
		case la && !lb:
			leader, survivor, leaderAddr, survivorAddr = a, b, addrA, addrB
		case lb && !la:
			leader, survivor, leaderAddr, survivorAddr = b, a, addrB, addrA
		}
		return la != lb, fmt.Sprintf("a leads: %v, b leads: %v", la, lb)
	})
	if v, err := leaderMetric(survivorAddr); err != nil || v != "0" {
		t.Fatalf("follower's kentongan_hub_leader = %q, %v; want 0", v, err)
	}

	ks := make([]*kiosk, kiosks)
	for i, d := range devices {
		ks[i] = newKiosk(t, broker.URL(), d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var resenders sync.WaitGroup
	for _, k := range ks {
		resenders.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					k.resend()
				}
			}
		})
	}
	defer resenders.Wait()
	defer cancel()

	var (
		pressers  sync.WaitGroup
		pressedMu sync.Mutex
		pressed   int
		pressErr  error
	)
	for _, k := range ks {
		pressers.Go(func() {
			for range perKiosk {
				err := k.press()
				pressedMu.Lock()
				pressed++
				if err != nil && pressErr == nil {
					pressErr = err
				}
				pressedMu.Unlock()
				time.Sleep(pressEvery) // the load's pace, not a wait for a result
			}
		})
	}
	total := kiosks * perKiosk
	poll.Until(t, testDeadline, "a third of the incidents published", func() (bool, string) {
		pressedMu.Lock()
		defer pressedMu.Unlock()
		return pressed >= total/3, fmt.Sprintf("%d of %d", pressed, total)
	})
	// The shared subscription gives both replicas a share; check it before one goes.
	accepted := `kentongan_hub_incidents_total{result="accepted"} `
	poll.Until(t, testDeadline, "both replicas making tickets", func() (bool, string) {
		va, ea := metric(leaderAddr, accepted)
		vb, eb := metric(survivorAddr, accepted)
		return ea == nil && eb == nil && va != "0" && vb != "0", fmt.Sprintf("leader %q %v, follower %q %v", va, ea, vb, eb)
	})
	leader.Kill()
	t.Logf("killed the leader %s under load", leader.Name())
	pressers.Wait()
	if pressErr != nil {
		t.Fatalf("publishing: %v", pressErr)
	}

	poll.Until(t, testDeadline, "every incident answered \"received\"", func() (bool, string) {
		var pend, recv int
		for _, k := range ks {
			p, r, _, _ := k.state()
			pend, recv = pend+p, recv+r
		}
		return pend == 0 && recv == total, fmt.Sprintf("%d received, %d pending of %d", recv, pend, total)
	})
	resends := 0
	for _, k := range ks {
		_, _, r, rej := k.state()
		resends += r
		if len(rej) > 0 {
			t.Errorf("kiosk %s had rejections: %v", k.id, rej)
		}
	}
	t.Logf("%d incidents, %d re-sends", total, resends)

	poll.Until(t, 30*time.Second, "the survivor leading", func() (bool, string) {
		v, err := leaderMetric(survivorAddr)
		return v == "1", fmt.Sprintf("kentongan_hub_leader %q, %v", v, err)
	})
	survivor.WaitLine(leadsRe, time.Second)

	// The database: every incident exactly one ticket, and no other ticket.
	qctx, qcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer qcancel()
	conn, err := pgx.Connect(qctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(qctx, "SELECT incident_id, number FROM tickets")
	if err != nil {
		t.Fatal(err)
	}
	tickets := map[string]int{}
	numbers := map[string]string{}
	for rows.Next() {
		var inc, num string
		if err := rows.Scan(&inc, &num); err != nil {
			t.Fatal(err)
		}
		tickets[inc]++
		numbers[inc] = num
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost, dup := 0, 0
	for _, k := range ks {
		k.mu.Lock()
		for inc, num := range k.received {
			switch c := tickets[inc]; {
			case c == 0:
				lost++
				t.Errorf("incident %s of %s acknowledged as %s but has no ticket", inc, k.id, num)
			case c > 1:
				dup++
				t.Errorf("incident %s has %d tickets", inc, c)
			case numbers[inc] != num:
				t.Errorf("incident %s: kiosk was told %s, the database says %s", inc, num, numbers[inc])
			}
		}
		k.mu.Unlock()
	}
	if len(tickets) != total {
		t.Errorf("%d tickets for %d incidents", len(tickets), total)
	}
	t.Logf("tickets %d, lost %d, duplicated %d", len(tickets), lost, dup)
}
