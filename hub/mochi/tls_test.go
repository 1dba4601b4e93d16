package mochi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
)

// registry is a DeviceAuth over a map of device → current certificate fingerprint.
type registry struct {
	mu      sync.Mutex
	current map[string]string
	revoked map[string]bool
	seen    []string
}

func (r *registry) CheckDevice(_ context.Context, id, fp string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.current[id]
	switch {
	case !ok:
		return enroll.RefuseUnknownDevice
	case r.revoked[id]:
		return enroll.RefuseRevoked
	case cur != fp:
		return enroll.RefuseSuperseded
	}
	return ""
}

func (r *registry) Enrolled(_ context.Context, id string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.current[id]
	return ok, nil
}

func (r *registry) Seen(_ context.Context, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, id)
}

func (r *registry) revoke(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[id] = true
}

type tlsFixture struct {
	b   *mochi.Broker
	ca  *enroll.CA
	reg *registry
}

func startTLSBroker(t *testing.T) *tlsFixture {
	t.Helper()
	ca, _, err := enroll.LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry{current: map[string]string{}, revoked: map[string]bool{}}
	b, err := mochi.New(mochi.Options{Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLSConfig: cfg, Auth: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	return &tlsFixture{b: b, ca: ca, reg: reg}
}

// device enrolls a device: a key, a certificate from the CA, and the registry's record.
func (f *tlsFixture) device(t *testing.T, id string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	is, err := f.ca.SignDevice(csr, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.reg.mu.Lock()
	f.reg.current[id] = is.Fingerprint
	f.reg.mu.Unlock()
	return tls.Certificate{Certificate: [][]byte{is.Cert.Raw}, PrivateKey: key, Leaf: is.Cert}
}

func (f *tlsFixture) connect(t *testing.T, clientID string, cert *tls.Certificate) (paho.Client, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	opts := paho.NewClientOptions().AddBroker("tls://" + f.b.TLSAddr()).SetClientID(clientID).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetProtocolVersion(4) // no fallback to 3.1, which would count each refusal twice
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func TestTLSDeviceIsConfinedByItsCertificate(t *testing.T) {
	f := startTLSBroker(t)
	var got collector
	if err := f.b.Subscribe(mqtt.Filter(mqtt.KindIncident), 1, got.handle); err != nil {
		t.Fatal(err)
	}
	cert := f.device(t, "pos-1")
	f.device(t, "pos-2")
	c, err := f.connect(t, "kentongand-pos-1", &cert)
	if err != nil {
		t.Fatalf("device with its own certificate refused: %v", err)
	}
	if tok := c.Publish(mqtt.Topic("pos-1", mqtt.KindIncident), 1, false, "own"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish on own topic: %v", tok.Error())
	}
	wait(t, "own incident", func() bool { return len(got.topics()) == 1 })
	c.Publish(mqtt.Topic("pos-2", mqtt.KindIncident), 1, false, "forged")
	wait(t, "the forger to be disconnected", func() bool { return !c.IsConnectionOpen() })
	wait(t, "the refusal counted", func() bool { return f.b.Refused(mochi.RefuseACLPublish) == 1 })
	if n := len(got.topics()); n != 1 {
		t.Errorf("%d incidents reached the hub, want only the device's own", n)
	}
}

func TestTLSRefusals(t *testing.T) {
	f := startTLSBroker(t)
	one := f.device(t, "pos-1")
	two := f.device(t, "pos-2")

	// Another device's certificate under one's own key: the handshake fails.
	stolen := tls.Certificate{Certificate: one.Certificate, PrivateKey: two.PrivateKey}
	if _, err := f.connect(t, "kentongand-pos-1", &stolen); err == nil {
		t.Error("a certificate presented without its key was accepted")
	}
	wait(t, "the handshake refusal counted", func() bool { return f.b.Refused(mochi.RefuseTLSHandshake) == 1 })

	// No certificate at all.
	if _, err := f.connect(t, "kentongand-pos-1", nil); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	wait(t, "the second handshake refusal counted", func() bool { return f.b.Refused(mochi.RefuseTLSHandshake) == 2 })

	// A genuine certificate, but speaking as another device (and so taking over its session).
	if _, err := f.connect(t, "kentongand-pos-1", &two); err == nil {
		t.Error("pos-2's certificate was accepted under pos-1's client ID")
	}
	if n := f.b.Refused(mochi.RefuseClientIDMismatch); n != 1 {
		t.Errorf("client_id_mismatch counted %d times, want 1", n)
	}

	// A certificate the registry no longer holds as current (re-provisioned since).
	old := one
	f.device(t, "pos-1")
	if _, err := f.connect(t, "kentongand-pos-1", &old); err == nil {
		t.Error("a superseded certificate was accepted")
	}
	if n := f.b.Refused(mochi.RefuseSuperseded); n != 1 {
		t.Errorf("superseded_certificate counted %d times, want 1", n)
	}

	// An enrolled device's client ID on the plain listener.
	if _, err := connect(t, f.b, "kentongand-pos-2", func(o *paho.ClientOptions) { o.SetProtocolVersion(4) }); err == nil {
		t.Error("an enrolled device's client ID was accepted on the plain listener")
	}
	if n := f.b.Refused(mochi.RefuseEnrolledOnPlain); n != 1 {
		t.Errorf("enrolled_on_plain counted %d times, want 1", n)
	}
	// A kiosk of the config file (not enrolled) still uses the plain listener.
	if _, err := connect(t, f.b, "kentongand-pos-9", nil); err != nil {
		t.Errorf("a config-file kiosk on the plain listener: %v", err)
	}
}

func TestRevokedDeviceIsDisconnectedAndRefused(t *testing.T) {
	f := startTLSBroker(t)
	cert := f.device(t, "pos-1")
	c, err := f.connect(t, "kentongand-pos-1", &cert)
	if err != nil {
		t.Fatal(err)
	}
	f.reg.revoke("pos-1")
	if n := f.b.DisconnectDevice("pos-1"); n != 1 {
		t.Errorf("DisconnectDevice dropped %d connections, want 1", n)
	}
	wait(t, "the revoked device to be disconnected", func() bool { return !c.IsConnectionOpen() })
	if _, err := f.connect(t, "kentongand-pos-1", &cert); err == nil {
		t.Error("a revoked device reconnected")
	}
	if n := f.b.Refused(mochi.RefuseRevoked); n != 1 {
		t.Errorf("revoked counted %d times, want 1", n)
	}
}

func TestServiceCertificateIsNotConfined(t *testing.T) {
	f := startTLSBroker(t)
	cert, err := f.ca.IssueService("bridge", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.connect(t, "bridge-1", &cert)
	if err != nil {
		t.Fatalf("service certificate refused: %v", err)
	}
	tok := c.Subscribe(mqtt.Filter(mqtt.KindIncident), 1, nil)
	tok.Wait()
	if r := tok.(*paho.SubscribeToken).Result()[mqtt.Filter(mqtt.KindIncident)]; r != 1 {
		t.Errorf("service subscription to every incident: %#x, want granted", r)
	}
}
