package hubd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/webhook"
	"github.com/kentongan/kentongan/mqtt"
)

const hookSecret = "rahasia"

// agencyHook is an agency's webhook receiver that refuses its first posts.
type agencyHook struct {
	mu       sync.Mutex
	failures int
	posts    int
	badSig   int
	got      map[string]webhook.Payload // by delivery key: a repeat would overwrite, and is counted
	repeats  int
}

func (h *agencyHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.posts++
	if !webhook.Verify([]byte(hookSecret), body, r.Header.Get(webhook.HeaderSignature)) {
		h.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.failures > 0 {
		h.failures--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if _, dup := h.got[p.Delivery]; dup {
		h.repeats++
	}
	h.got[p.Delivery] = p
}

func (h *agencyHook) snapshot() (got map[string]webhook.Payload, posts, badSig, repeats int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	got = map[string]webhook.Payload{}
	for k, v := range h.got {
		got[k] = v
	}
	return got, h.posts, h.badSig, h.repeats
}

func routingYAML(hookURL string) string {
	return fmt.Sprintf(`kecamatan: [Cikupa, Legok]
agencies:
  - id: damkar
    name: Dinas Pemadam Kebakaran
    short: Damkar
    webhook: {url: %q, secret: %q}
  - id: polisi
    name: Polresta
    units:
      - {id: polsek-cikupa, areas: [Cikupa]}
categories:
  fire: {agency: damkar, priority: emergency}
  crime: {agency: polisi, priority: emergency}
`, hookURL, hookSecret)
}

// domainHub is a hub with a routing file, quick webhook retries and one kiosk at Cikupa with
// two RT/RW heads.
func domainHub(t *testing.T, dir, routing string) *hubd.Main {
	t.Helper()
	m := newHub(t, dir, "pos-1")
	m.Config.Routing.File = routing
	m.Config.Routing.Watch = -1 // reloads come from SIGHUP and the API in these tests
	m.Config.Webhooks.RetryInitial, m.Config.Webhooks.RetryMax = 200*time.Millisecond, 400*time.Millisecond
	m.Config.Devices[0].Site = hub.Site{Kecamatan: "Cikupa", Kelurahan: "Talaga"}
	m.Config.Devices[0].RTRWHeads = []string{"081200000001", "+6281200000002"}
	return m
}

func run(t *testing.T, m *hubd.Main) {
	t.Helper()
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run hub: %v", err)
	}
}

// TestWebhookDeliveredAcrossHubRestart: a fire ticket is routed to Damkar and posted to its
// webhook, signed; the receiver fails the first attempts and the hub restarts meanwhile, and
// every event arrives, once.
func TestWebhookDeliveredAcrossHubRestart(t *testing.T) {
	hook := &agencyHook{failures: 2, got: map[string]webhook.Payload{}}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir := t.TempDir()
	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(routingYAML(srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := domainHub(t, dir, routing)
	run(t, m)
	k := newKiosk(t, m.BrokerURL(), "pos-1")
	in := k.incident()
	in.Category = "fire"
	k.send(in)
	k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in.ID)) > 0 })
	tk, err := m.Service.Ticket(context.Background(), in.ID)
	if err != nil || tk.Agency != "damkar" || tk.Priority != hub.PriorityEmergency || tk.AckDue == nil {
		t.Fatalf("fire ticket %+v, %v", tk, err)
	}
	waitFor(t, "a failed attempt", 10*time.Second, func() (bool, string) {
		_, posts, _, _ := hook.snapshot()
		return posts >= 1, fmt.Sprint(posts, " posts")
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = domainHub(t, dir, routing)
	run(t, m)
	defer m.Close()
	if _, err := m.Service.Acknowledge(context.Background(), tk.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	// Creation, the RT/RW heads asked, acknowledgement.
	waitFor(t, "every event delivered", 20*time.Second, func() (bool, string) {
		got, posts, bad, _ := hook.snapshot()
		return len(got) == 3, fmt.Sprintf("%d delivered, %d posts, %d badly signed", len(got), posts, bad)
	})
	got, _, bad, repeats := hook.snapshot()
	if bad != 0 || repeats != 0 {
		t.Errorf("%d posts badly signed, %d repeated", bad, repeats)
	}
	var kinds []string
	for _, p := range got {
		if p.Ticket.ID != tk.ID || p.Agency != "damkar" {
			t.Errorf("payload %+v", p)
		}
		kinds = append(kinds, string(p.Event.Kind)+":"+string(p.Event.To))
	}
	slices.Sort(kinds)
	if want := []string{"confirm_requested:new", "status:acknowledged", "status:new"}; !slices.Equal(kinds, want) {
		t.Errorf("delivered events %v, want %v", kinds, want)
	}
	if f, _ := m.Webhooks.Deliveries(context.Background(), hub.DeliveryFilter{Failing: true}); len(f) != 0 {
		t.Errorf("still failing: %+v", f)
	}
}

// TestRoutingReloadRefusesBadFile: SIGHUP reloads the routing file; a bad one is refused with
// its line, raises an alert and leaves the previous routing in force; a fixed one, reloaded
// through the service the API uses, clears it.
func TestRoutingReloadRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	routing := filepath.Join(dir, "routing.yaml")
	good := routingYAML("https://damkar.example/hook")
	if err := os.WriteFile(routing, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	m := domainHub(t, dir, routing)
	run(t, m)
	defer m.Close()
	ctx := context.Background()

	bad := strings.Replace(good, "crime: {agency: polisi", "crime: {agency: polsi", 1)
	if err := os.WriteFile(routing, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad file refused", 10*time.Second, func() (bool, string) {
		st := m.Routes.RoutingStatus(ctx)
		return st.LastErrorLine == 13 && strings.Contains(st.LastError, "polsi"), fmt.Sprintf("%+v", st)
	})
	if al := m.Service.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertRoutingConfig}); len(al) != 1 || !strings.Contains(al[0].Message, "line 13") {
		t.Errorf("routing alerts %+v", al)
	}
	k := newKiosk(t, m.BrokerURL(), "pos-1")
	in := k.incident()
	in.Category = "crime"
	k.send(in)
	k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in.ID)) > 0 })
	if tk, _ := m.Service.Ticket(ctx, in.ID); tk.Agency != "polisi" || tk.Unit != "polsek-cikupa" {
		t.Errorf("routed by the refused file? %s/%s", tk.Agency, tk.Unit)
	}
	met := newAPI(t, m).metrics()
	if !metricLine(met, "kentongan_hub_routing_config_valid 0") {
		t.Errorf("metrics do not show the refused file")
	}

	fixed := strings.Replace(good, "crime: {agency: polisi", "crime: {agency: damkar", 1)
	if err := os.WriteFile(routing, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Routes.ReloadRouting(ctx); err != nil {
		t.Fatalf("reload the fixed file: %v", err)
	}
	if al := m.Service.Alerts(ctx, hub.AlertFilter{Kind: hub.AlertRoutingConfig}); len(al) != 0 {
		t.Errorf("routing alert after the fix: %+v", al)
	}
	if st := m.Routes.RoutingStatus(ctx); st.LastError != "" {
		t.Errorf("status after the fix %+v", st)
	}
}

// TestConfirmationOverMQTT: a press makes the hub ask the post's RT/RW heads through the kiosk
// (sms_send commands); a head's YA, sent back by the kiosk as a request, shows on the ticket,
// and the metrics count the ticket by status and priority.
func TestConfirmationOverMQTT(t *testing.T) {
	m := domainHub(t, t.TempDir(), "")
	run(t, m)
	defer m.Close()
	ctx := context.Background()
	k := newKiosk(t, m.BrokerURL(), "pos-1")
	var (
		mu   sync.Mutex
		cmds []mqtt.SMSSend
	)
	tok := k.c.Subscribe(mqtt.Topic("pos-1", mqtt.KindCommand), mqtt.QoSCommand, func(_ paho.Client, msg paho.Message) {
		c, err := mqtt.DecodeCommand(msg.Payload())
		if err != nil || c.Name != mqtt.CommandSMSSend {
			return
		}
		s, err := mqtt.DecodeSMSSend(c)
		if err != nil {
			return
		}
		mu.Lock()
		cmds = append(cmds, s)
		mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe to commands: %v", tok.Error())
	}

	in := k.incident()
	k.send(in)
	k.waitAcks("received", 10*time.Second, func(a []mqtt.Ack) bool { return len(ackFor(a, in.ID)) > 0 })
	tk, err := m.Service.Ticket(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both heads asked", 10*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range cmds {
			if strings.Contains(c.Text, "YA "+tk.Number) && (c.To == "+6281200000001" || c.To == "+6281200000002") {
				n++
			}
		}
		return n == 2, fmt.Sprintf("%+v", cmds)
	})

	id, _ := mqtt.NewIncidentID()
	k.send(mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: "pos-1", Source: mqtt.SourceSMS, Reporter: "+6281200000001",
		Request: mqtt.RequestConfirm, Target: tk.Number, OccurredAt: time.Now(), Attempt: 1})
	waitFor(t, "the answer on the ticket", 10*time.Second, func() (bool, string) {
		got, err := m.Service.Ticket(ctx, tk.ID)
		return err == nil && got.Confirmation.State == hub.ConfirmYes, fmt.Sprintf("%+v", got.Confirmation)
	})
	var got hub.Ticket
	if code := newAPI(t, m).do("GET", "/api/v1/tickets/"+tk.Number, "", &got); code != 200 || got.Confirmation.State != hub.ConfirmYes ||
		got.Confirmation.By != "+6281200000001" {
		t.Errorf("ticket through the API: %d %+v", code, got.Confirmation)
	}
	met := newAPI(t, m).metrics()
	for _, line := range []string{
		`kentongan_hub_tickets{priority="emergency",status="new"} 1`,
		`kentongan_hub_tickets{priority="normal",status="acknowledged"} 0`,
		`kentongan_hub_kiosks{state="online"} 1`,
		`kentongan_hub_deadline_breaches_total{kind="ack"} 0`,
		`kentongan_hub_confirmations_total{result="yes"} 1`,
		`kentongan_hub_incident_to_ticket_seconds_count 1`,
	} {
		if !metricLine(met, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}
