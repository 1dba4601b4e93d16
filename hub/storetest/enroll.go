package storetest

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
)

// EnrollOpener opens the device registry of one database, the same one on every call, and
// returns what closes it.
type EnrollOpener func() (enroll.Store, io.Closer, error)

// RunEnroll checks the enroll.Store semantics. newOpener must return an opener of a fresh,
// empty database each time it is called.
func RunEnroll(t *testing.T, newOpener func(t *testing.T) EnrollOpener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open EnrollOpener)
	}{
		{"Tokens", testEnrollTokens},
		{"Devices", testEnrollDevices},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each subtest has a database of its own
			tt.f(t, newOpener(t))
		})
	}
}

func openEnroll(t *testing.T, open EnrollOpener) (enroll.Store, io.Closer) {
	t.Helper()
	e, c, err := open()
	if err != nil {
		t.Fatalf("open device registry: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return e, c
}

var (
	enrollAt = time.Date(2026, 11, 27, 13, 0, 0, 456, time.UTC)
	postSite = hub.Site{Kecamatan: "Pasar Kemis", Kelurahan: "Sukamantri", RW: "03", RT: "007", Lat: -6.17, Lon: 106.53}
)

func enrollToken(id string) *enroll.Token {
	return &enroll.Token{ID: id, Prefix: "ket_" + id, Hash: "hash-" + id, Site: postSite, Name: "pos " + id,
		SMSAllow: []string{"+6281200000001"}, CreatedBy: "admin", CreatedAt: enrollAt, ExpiresAt: enrollAt.Add(time.Hour)}
}

func testEnrollTokens(t *testing.T, open EnrollOpener) {
	ctx := context.Background()
	e, _ := openEnroll(t, open)
	if ts, err := e.Tokens(ctx); err != nil || len(ts) != 0 {
		t.Errorf("tokens of an empty store: %v %v, want none", ts, err)
	}
	a, b := enrollToken("a"), enrollToken("b")
	b.CreatedAt = enrollAt.Add(time.Minute)
	b.SMSAllow = nil
	for _, tk := range []*enroll.Token{a, b} {
		if err := e.CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.CreateToken(ctx, a); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("duplicate token: %v", err)
	}
	got, err := e.TokenByHash(ctx, "hash-a")
	if err != nil || got.ID != "a" || got.Site != postSite || !slices.Equal(got.SMSAllow, a.SMSAllow) || !got.CreatedAt.Equal(enrollAt) ||
		!got.ExpiresAt.Equal(a.ExpiresAt) || got.UsedAt != nil || got.RevokedAt != nil || got.Name != "pos a" {
		t.Errorf("token by hash %+v %v", got, err)
	}
	if _, err := e.TokenByHash(ctx, "nope"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("unknown hash: %v", err)
	}
	if _, err := e.Token(ctx, "nope"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("unknown token: %v", err)
	}
	ts, err := e.Tokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].ID != "b" || ts[1].ID != "a" || len(ts[0].SMSAllow) != 0 {
		t.Errorf("tokens %v %v, want newest first", ts, err)
	}
	if err := e.RevokeToken(ctx, "a", enrollAt.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Token(ctx, "a"); err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(enrollAt.Add(2*time.Minute)) {
		t.Errorf("revoked token %+v %v", got, err)
	}
	if err := e.RevokeToken(ctx, "nope", enrollAt); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("revoke unknown token: %v", err)
	}
}

func device(id, serial string) *enroll.Device {
	return &enroll.Device{ID: id, Name: "pos " + id, Site: postSite, Source: enroll.SourceEnrolled, State: enroll.StateActive,
		Hardware: enroll.Hardware{Board: "rpi-zero-2w", Serial: serial}, Firmware: "1.0.0", SMSAllow: []string{"+6281200000001"},
		CertSerial: "01", CertFingerprint: "f-" + id, CertNotAfter: enrollAt.Add(365 * 24 * time.Hour), KeyFingerprint: "k-" + id,
		CertPEM: "-----BEGIN CERTIFICATE-----", EnrolledAt: enrollAt, UpdatedAt: enrollAt}
}

func testEnrollDevices(t *testing.T, open EnrollOpener) {
	ctx := context.Background()
	e, closer := openEnroll(t, open)
	for _, id := range []string{"t1", "t2"} {
		if err := e.CreateToken(ctx, enrollToken(id)); err != nil {
			t.Fatal(err)
		}
	}
	d := device("kiosk-b", "0001")
	d.TokenID = "t1"
	ev := enroll.Event{At: enrollAt, Kind: enroll.EventEnrolled, Actor: "token:t1", Firmware: "1.0.0"}
	if err := e.SaveEnrollment(ctx, "t1", enrollAt, d, ev); err != nil {
		t.Fatal(err)
	}
	tk, err := e.Token(ctx, "t1")
	if err != nil || tk.UsedAt == nil || !tk.UsedAt.Equal(enrollAt) || tk.DeviceID != "kiosk-b" {
		t.Errorf("spent token %+v %v", tk, err)
	}
	// A retried enrollment of the same device may spend the token again; the first use stays.
	later := enrollAt.Add(time.Minute)
	d.CertSerial, d.UpdatedAt = "02", later
	if err := e.SaveEnrollment(ctx, "t1", later, d, enroll.Event{At: later, Kind: enroll.EventReissued, Actor: "token:t1"}); err != nil {
		t.Fatalf("retried enrollment: %v", err)
	}
	if tk, _ := e.Token(ctx, "t1"); tk == nil || !tk.UsedAt.Equal(enrollAt) {
		t.Errorf("token after retry %+v: want its first use kept", tk)
	}
	other := device("kiosk-a", "0002")
	if err := e.SaveEnrollment(ctx, "t1", later, other, ev); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("token used by another device: %v, want conflict", err)
	}
	if _, err := e.Device(ctx, "kiosk-a"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("device of a refused enrollment: %v, want not found", err)
	}
	sameBoard := device("kiosk-c", "0001")
	if err := e.SaveEnrollment(ctx, "t2", later, sameBoard, ev); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("second device on one board: %v, want conflict", err)
	}
	if tk, _ := e.Token(ctx, "t2"); tk == nil || tk.UsedAt != nil || tk.DeviceID != "" {
		t.Errorf("token of a refused enrollment %+v: want unspent", tk)
	}
	if err := e.SaveEnrollment(ctx, "t2", later, other, ev); err != nil {
		t.Fatal(err)
	}

	got, err := e.Device(ctx, "kiosk-b")
	if err != nil || got.CertSerial != "02" || got.Site != postSite || got.Hardware != d.Hardware || !got.EnrolledAt.Equal(enrollAt) ||
		!got.UpdatedAt.Equal(later) || !got.CertNotAfter.Equal(d.CertNotAfter) || got.LastSeen != nil || !slices.Equal(got.SMSAllow, d.SMSAllow) {
		t.Errorf("device %+v %v", got, err)
	}
	if len(got.History) != 2 || got.History[0].Kind != enroll.EventEnrolled || got.History[1].Kind != enroll.EventReissued ||
		!got.History[0].At.Equal(enrollAt) || got.History[0].Firmware != "1.0.0" {
		t.Errorf("history %+v: want enrolled then reissued", got.History)
	}
	if byHW, err := e.DeviceByHardware(ctx, d.Hardware); err != nil || byHW.ID != "kiosk-b" || len(byHW.History) != 2 {
		t.Errorf("by hardware %+v %v", byHW, err)
	}
	if _, err := e.DeviceByHardware(ctx, enroll.Hardware{Board: "rpi-zero-2w", Serial: "9999"}); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("unknown hardware: %v", err)
	}

	got.State, got.ReprovisionAllowed = enroll.StateRevoked, true
	if err := e.UpdateDevice(ctx, got, enroll.Event{At: later, Kind: enroll.EventRevoked, Actor: "admin", Detail: "stolen"}); err != nil {
		t.Fatal(err)
	}
	if err := e.UpdateDevice(ctx, device("ghost", "0404"), ev); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("update unknown device: %v", err)
	}
	if err := e.TouchDevice(ctx, "kiosk-b", later.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.TouchDevice(ctx, "ghost", later); err != nil {
		t.Errorf("touch unknown device: %v, want it ignored", err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}

	e, _ = openEnroll(t, open)
	all, err := e.Devices(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "kiosk-a" || all[1].ID != "kiosk-b" {
		t.Fatalf("devices after reopen %+v %v, want by ID", all, err)
	}
	b := all[1]
	if b.State != enroll.StateRevoked || !b.ReprovisionAllowed || b.LastSeen == nil || !b.LastSeen.Equal(later.Add(time.Second)) ||
		len(b.History) != 3 || b.History[2].Detail != "stolen" {
		t.Errorf("device after reopen %+v", b)
	}
	if _, err := e.Device(ctx, "ghost"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("touched unknown device exists: %v", err)
	}
}
