package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/hub/storetest"
	"github.com/kentongan/kentongan/hub/webhook"
	"github.com/kentongan/kentongan/test/poll"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

const secret = "rahasia-damkar"

// receiver is an agency's endpoint: it refuses the first failures posts with 503, and checks
// every signature.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	failures int
	posts    int
	got      []webhook.Payload
	keys     []string
	badSig   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	if !webhook.Verify([]byte(secret), body, r.Header.Get(webhook.HeaderSignature)) {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.failures > 0 {
		rc.failures--
		http.Error(w, "sedang pemeliharaan", http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("payload %s: %v", body, err)
	}
	if r.Header.Get(webhook.HeaderDelivery) != p.Delivery || r.Header.Get(webhook.HeaderEvent) != string(p.Event.Kind) ||
		r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("headers %v for payload %+v", r.Header, p)
	}
	rc.got = append(rc.got, p)
	rc.keys = append(rc.keys, p.Delivery)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) delivered() []webhook.Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Payload(nil), rc.got...)
}

func routingFile(t *testing.T, url string, extra string) *route.Router {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routing.yaml")
	y := fmt.Sprintf(`agencies:
  - id: damkar
    name: Damkar
    webhook: {url: %q, secret: %q%s}
  - id: pln
    name: PLN
categories:
  fire: {agency: damkar, priority: emergency}
`, url, secret, extra)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := route.New(route.Options{Path: path, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openStore(t *testing.T, path string, clock hub.Clock) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Clock: clock, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTicket(t *testing.T, s hub.Store, n int, agency string) *hub.Ticket {
	t.Helper()
	res, err := s.Ingest(context.Background(), []hub.NewTicket{{
		IncidentID: fmt.Sprintf("0195a1b2-0000-7000-8000-%012d", n), DeviceID: "pos-1", Source: "button",
		Priority: hub.PriorityEmergency, Agency: agency, OccurredAt: time.Now(),
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("ingest: %v %v", err, res[0].Err)
	}
	return res[0].Ticket
}

// TestRetriedAcrossRestart: a receiver that fails its first attempts gets every event once,
// signed, after back-off, even though the hub restarted between attempts.
func TestRetriedAcrossRestart(t *testing.T) {
	ctx := context.Background()
	rc := &receiver{t: t, failures: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	routes := routingFile(t, srv.URL, "")
	clock := storetest.NewClock(time.Date(2026, 3, 13, 3, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "hub.db")
	store := openStore(t, path, clock)

	tk := newTicket(t, store, 1, "damkar")
	if _, err := store.Acknowledge(ctx, tk.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	newTicket(t, store, 2, "pln") // PLN has no webhook: nothing is posted for it

	opts := webhook.Options{Store: store, Targets: routes, Clock: clock, Logger: discard, RetryInitial: 10 * time.Second, RetryMax: time.Minute}
	d, err := webhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	next := d.RunOnce(ctx)
	if !next.Equal(clock.Now().Add(10 * time.Second)) {
		t.Errorf("after a failure the next try is at %v, want in 10s", next)
	}
	failing, _ := d.Deliveries(ctx, hub.DeliveryFilter{Failing: true})
	if len(failing) != 1 || failing[0].LastStatus != http.StatusServiceUnavailable || !strings.Contains(failing[0].LastError, "503") {
		t.Fatalf("failing deliveries %+v", failing)
	}
	all, _ := d.Deliveries(ctx, hub.DeliveryFilter{})
	if len(all) != 2 {
		t.Fatalf("%d deliveries, want 2 (damkar's creation and acknowledgement)", len(all))
	}

	clock.Advance(10 * time.Second)
	d.RunOnce(ctx) // second failure; the next wait doubles
	if got, _ := d.Deliveries(ctx, hub.DeliveryFilter{Failing: true}); len(got) != 1 || got[0].Attempts != 2 ||
		!got[0].NextAt.Equal(clock.Now().Add(20*time.Second)) {
		t.Fatalf("after two failures %+v", got)
	}

	// The hub restarts mid-retry.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store = openStore(t, path, clock)
	defer store.Close()
	opts.Store = store
	d, err = webhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Second)
	if next := d.RunOnce(ctx); !next.IsZero() {
		t.Errorf("something still pending at %v", next)
	}
	got := rc.delivered()
	if len(got) != 2 {
		t.Fatalf("received %d, want 2: %+v", len(got), got)
	}
	if got[0].Event.Kind != hub.EventStatus || got[0].Event.To != hub.StatusNew || got[1].Event.To != hub.StatusAcknowledged ||
		got[0].Ticket.ID != tk.ID || got[0].Agency != "damkar" || got[0].Delivery != fmt.Sprintf("damkar:%d", got[0].Event.ID) {
		t.Errorf("payloads %+v", got)
	}
	if rc.badSig != 0 || rc.posts != 4 {
		t.Errorf("%d posts, %d with a bad signature; want 4 signed posts", rc.posts, rc.badSig)
	}
	if f, _ := d.Deliveries(ctx, hub.DeliveryFilter{Failing: true}); len(f) != 0 {
		t.Errorf("still failing: %+v", f)
	}
	// Nothing is posted twice.
	clock.Advance(time.Hour)
	d.RunOnce(ctx)
	if n := len(rc.delivered()); n != 2 {
		t.Errorf("received %d after another run", n)
	}
}

// TestGiveUpAndRetryByHand: a delivery that keeps failing is failed, shown, and delivered when
// retried by hand; an agency that wants only some events gets only those.
func TestGiveUpAndRetryByHand(t *testing.T) {
	ctx := context.Background()
	rc := &receiver{t: t, failures: 3}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	routes := routingFile(t, srv.URL, ", events: [deadline_breached, status]")
	clock := storetest.NewClock(time.Date(2026, 3, 13, 3, 0, 0, 0, time.UTC))
	store := openStore(t, filepath.Join(t.TempDir(), "hub.db"), clock)
	defer store.Close()
	tk := newTicket(t, store, 1, "damkar")
	if _, _, err := store.Merge(ctx, newTicket(t, store, 2, "damkar").ID, tk.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	d, err := webhook.New(webhook.Options{Store: store, Targets: routes, Clock: clock, Logger: discard,
		RetryInitial: time.Second, RetryMax: time.Second, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	d.RunOnce(ctx)
	clock.Advance(time.Second)
	d.RunOnce(ctx)
	failed, _ := d.Deliveries(ctx, hub.DeliveryFilter{State: hub.DeliveryFailed})
	if len(failed) != 1 || failed[0].Attempts != 2 {
		t.Fatalf("failed %+v", failed)
	}
	// The merge's own event (kind merged) is not among the events damkar asked for.
	all, _ := d.Deliveries(ctx, hub.DeliveryFilter{})
	for _, dl := range all {
		if dl.Kind == string(hub.EventMerged) {
			t.Errorf("a merged event was queued for an agency that did not ask: %+v", dl)
		}
	}
	if _, err := d.RetryDelivery(ctx, failed[0].ID); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.failures = 0
	rc.mu.Unlock()
	for range 5 {
		d.RunOnce(ctx)
		clock.Advance(time.Second)
	}
	if f, _ := d.Deliveries(ctx, hub.DeliveryFilter{Failing: true}); len(f) != 0 {
		t.Errorf("after retrying by hand: %+v", f)
	}
	if n := len(rc.delivered()); n != len(all) {
		t.Errorf("received %d of %d", n, len(all))
	}
	if _, err := d.RetryDelivery(ctx, failed[0].ID); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("retry a delivered one: %v", err)
	}
}

// TestDispatcherLoop: running, the dispatcher posts a change without being asked.
func TestDispatcherLoop(t *testing.T) {
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	store := openStore(t, filepath.Join(t.TempDir(), "hub.db"), hub.SystemClock{})
	defer store.Close()
	d, err := webhook.New(webhook.Options{Store: store, Targets: routingFile(t, srv.URL, ""), Logger: discard, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer d.Close()
	newTicket(t, store, 1, "damkar")
	poll.True(t, 10*time.Second, "the new ticket posted", func() bool { return len(rc.delivered()) == 1 })
}

func TestSignature(t *testing.T) {
	body := []byte(`{"a":1}`)
	sig := webhook.Sign([]byte("k"), body)
	// echo -n '{"a":1}' | openssl dgst -sha256 -hmac k
	if sig != "sha256=c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff" {
		t.Errorf("signature %s", sig)
	}
	if !webhook.Verify([]byte("k"), body, sig) || webhook.Verify([]byte("k2"), body, sig) || webhook.Verify([]byte("k"), []byte(`{"a":2}`), sig) {
		t.Errorf("Verify accepts what it should not, or refuses its own signature")
	}
}

func TestNotifier(t *testing.T) {
	var (
		mu    sync.Mutex
		fails = 1
		got   []webhook.AlertPayload
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify([]byte("sv"), body, r.Header.Get(webhook.HeaderSignature)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if fails > 0 {
			fails--
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var p webhook.AlertPayload
		_ = json.Unmarshal(body, &p)
		got = append(got, p)
	}))
	defer srv.Close()
	n, err := webhook.NewNotifier(webhook.NotifierOptions{URL: srv.URL, Secret: "sv", Logger: discard, Retry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Notify(hub.Alert{ID: "kiosk_offline:pos-1", Kind: hub.AlertKioskOffline, DeviceID: "pos-1", Message: "pos-1 silent"})
	poll.True(t, 10*time.Second, "the alert posted after one failure", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0].Alert.ID == "kiosk_offline:pos-1"
	})
	if _, err := webhook.NewNotifier(webhook.NotifierOptions{URL: srv.URL}); err == nil {
		t.Errorf("a notifier without a secret")
	}
}

// TestRunStopsAndResumes: a replica that loses leadership stops posting, and a new term picks
// up what happened meanwhile.
func TestRunStopsAndResumes(t *testing.T) {
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	store := openStore(t, filepath.Join(t.TempDir(), "hub.db"), hub.SystemClock{})
	defer store.Close()
	d, err := webhook.New(webhook.Options{Store: store, Targets: routingFile(t, srv.URL, ""), Logger: discard, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	term := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); d.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	stop := term()
	newTicket(t, store, 1, "damkar")
	poll.True(t, 10*time.Second, "the first ticket posted", func() bool { return len(rc.delivered()) == 1 })
	stop()
	newTicket(t, store, 2, "damkar")
	// Not leading: nothing may be posted. A few poll intervals pass with none.
	time.Sleep(200 * time.Millisecond)
	if n := len(rc.delivered()); n != 1 {
		t.Fatalf("%d posts while not leading, want 1", n)
	}
	stop = term()
	defer stop()
	poll.True(t, 10*time.Second, "the second ticket posted in the next term", func() bool { return len(rc.delivered()) == 2 })
}
