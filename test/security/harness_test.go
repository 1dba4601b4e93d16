// Package security probes the real hub the way an intruder would: MQTT clients without
// credentials or with someone else's, replayed and hostile payloads, connection floods, and
// the HTTP API and dashboard without a login, above one's role, across origins, and with
// injection payloads in every text a resident can put into the system. Every probe must be
// refused, and the refusal must show in the hub's log (and, for the broker, in its metrics):
// a refusal nobody can see is an intrusion nobody notices.
//
// The hub runs in-process (hub/hubd.Main, the program cmd/kentongan-hub runs) with its log
// captured record by record, so that a test asserts the very log line an operator would grep.
package security

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// wait is the deadline of every poll and request: generous, for a loaded CI machine (bcrypt
// under the race detector on two busy cores takes seconds per login).
const wait = 90 * time.Second

// record is one captured log record, its attributes flattened to strings.
type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.level, r.msg)
	for k, v := range r.attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// logBook is an slog.Handler that keeps every record at Info and above (the hub's default
// level), so that a probe whose refusal is logged only at Debug fails.
type logBook struct {
	mu      *sync.Mutex
	records *[]record
	with    []slog.Attr
	echo    bool
}

func newLogBook() *logBook {
	return &logBook{mu: &sync.Mutex{}, records: &[]record{}, echo: os.Getenv("SECURITY_LOG") != ""}
}

func (l *logBook) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }

func (l *logBook) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range l.with {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	if l.echo {
		fmt.Fprintln(os.Stderr, rec)
	}
	l.mu.Lock()
	*l.records = append(*l.records, rec)
	l.mu.Unlock()
	return nil
}

func (l *logBook) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.with = append(append([]slog.Attr(nil), l.with...), as...)
	return &c
}

func (l *logBook) WithGroup(string) slog.Handler { return l }

// find returns the records with message msg whose attributes include want, at Info or above.
func (l *logBook) find(msg string, want map[string]string) []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []record
next:
	for _, r := range *l.records {
		if r.msg != msg {
			continue
		}
		for k, v := range want {
			if !strings.Contains(r.attrs[k], v) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// waitLog waits for a record with message msg and the attributes want, and returns it.
func (l *logBook) waitLog(t *testing.T, msg string, want map[string]string) record {
	t.Helper()
	var got []record
	poll.Until(t, wait, fmt.Sprintf("log %q %v", msg, want), func() (bool, string) {
		got = l.find(msg, want)
		return len(got) > 0, fmt.Sprintf("%d records with that message: %v", len(l.find(msg, nil)), l.find(msg, nil))
	})
	return got[0]
}

// hubUnderTest is a running hub with its captured log and an administrator's API token.
type hubUnderTest struct {
	t     *testing.T
	m     *hubd.Main
	log   *logBook
	base  string
	admin string // API token of an administrator
}

// startHub runs a hub on a temp dir and free ports, with kiosks of the config file named in
// devices (they use the plain listener) and the TLS device listener on.
func startHub(t *testing.T, devices ...string) *hubUnderTest {
	t.Helper()
	return startHubWith(t, nil, devices...)
}

// startHubWith is startHub with setup applied to the configuration before the hub runs.
func startHubWith(t *testing.T, setup func(*hubd.Main), devices ...string) *hubUnderTest {
	t.Helper()
	lb := newLogBook()
	m := hubd.NewMain()
	m.Logger = slog.New(lb)
	if err := m.ParseFlags(context.Background(), []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range devices {
		m.Config.Devices = append(m.Config.Devices, hubd.DeviceConfig{ID: id, Name: "Pos " + id})
	}
	if setup != nil {
		setup(m)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run hub: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	h := &hubUnderTest{t: t, m: m, log: lb, base: "http://" + m.HTTPAddr()}
	h.admin = h.token("sec-admin", account.RoleAdmin, "")
	return h
}

// token makes a user of role (and agency) if needed and returns an API token of theirs.
func (h *hubUnderTest) token(name, role, agency string) string {
	h.t.Helper()
	tok, err := h.m.IssueToken(context.Background(), name, role, agency)
	if err != nil {
		h.t.Fatalf("token for %s: %v", name, err)
	}
	return tok
}

// do sends an API request with token ("" for none) and returns the status and body.
func (h *hubUnderTest) do(method, path, token, body string, hdr map[string]string) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// doJSON is do with the admin's token, decoding a 2xx answer into out.
func (h *hubUnderTest) doJSON(method, path, body string, out any) {
	h.t.Helper()
	st, raw := h.do(method, path, h.admin, body, nil)
	if st/100 != 2 {
		h.t.Fatalf("%s %s: %d %s", method, path, st, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

var noRedirect = &http.Client{
	Timeout:       wait,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// metric returns the value of one sample line of /metrics ("" if absent).
func (h *hubUnderTest) metric(sample string) string {
	h.t.Helper()
	_, raw := h.do("GET", "/metrics", "", "", nil)
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return v
		}
	}
	return ""
}

// waitMetric waits until sample is at least min.
func (h *hubUnderTest) waitMetric(sample string, min float64) {
	h.t.Helper()
	poll.Until(h.t, wait, sample, func() (bool, string) {
		v := h.metric(sample)
		var f float64
		_, err := fmt.Sscan(v, &f)
		return err == nil && f >= min, "value " + v
	})
}

// kiosk is an MQTT client on the wire like kentongand, with the acks it received.
type kiosk struct {
	t   *testing.T
	id  string
	c   paho.Client
	mu  sync.Mutex
	got []mqtt.Ack
}

func (k *kiosk) acks() []mqtt.Ack {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]mqtt.Ack(nil), k.got...)
}

func (k *kiosk) ackFor(incident string, st mqtt.AckStatus) *mqtt.Ack {
	for _, a := range k.acks() {
		if a.IncidentID == incident && a.Status == st {
			return &a
		}
	}
	return nil
}

func (k *kiosk) waitAck(t *testing.T, incident string, st mqtt.AckStatus) mqtt.Ack {
	t.Helper()
	var a *mqtt.Ack
	poll.Until(t, wait, fmt.Sprintf("%s: ack %s of %s", k.id, st, incident), func() (bool, string) {
		a = k.ackFor(incident, st)
		return a != nil, fmt.Sprintf("acks %+v", k.acks())
	})
	return *a
}

// connect connects as client ID clientID, with cert on the TLS listener if tlsAddr is set,
// subscribing to the ack topic of device (if not ""). It returns the error of the connect.
func connect(t *testing.T, brokerURL, clientID string, cfg *tls.Config, device string) (*kiosk, error) {
	t.Helper()
	k := &kiosk{t: t, id: device}
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second)
	if cfg != nil {
		opts.SetTLSConfig(cfg)
	}
	k.c = paho.NewClient(opts)
	if tok := k.c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = fmt.Errorf("connect timed out")
		}
		return nil, err
	}
	t.Cleanup(func() { k.c.Disconnect(0) })
	if device != "" {
		tok := k.c.Subscribe(mqtt.Topic(device, mqtt.KindAck), 1, func(_ paho.Client, m paho.Message) {
			if a, err := mqtt.DecodeAck(m.Payload()); err == nil {
				k.mu.Lock()
				k.got = append(k.got, a)
				k.mu.Unlock()
			}
		})
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			return nil, fmt.Errorf("subscribe: %v", tok.Error())
		}
	}
	return k, nil
}

// plainKiosk connects a config-file kiosk on the plain listener.
func (h *hubUnderTest) plainKiosk(device string) *kiosk {
	h.t.Helper()
	k, err := connect(h.t, h.m.BrokerURL(), mochi.KioskClientPrefix+device, nil, device)
	if err != nil {
		h.t.Fatalf("kiosk %s: %v", device, err)
	}
	return k
}

// publish publishes at QoS 1 and waits for the PUBACK; it reports whether one came.
func (k *kiosk) publish(topic string, payload []byte) bool {
	tok := k.c.Publish(topic, 1, false, payload)
	return tok.WaitTimeout(10*time.Second) && tok.Error() == nil
}

func newIncident(t *testing.T, device, source, text, reporter string) mqtt.Incident {
	t.Helper()
	id, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	return mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: device, Source: source, Button: "darurat",
		Text: text, Reporter: reporter, OccurredAt: time.Now(), Attempt: 1}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := mqtt.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrolled is a device enrolled with the hub's enrollment API: its certificate and the TLS
// configuration it connects with.
type enrolled struct {
	id  string
	tls *tls.Config
	url string // tls://host:port of the device listener
}

// enroll makes an enrollment token as the administrator and enrolls a new device with it.
func (h *hubUnderTest) enroll(site, serial string) *enrolled {
	h.t.Helper()
	ctx := context.Background()
	adm := enroll.NewClient(h.base, nil).WithToken(h.admin)
	tok, err := adm.CreateToken(ctx, enroll.TokenRequest{SitePath: site})
	if err != nil {
		h.t.Fatalf("enrollment token: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kiosk"}}, key)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := enroll.NewClient(h.base, nil).Enroll(ctx, enroll.Request{Token: tok.Secret, Firmware: "kentongand security-test",
		Hardware: enroll.Hardware{Board: "Raspberry Pi 3 Model B Plus Rev 1.3", Serial: serial},
		CSRPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if err != nil {
		h.t.Fatalf("enroll: %v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		h.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(resp.CertPEM), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	if err != nil {
		h.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(resp.CAPEM))
	return &enrolled{id: resp.DeviceID, url: "tls://" + h.m.TLSAddr(),
		tls: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
}

// connectTLS connects e's certificate under clientID ("" for e's own client ID).
func (e *enrolled) connectTLS(t *testing.T, clientID string) (*kiosk, error) {
	t.Helper()
	if clientID == "" {
		clientID = mochi.KioskClientPrefix + e.id
	}
	return connect(t, e.url, clientID, e.tls, e.id)
}

// tickets lists tickets as the admin, with an optional query.
func (h *hubUnderTest) tickets(query string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	h.doJSON("GET", "/api/v1/tickets"+query, "", &out)
	return out
}

func jsonQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}
