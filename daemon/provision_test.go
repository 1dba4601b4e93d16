package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/provisioning"
	"github.com/kentongan/kentongan/provisioning/provtest"
	"github.com/kentongan/kentongan/test/poll"
)

// testCA is a hub's CA for the tests: it signs the kiosk's CSR as the hub would.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

var serials sync.Map

func (ca *testCA) sign(t *testing.T, csrPEM, deviceID string) string {
	t.Helper()
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil {
		t.Fatalf("no CSR in %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("bad CSR: %v", err)
	}
	n, _ := serials.LoadOrStore(deviceID+ca.pem, new(int))
	*n.(*int)++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(100 + *n.(*int))), Subject: pkix.Name{CommonName: deviceID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

const testBase = `gpio:
  driver: sim
admin:
  listen: 127.0.0.1:0
broker:
  connect_retry_interval: 50ms
  max_reconnect_interval: 200ms
retry_interval: 1m
`

func testHardware() (provisioning.Hardware, error) {
	return provisioning.Hardware{Board: "Raspberry Pi 4 Model B Rev 1.4", Serial: "10000000c0ffee01"}, nil
}

func newTestProvisioner(t *testing.T, dir string, mod func(*ProvisionConfig)) *Provisioner {
	t.Helper()
	cfg := ProvisionConfig{StateDir: dir, Base: []byte(testBase), Hardware: testHardware,
		PressTimeout: 20 * time.Second, HubTimeout: 20 * time.Second,
		Options: []Option{WithLogger(testLogger(t))}}
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewProvisioner(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// connect serves p over a fresh cable and returns the laptop's client.
func connect(t *testing.T, p *Provisioner) (*provisioning.Client, *provtest.Cable) {
	t.Helper()
	cable, err := provtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cable.Pull)
	go p.Serve(t.Context(), cable.Device)
	return provisioning.NewClient(cable.Laptop, provisioning.WithTimeout(5*time.Second)), cable
}

func installFor(ca *testCA, cert, brokerURL string) provisioning.Install {
	return provisioning.Install{DeviceID: testDevice, Name: "Pos RW 03 Ciakar", CertPEM: cert, CAPEM: ca.pem,
		BrokerURL: brokerURL, Site: provisioning.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "02"},
		Buttons: []provisioning.Button{{Name: "darurat", Pin: 17, HoldMS: 100}, {Name: "kebakaran", Category: "fire", Pin: 27, HoldMS: 100}},
		LEDs:    []provisioning.LED{{Name: "status", Pin: 22}}, SMSAllow: []string{"081234567890"}, HeartbeatInterval: "1m"}
}

// autoAck plays the hub: every incident is answered as received.
func autoAck(t *testing.T, b *broker) {
	ctx := t.Context()
	go func() {
		seen := map[string]bool{}
		for ctx.Err() == nil {
			for _, m := range b.messages(mqtt.KindIncident) {
				in, err := mqtt.DecodeIncident(testDevice, m.Payload)
				if err == nil && !seen[in.ID] {
					seen[in.ID] = true
					b.ack(in.ID, mqtt.AckReceived, "")
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

// runSelfTest starts the self-test, presses each button it asks for, and returns its events.
func runSelfTest(t *testing.T, c *provisioning.Client, p *Provisioner) provisioning.PollReply {
	t.Helper()
	ctx := t.Context()
	if err := c.SelfTest(ctx, provisioning.SelfTest{}); err != nil {
		t.Fatal(err)
	}
	var all provisioning.PollReply
	poll.Until(t, 60*time.Second, "the self-test to end", func() (bool, string) {
		r, err := c.Poll(ctx, len(all.Events))
		if err != nil {
			t.Fatal(err)
		}
		all.Events = append(all.Events, r.Events...)
		all.Done, all.Passed = r.Done, r.Passed
		if b := p.SelfTestPrompt(); b != "" {
			if err := p.PressSim(ctx, b, 150*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		return r.Done, fmt.Sprint(all.Events)
	})
	return all
}

func TestProvisionBlankKiosk(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	autoAck(t, b)
	ca := newTestCA(t, "hub CA")
	dir := t.TempDir()
	p := newTestProvisioner(t, dir, nil)
	c, _ := connect(t, p)
	ctx := t.Context()

	hr, err := c.Hello(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if hr.State != provisioning.StateBlank || hr.Hardware.Serial != "10000000c0ffee01" || hr.Firmware == "" || hr.FreeBytes <= 0 {
		t.Fatalf("hello: %+v", hr)
	}
	csr, err := c.CSR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CSR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pubKey(t, csr.CSRPEM) != pubKey(t, again.CSRPEM) {
		t.Fatal("a repeated CSR has another key: a retried enrollment would make an orphan device")
	}
	if _, err := c.Install(ctx, installFor(ca, ca.sign(t, csr.CSRPEM, testDevice), b.URL())); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{keyFile, "current/" + configFile, "current/" + certFile, "current/" + caFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	cfg, err := LoadConfig(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DeviceID != testDevice || cfg.Broker.KeyFile != filepath.Join(dir, keyFile) || len(cfg.Buttons) != 2 || cfg.Modem.Allow[0] != "081234567890" || cfg.HeartbeatInterval != time.Minute {
		t.Fatalf("stored config: %+v", cfg)
	}
	poll.True(t, 15*time.Second, "the daemon to run on the new config", func() bool { return p.Daemon() != nil })

	res := runSelfTest(t, c, p)
	if !res.Passed {
		t.Fatalf("self-test failed: %+v", res.Events)
	}
	final := map[string]string{}
	for _, e := range res.Events {
		final[e.Step+e.Button] = e.Status
	}
	for _, k := range []string{"leds", "buttondarurat", "buttonkebakaran", "hub", "test_incident"} {
		if final[k] != provisioning.StepOK {
			t.Errorf("step %s ended %q, want ok (events %+v)", k, final[k], res.Events)
		}
	}
	if final["modem"] != provisioning.StepSkipped {
		t.Errorf("modem step %q, want skipped", final["modem"])
	}
	// The button presses of the self-test raised nothing; only the test incident went out.
	ins := b.incidents()
	if len(ins) != 1 || !ins[0].Test {
		t.Fatalf("incidents at the hub: %+v, want one test incident", ins)
	}
	hr, err = c.Hello(ctx, "test")
	if err != nil || hr.State != provisioning.StateProvisioned || hr.DeviceID != testDevice {
		t.Fatalf("hello after provisioning: %+v, %v", hr, err)
	}
	// A real press now raises a real incident.
	if _, err := p.Daemon().SimPress(ctx, "darurat", 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ins = b.waitIncidents(2)
	if ins[1].Test || ins[1].Button != "darurat" {
		t.Fatalf("press after the self-test: %+v", ins[1])
	}
}

func pubKey(t *testing.T, csrPEM string) string {
	t.Helper()
	blk, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(csr.PublicKey)
	return string(der)
}

func refusal(t *testing.T, err error, code string) {
	t.Helper()
	var re *provisioning.RemoteError
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("got %v, want a %s refusal", err, code)
	}
}

// TestReprovisioning: a repeated install changes nothing; a certificate from another hub's CA
// is refused unless the kiosk was reset; one from its own hub (which allowed it) is taken.
func TestReprovisioning(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	ca, other := newTestCA(t, "hub CA"), newTestCA(t, "rogue CA")
	dir := t.TempDir()
	p := newTestProvisioner(t, dir, nil)
	c, _ := connect(t, p)
	ctx := t.Context()
	csr, err := c.CSR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.sign(t, csr.CSRPEM, testDevice)
	if _, err := c.Install(ctx, installFor(ca, cert, b.URL())); err != nil {
		t.Fatal(err)
	}
	gen, _ := os.Readlink(filepath.Join(dir, currentLink))

	r, err := c.Install(ctx, installFor(ca, cert, b.URL()))
	if err != nil || !r.Unchanged {
		t.Fatalf("repeated install: %+v, %v", r, err)
	}
	_, err = c.Install(ctx, installFor(other, other.sign(t, csr.CSRPEM, testDevice), b.URL()))
	refusal(t, err, provisioning.CodeProvisioned)

	// A certificate for another key (another kiosk's) is refused whatever its CA.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, otherKey)
	stolen := ca.sign(t, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), testDevice)
	_, err = c.Install(ctx, installFor(ca, stolen, b.URL()))
	refusal(t, err, provisioning.CodeCredentials)
	if now, _ := os.Readlink(filepath.Join(dir, currentLink)); now != gen {
		t.Fatal("a refused install changed the credentials")
	}

	// The hub allowed re-provisioning: a new certificate from the same CA.
	if _, err := c.Install(ctx, installFor(ca, ca.sign(t, csr.CSRPEM, testDevice), b.URL())); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.Readlink(filepath.Join(dir, currentLink)); now == gen {
		t.Fatal("re-provisioning kept the old generation")
	}
	entries, _ := os.ReadDir(dir)
	gens := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), genPrefix) {
			gens++
		}
	}
	if gens != 1 {
		t.Fatalf("%d generation directories left, want 1", gens)
	}

	// After a reset at boot, another hub may provision it.
	p.Close()
	p2 := newTestProvisioner(t, dir, func(c *ProvisionConfig) { c.Reset = true })
	c2, _ := connect(t, p2)
	hr, err := c2.Hello(ctx, "t")
	if err != nil || !hr.Reset {
		t.Fatalf("hello after reset: %+v, %v", hr, err)
	}
	if _, err := c2.Install(ctx, installFor(other, other.sign(t, csr.CSRPEM, testDevice), b.URL())); err != nil {
		t.Fatalf("install after a reset: %v", err)
	}
}

// TestProvisionDiskFull: a disk that fills while the credentials are written leaves the kiosk
// as it was, says so, and takes the same install once there is room.
func TestProvisionDiskFull(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	ca := newTestCA(t, "hub CA")
	dir := t.TempDir()
	p := newTestProvisioner(t, dir, nil)
	var full sync.Mutex
	diskFull := true
	p.write = func(path string, data []byte) error {
		full.Lock()
		defer full.Unlock()
		if diskFull && strings.HasSuffix(path, configFile) {
			return fmt.Errorf("write %s: %w", path, syscall.ENOSPC)
		}
		return writeFileAtomic(path, data)
	}
	c, _ := connect(t, p)
	ctx := t.Context()
	csr, err := c.CSR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := installFor(ca, ca.sign(t, csr.CSRPEM, testDevice), b.URL())
	_, err = c.Install(ctx, in)
	refusal(t, err, provisioning.CodeDiskFull)
	if _, err := os.Lstat(filepath.Join(dir, currentLink)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("current after a failed install: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != keyFile {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if hr, _ := c.Hello(ctx, "t"); hr.State != provisioning.StateBlank {
		t.Fatalf("state after a failed install: %s", hr.State)
	}
	full.Lock()
	diskFull = false
	full.Unlock()
	if _, err := c.Install(ctx, in); err != nil {
		t.Fatal(err)
	}
}

// TestSelfTestSurvivesPulledCable: the cable pulled while the self-test waits for a button
// leaves the kiosk running on its new configuration.
func TestSelfTestSurvivesPulledCable(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	ca := newTestCA(t, "hub CA")
	p := newTestProvisioner(t, t.TempDir(), func(c *ProvisionConfig) { c.PressTimeout = 300 * time.Millisecond })
	c, cable := connect(t, p)
	ctx := t.Context()
	csr, err := c.CSR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Install(ctx, installFor(ca, ca.sign(t, csr.CSRPEM, testDevice), b.URL())); err != nil {
		t.Fatal(err)
	}
	if err := c.SelfTest(ctx, provisioning.SelfTest{}); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 15*time.Second, "the self-test to ask for a button", func() bool { return p.SelfTestPrompt() != "" })
	cable.Pull()
	poll.True(t, 30*time.Second, "the daemon to run again", func() bool {
		d := p.Daemon()
		return d != nil && d.Status().Connected
	})
}

func TestReadHardware(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		path := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ReadHardware(root); err == nil {
		t.Fatal("no identity at all was accepted")
	}
	write("etc/machine-id", "0123456789abcdef\n")
	hw, err := ReadHardware(root)
	if err != nil || hw.Serial != "machine-id:0123456789abcdef" {
		t.Fatalf("fallback: %+v, %v", hw, err)
	}
	write("proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\x00")
	write("proc/cpuinfo", "processor\t: 0\nHardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 10000000abcdef01\nModel\t\t: Raspberry Pi 4\n")
	hw, err = ReadHardware(root)
	if err != nil || hw.Board != "Raspberry Pi 4 Model B Rev 1.4" || hw.Serial != "10000000abcdef01" {
		t.Fatalf("got %+v, %v", hw, err)
	}
}
