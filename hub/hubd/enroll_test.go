package hubd_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
)

// enrolledKiosk is what a provisioned kiosk holds: its key (never sent), its certificate and
// the hub's CA, and the broker URL the hub gave it.
type enrolledKiosk struct {
	resp *enroll.Response
	cert tls.Certificate
	csr  string
}

func enrollKiosk(t *testing.T, c *enroll.Client, token, serial string) (*enrolledKiosk, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kiosk"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	resp, err := c.Enroll(context.Background(), enroll.Request{Token: token, Firmware: "kentongand test",
		Hardware: enroll.Hardware{Board: "Raspberry Pi 3 Model B Plus Rev 1.3", Serial: serial}, CSRPEM: csr})
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair([]byte(resp.CertPEM), pemKey(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return &enrolledKiosk{resp: resp, cert: cert, csr: csr}, nil
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pemKey(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// tlsKiosk connects over the device listener as clientID, trusting only the hub's CA.
type tlsKiosk struct {
	c    paho.Client
	mu   sync.Mutex
	acks []mqtt.Ack
}

func (k *enrolledKiosk) connect(clientID string) (*tlsKiosk, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(k.resp.CAPEM))
	url := strings.Replace(k.resp.BrokerURL, "mqtts://", "tls://", 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetProtocolVersion(4).
		SetTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{k.cert}, MinVersion: tls.VersionTLS12}).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetCleanSession(true)
	tk := &tlsKiosk{c: paho.NewClient(opts)}
	if tok := tk.c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect: %v", tok.Error())
	}
	tok := tk.c.Subscribe(mqtt.Topic(k.resp.DeviceID, mqtt.KindAck), 1, func(_ paho.Client, m paho.Message) {
		if a, err := mqtt.DecodeAck(m.Payload()); err == nil {
			tk.mu.Lock()
			tk.acks = append(tk.acks, a)
			tk.mu.Unlock()
		}
	})
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe: %v", tok.Error())
	}
	return tk, nil
}

func (tk *tlsKiosk) received(id string) bool {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	for _, a := range tk.acks {
		if a.IncidentID == id && a.Status == mqtt.AckReceived {
			return true
		}
	}
	return false
}

func (tk *tlsKiosk) send(t *testing.T, device string, test bool, button, category string) string {
	t.Helper()
	id, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	in := mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: device, Source: mqtt.SourceButton, Button: button,
		Category: category, OccurredAt: time.Now(), Attempt: 1, Test: test}
	if tok := tk.c.Publish(mqtt.Topic(device, mqtt.KindIncident), 1, false, encode(t, in)); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("publish incident: %v", tok.Error())
	}
	return id
}

func TestEnrolledKioskOverTLS(t *testing.T) {
	dir := t.TempDir()
	m := startHub(t, dir, "config-kiosk")
	admin := newAPI(t, m)
	base := "http://" + m.HTTPAddr()
	ctx := context.Background()
	adminClient := enroll.NewClient(base, nil).WithToken(admin.token)
	anon := enroll.NewClient(base, nil)

	// Only administrators make enrollment tokens.
	opToken, err := m.IssueToken(ctx, "op-1", account.RoleOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = enroll.NewClient(base, nil).WithToken(opToken).CreateToken(ctx, enroll.TokenRequest{SitePath: "Panongan/Ciakar/03/02"})
	if ae, ok := errors.AsType[*enroll.APIError](err); !ok || ae.Status != http.StatusForbidden {
		t.Errorf("operator creating an enrollment token: %v, want 403", err)
	}

	lat, lon := -6.2701, 106.5201
	tok, err := adminClient.CreateToken(ctx, enroll.TokenRequest{SitePath: "Panongan/Ciakar/03/02", Lat: &lat, Lon: &lon, Expires: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := enrollKiosk(t, anon, tok.Secret, "00000000c0ffee01")
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	if want := "mqtts://127.0.0.1:"; !strings.HasPrefix(k.resp.BrokerURL, want) || k.resp.Site.Lat != lat {
		t.Fatalf("enrollment answer %+v", k.resp)
	}
	dev := k.resp.DeviceID

	// The token is spent: another board cannot use it, and the refusal has its reason.
	_, err = enrollKiosk(t, anon, tok.Secret, "00000000c0ffee02")
	if ee, ok := errors.AsType[*enroll.Error](err); !ok || ee.Status != http.StatusConflict || !errors.Is(err, enroll.ErrTokenUsed) {
		t.Errorf("reused token: %v, want 409 token_used", err)
	}

	// Refusals answer with a reason the technician's laptop explains.
	for _, c := range []struct {
		body   string
		status int
		reason string
	}{
		{`{"token": "ktge_NOSUCH", "hardware": {"board": "b", "serial": "s"}, "firmware": "f", "csr_pem": "x"}`, 400, enroll.ReasonBadCSR},
		{`{"token": "ktge_NOSUCH", "hardware": {"board": "b", "serial": "s"}, "firmware": "f", "csr_pem": ` + jsonString(t, k.csr) + `}`, 401, enroll.ReasonTokenUnknown},
		{`{"token": `, 400, enroll.ReasonBadRequest},
	} {
		resp, err := http.Post(base+enroll.EnrollPath, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var eb enroll.ErrorBody
		err = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if err != nil || resp.StatusCode != c.status || eb.Error.Reason != c.reason {
			t.Errorf("POST %s: %d %+v (%v), want %d %s", c.body, resp.StatusCode, eb, err, c.status, c.reason)
		}
	}

	tk, err := k.connect(mochi.KioskClientPrefix + dev)
	if err != nil {
		t.Fatalf("enrolled kiosk over TLS: %v", err)
	}
	testID := tk.send(t, dev, true, "darurat", "")
	realID := tk.send(t, dev, false, "kebakaran", "fire")
	waitFor(t, "both incidents received", 20*time.Second, func() (bool, string) {
		return tk.received(testID) && tk.received(realID), ""
	})
	tt, err := m.Store.Ticket(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	if !tt.Test || tt.Agency != hub.AgencyTriage {
		t.Errorf("test incident's ticket: test=%v agency=%q, want a test ticket left unrouted", tt.Test, tt.Agency)
	}
	rt, err := m.Store.Ticket(ctx, realID)
	if err != nil {
		t.Fatal(err)
	}
	if rt.Test || rt.Agency == hub.AgencyTriage || rt.Agency == "" {
		t.Errorf("real incident's ticket: test=%v agency=%q, want routed", rt.Test, rt.Agency)
	}

	// Publishing as the config-file kiosk: disconnected, logged and counted.
	tk.c.Publish(mqtt.Topic("config-kiosk", mqtt.KindIncident), 1, false, "forged")
	waitFor(t, "the forger disconnected", 20*time.Second, func() (bool, string) { return !tk.c.IsConnectionOpen(), "" })
	if !metricLine(admin.metrics(), `kentongan_hub_broker_refused_total{reason="acl_publish"} 1`) {
		t.Error("the refused publish is not in /metrics")
	}

	// The enrolled device may not use the plain listener, where no credentials are checked.
	plain := paho.NewClient(paho.NewClientOptions().AddBroker(m.BrokerURL()).SetClientID(mochi.KioskClientPrefix + dev).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := plain.Connect(); tok.WaitTimeout(15*time.Second) && tok.Error() == nil {
		plain.Disconnect(0)
		t.Error("an enrolled device's client ID was let in on the plain listener")
	}

	// The fleet view has the enrolled kiosk with its provisioning record.
	fleet, err := adminClient.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fd *enroll.FleetDevice
	for i := range fleet {
		if fleet[i].ID == dev {
			fd = &fleet[i]
		}
	}
	if fd == nil || fd.Source != enroll.SourceEnrolled || fd.Registration != enroll.StateActive || fd.LastSeen == nil ||
		len(fd.History) != 1 || fd.Hardware.Serial != "00000000c0ffee01" || fd.Site.Kelurahan != "Ciakar" {
		t.Fatalf("fleet entry %+v", fd)
	}
	if len(fleet) != 2 {
		t.Errorf("fleet has %d devices, want the config file's and the enrolled one", len(fleet))
	}

	// Revocation drops the connection at once and refuses it after.
	tk, err = k.connect(mochi.KioskClientPrefix + dev)
	if err != nil {
		t.Fatalf("reconnect before revocation: %v", err)
	}
	if _, err := adminClient.Revoke(ctx, dev, "kiosk stolen"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revoked kiosk disconnected", 20*time.Second, func() (bool, string) { return !tk.c.IsConnectionOpen(), "" })
	if _, err := k.connect(mochi.KioskClientPrefix + dev); err == nil {
		t.Error("a revoked kiosk reconnected")
	}
	if !metricLine(admin.metrics(), `kentongan_hub_broker_refused_total{reason="revoked"} 1`) {
		t.Error("the revoked kiosk's refusal is not in /metrics")
	}
	var audit []account.AuditEntry
	admin.do(http.MethodGet, "/api/v1/audit", "", &audit)
	found := false
	for _, e := range audit {
		found = found || (e.Action == "device_revoke" && e.Target == dev)
	}
	if !found {
		t.Error("the revocation is not in the audit log")
	}

	// A second kiosk, enrolled before a restart, is known to the restarted hub.
	tok2, err := adminClient.CreateToken(ctx, enroll.TokenRequest{SitePath: "Panongan/Ciakar/04/01"})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := enrollKiosk(t, anon, tok2.Secret, "00000000c0ffee03")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := startHub(t, dir, "config-kiosk")
	k2.resp.BrokerURL = "mqtts://" + m2.TLSAddr() // a new free port; a real hub keeps its own
	tk2, err := k2.connect(mochi.KioskClientPrefix + k2.resp.DeviceID)
	if err != nil {
		t.Fatalf("enrolled kiosk after a hub restart: %v", err)
	}
	id := tk2.send(t, k2.resp.DeviceID, false, "medis", "medical")
	waitFor(t, "incident after restart received", 20*time.Second, func() (bool, string) { return tk2.received(id), "" })
	if _, err := k.connect(mochi.KioskClientPrefix + dev); err == nil {
		t.Error("the revoked kiosk reconnected after a restart")
	}
	_ = hubd.CADir
}
