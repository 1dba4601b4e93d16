package enroll_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc          *enroll.Service
	clock        *clock
	enrolled     []hub.Device
	disconnected []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &fixture{clock: &clock{t: time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)}}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Clock: f.clock, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ca, _, err := enroll.LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = enroll.New(enroll.Options{
		Store: store.Devices(), CA: ca, Clock: f.clock, Logger: log,
		BrokerURL:  func() string { return "mqtts://hub.example:8883" },
		Static:     []hub.Device{{ID: "ciakar-rw03-rt02", Name: "from config"}},
		OnEnrolled: func(d hub.Device) { f.enrolled = append(f.enrolled, d) },
		Disconnect: func(id string) int { f.disconnected = append(f.disconnected, id); return 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var ciakar = hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "02", Lat: -6.27, Lon: 106.52}

func (f *fixture) token(t *testing.T, site hub.Site, ttl time.Duration) string {
	t.Helper()
	_, secret, err := f.svc.CreateToken(context.Background(), "admin", enroll.NewToken{Site: site, TTL: ttl, SMSAllow: []string{"0812-3456-7890"}})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func newCSR(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "whoever"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func req(token, serial, csr string) enroll.Request {
	return enroll.Request{Token: token, Hardware: enroll.Hardware{Board: "Raspberry Pi 4 Model B Rev 1.4", Serial: serial},
		Firmware: "kentongand 0.6.0", CSRPEM: csr}
}

func wantRefused(t *testing.T, err error, sentinel error, code string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if got := hub.ErrorCode((err.(*enroll.Error)).HubError()); got != code {
		t.Errorf("code %q, want %q", got, code)
	}
}

func TestEnrollIssuesCertificateForTheSite(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	csr := newCSR(t)
	resp, err := f.svc.Enroll(ctx, req(f.token(t, ciakar, 0), "10000000abcdef01", csr), "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	// The config file's device has the natural ID: the enrolled one gets the next.
	if resp.DeviceID != "ciakar-rw03-rt02-2" || resp.Site != ciakar || resp.BrokerURL != "mqtts://hub.example:8883" {
		t.Errorf("response %+v", resp)
	}
	if len(resp.Config.Buttons) == 0 || len(resp.Config.LEDs) == 0 || resp.Config.SMSAllow[0] != "+6281234567890" ||
		resp.Config.HeartbeatInterval != enroll.Duration(30*time.Second) {
		t.Errorf("config %+v", resp.Config)
	}
	block, _ := pem.Decode([]byte(resp.CertPEM))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(resp.CAPEM)) {
		t.Fatal("ca_pem holds no certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: f.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("device certificate does not verify against ca_pem: %v", err)
	}
	if id, ok := enroll.IdentityOf(cert); !ok || id.Device != resp.DeviceID {
		t.Errorf("certificate identity %+v, want device %s", id, resp.DeviceID)
	}
	if r := f.svc.CheckDevice(ctx, resp.DeviceID, enroll.Fingerprint(cert.Raw)); r != "" {
		t.Errorf("broker check of the new certificate: %q", r)
	}
	if len(f.enrolled) != 1 || f.enrolled[0].ID != resp.DeviceID || f.enrolled[0].RTRWHeads[0] != "+6281234567890" {
		t.Errorf("ingest registration %+v", f.enrolled)
	}
	d, err := f.svc.Device(ctx, resp.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Firmware != "kentongand 0.6.0" || len(d.History) != 1 || d.History[0].Kind != enroll.EventEnrolled {
		t.Errorf("registry entry %+v", d)
	}
}

func TestEnrollRetryAfterLostAnswerIsTheSameDevice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, csr := f.token(t, ciakar, 0), newCSR(t)
	first, err := f.svc.Enroll(ctx, req(tok, "serial-1", csr), "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.Enroll(ctx, req(tok, "serial-1", csr), "")
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if again.DeviceID != first.DeviceID || again.CertPEM != first.CertPEM {
		t.Errorf("retry got device %s, want the same device and certificate as %s", again.DeviceID, first.DeviceID)
	}
	// Lost its key too: a new certificate for the same device, and the old one is dead.
	third, err := f.svc.Enroll(ctx, req(tok, "serial-1", newCSR(t)), "")
	if err != nil {
		t.Fatalf("retry with a new key: %v", err)
	}
	if third.DeviceID != first.DeviceID || third.CertPEM == first.CertPEM {
		t.Errorf("retry with a new key: device %s", third.DeviceID)
	}
	if r := f.svc.CheckDevice(ctx, first.DeviceID, fingerprint(t, first.CertPEM)); r != enroll.RefuseSuperseded {
		t.Errorf("superseded certificate: check %q", r)
	}
	fleet, err := f.svc.Fleet(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fleet); n != 2 { // the config file's device and one enrolled: no orphan
		t.Errorf("fleet has %d devices, want 2: %+v", n, fleet)
	}
}

func fingerprint(t *testing.T, certPEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	return enroll.Fingerprint(block.Bytes)
}

func TestEnrollRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.token(t, ciakar, time.Hour)
	if _, err := f.svc.Enroll(ctx, req(tok, "serial-1", newCSR(t)), ""); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Enroll(ctx, req(tok, "serial-2", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrTokenUsed, hub.CodeConflict)

	_, err = f.svc.Enroll(ctx, req(enroll.TokenPrefix+"NOSUCHTOKEN", "serial-2", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrTokenUnknown, hub.CodeUnauthorized)
	_, err = f.svc.Enroll(ctx, req("ktg_apitoken", "serial-2", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrTokenUnknown, hub.CodeUnauthorized)

	expiring := f.token(t, ciakar, time.Minute)
	f.clock.add(time.Minute)
	_, err = f.svc.Enroll(ctx, req(expiring, "serial-2", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrTokenExpired, hub.CodeUnauthorized)

	fresh := f.token(t, ciakar, 0)
	bad := req(fresh, "serial-2", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
	_, err = f.svc.Enroll(ctx, bad, "")
	wantRefused(t, err, enroll.ErrBadCSR, hub.CodeInvalid)
	// A CSR whose signature was tampered with proves nothing about the key.
	csr := newCSR(t)
	block, _ := pem.Decode([]byte(csr))
	block.Bytes[len(block.Bytes)-3] ^= 0xff
	_, err = f.svc.Enroll(ctx, req(fresh, "serial-2", string(pem.EncodeToMemory(block))), "")
	wantRefused(t, err, enroll.ErrBadCSR, hub.CodeInvalid)
	_, err = f.svc.Enroll(ctx, req(fresh, "", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrBadRequest, hub.CodeInvalid)

	other := hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "04", RT: "01"}
	r := req(fresh, "serial-2", newCSR(t))
	r.Site = &other
	_, err = f.svc.Enroll(ctx, r, "")
	wantRefused(t, err, enroll.ErrSiteMismatch, hub.CodeConflict)
	// The same post written differently is the same post; measured coordinates are taken.
	same := hub.Site{Kecamatan: "panongan", Kelurahan: "CIAKAR", RW: "3", RT: "002", Lat: -6.2701, Lon: 106.5201}
	r.Site = &same
	resp, err := f.svc.Enroll(ctx, r, "")
	if err != nil {
		t.Fatalf("same site written differently: %v", err)
	}
	if resp.Site.Lat != -6.2701 || resp.Site.Kelurahan != "Ciakar" {
		t.Errorf("site %+v", resp.Site)
	}

	wt, withdrawn, err := f.svc.CreateToken(ctx, "admin", enroll.NewToken{Site: ciakar})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeToken(ctx, "admin", wt.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Enroll(ctx, req(withdrawn, "serial-3", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrTokenRevoked, hub.CodeUnauthorized)
}

func TestReprovisioningNeedsAnAdministrator(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.svc.Enroll(ctx, req(f.token(t, ciakar, 0), "serial-1", newCSR(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Enroll(ctx, req(f.token(t, ciakar, 0), "serial-1", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrAlreadyProvisioned, hub.CodeConflict)

	if _, err := f.svc.Revoke(ctx, "admin", first.DeviceID, "stolen"); err != nil {
		t.Fatal(err)
	}
	if len(f.disconnected) != 1 || f.disconnected[0] != first.DeviceID {
		t.Errorf("revocation disconnected %v", f.disconnected)
	}
	if r := f.svc.CheckDevice(ctx, first.DeviceID, fingerprint(t, first.CertPEM)); r != enroll.RefuseRevoked {
		t.Errorf("revoked device: check %q", r)
	}
	_, err = f.svc.Enroll(ctx, req(f.token(t, ciakar, 0), "serial-1", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrDeviceRevoked, hub.CodeConflict)

	if _, err := f.svc.AllowReprovision(ctx, "admin", first.DeviceID); err != nil {
		t.Fatal(err)
	}
	moved := hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "05", RT: "01"}
	again, err := f.svc.Enroll(ctx, req(f.token(t, moved, 0), "serial-1", newCSR(t)), "")
	if err != nil {
		t.Fatalf("after allow-reprovision: %v", err)
	}
	if again.DeviceID != first.DeviceID || again.Site.RW != "05" {
		t.Errorf("re-provisioned as %s at %+v, want the same device at RW 05", again.DeviceID, again.Site)
	}
	if r := f.svc.CheckDevice(ctx, first.DeviceID, fingerprint(t, again.CertPEM)); r != "" {
		t.Errorf("re-provisioned device: check %q", r)
	}
	if r := f.svc.CheckDevice(ctx, first.DeviceID, fingerprint(t, first.CertPEM)); r != enroll.RefuseSuperseded {
		t.Errorf("old certificate after re-provisioning: check %q", r)
	}
	// The permission was spent.
	_, err = f.svc.Enroll(ctx, req(f.token(t, moved, 0), "serial-1", newCSR(t)), "")
	wantRefused(t, err, enroll.ErrAlreadyProvisioned, hub.CodeConflict)

	d, err := f.svc.Device(ctx, first.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range d.History {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "enrolled,revoked,reprovision_allowed,reprovisioned" {
		t.Errorf("history %s", got)
	}
	if _, err := f.svc.Revoke(ctx, "admin", "ciakar-rw03-rt02", ""); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("revoking a config-file device: %v, want conflict", err)
	}
	if _, err := f.svc.Revoke(ctx, "admin", "nope", ""); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("revoking an unknown device: %v, want not_found", err)
	}
}

func TestTokenCreationRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, nt := range []enroll.NewToken{
		{Site: hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03"}},
		{Site: ciakar, TTL: time.Second},
		{Site: ciakar, TTL: 365 * 24 * time.Hour},
		{Site: hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "02", Lat: 91}},
		{Site: ciakar, SMSAllow: []string{"not a number"}},
		{Site: hub.Site{Kecamatan: "Pa\x00nongan", Kelurahan: "Ciakar", RW: "03", RT: "02"}},
	} {
		if _, _, err := f.svc.CreateToken(ctx, "admin", nt); hub.ErrorCode(err) != hub.CodeInvalid {
			t.Errorf("CreateToken(%+v) = %v, want invalid", nt, err)
		}
	}
}

func TestCAIsKeptAcrossStarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	now := time.Now()
	ca, created, err := enroll.LoadOrCreateCA(dir, now)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	st, err := os.Stat(filepath.Join(dir, enroll.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", st.Mode().Perm())
	}
	again, created, err := enroll.LoadOrCreateCA(dir, now)
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if again.PEM() != ca.PEM() {
		t.Error("the CA changed across starts")
	}
	if err := os.Remove(filepath.Join(dir, enroll.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := enroll.LoadOrCreateCA(dir, now); !errors.Is(err, enroll.ErrCAIncomplete) {
		t.Errorf("certificate without key: %v, want ErrCAIncomplete", err)
	}
}

func TestParseSite(t *testing.T) {
	s, err := enroll.ParseSite(" Panongan / Ciakar/03/02")
	if err != nil || s.Kecamatan != "Panongan" || s.Kelurahan != "Ciakar" || s.RW != "03" || s.RT != "02" {
		t.Errorf("ParseSite = %+v, %v", s, err)
	}
	for _, bad := range []string{"", "Panongan/Ciakar/03", "Panongan//03/02", "a/b/c/d/e"} {
		if _, err := enroll.ParseSite(bad); err == nil {
			t.Errorf("ParseSite(%q) accepted", bad)
		}
	}
}
