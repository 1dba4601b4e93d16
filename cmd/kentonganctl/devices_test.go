package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
)

func csrPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestTokenDevicesRevoke(t *testing.T) {
	m := startHub(t)
	ctx := context.Background()
	url := "http://" + m.HTTPAddr()
	admin, err := m.IssueToken(ctx, "admin-1", account.RoleAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KENTONGAN_TOKEN", admin)
	t.Setenv("KENTONGAN_HUB", url)
	ctl := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(ctx, args, &out, &errb); code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}

	secret := strings.TrimSpace(strings.SplitN(ctl(0, "token", "create", "--site", "Panongan/Ciakar/03/02", "--expires", "2h",
		"--sms-allow", "081234567890"), "\n", 2)[0])
	if !strings.HasPrefix(secret, enroll.TokenPrefix) {
		t.Fatalf("token create printed %q first, want the token", secret)
	}
	resp, err := enroll.NewClient(url, nil).Enroll(ctx, enroll.Request{Token: secret, Firmware: "kentongand 0.6.0",
		Hardware: enroll.Hardware{Board: "Raspberry Pi 4", Serial: "abc"}, CSRPEM: csrPEM(t)})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.DeviceID

	out := ctl(0, "devices")
	if !strings.Contains(out, id) || !strings.Contains(out, "Panongan/Ciakar/03/02") || !strings.Contains(out, "kentongand 0.6.0") ||
		!strings.Contains(out, "enrolled") || !strings.Contains(out, "ciakar-rw03") {
		t.Errorf("devices:\n%s", out)
	}
	if out := ctl(0, "token", "list"); !strings.Contains(out, "used") || !strings.Contains(out, id) {
		t.Errorf("token list:\n%s", out)
	}
	ctl(0, "device", "revoke", "--reason", "dicuri", id)
	if out := ctl(0, "device", "show", id); !strings.Contains(out, "revoked") || !strings.Contains(out, "dicuri") {
		t.Errorf("device show after revoke:\n%s", out)
	}
	ctl(0, "device", "allow-reprovision", id)
	if out := ctl(0, "devices"); !strings.Contains(out, "re-provisioning allowed") {
		t.Errorf("devices after allow-reprovision:\n%s", out)
	}
	if out := ctl(1, "device", "revoke", "no-such-kiosk"); !strings.Contains(out, "not registered") {
		t.Errorf("revoking an unknown kiosk: %s", out)
	}

	ctl(2, "token", "create", "--site", "Panongan/Ciakar")
	ctl(2, "token", "create")
	ctl(2, "device", "revoke")

	op, err := m.IssueToken(ctx, "op-1", account.RoleOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KENTONGAN_TOKEN", op)
	if out := ctl(1, "token", "create", "--site", "Panongan/Ciakar/03/02"); !strings.Contains(out, "403") {
		t.Errorf("an operator making a token: %s", out)
	}
}
