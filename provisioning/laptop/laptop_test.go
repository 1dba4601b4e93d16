package laptop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/provisioning"
	"github.com/kentongan/kentongan/provisioning/laptop"
	"github.com/kentongan/kentongan/provisioning/provtest"
)

// device is a kiosk that answers everything, and refuses installs with installErr.
type device struct {
	installErr error
	installs   atomic.Int32
}

func (d *device) Hello(context.Context, provisioning.Hello) (provisioning.HelloReply, error) {
	return provisioning.HelloReply{Hardware: provisioning.Hardware{Board: "Pi", Serial: "1"}, State: provisioning.StateBlank}, nil
}
func (d *device) CSR(context.Context) (provisioning.CSRReply, error) {
	return provisioning.CSRReply{CSRPEM: "csr"}, nil
}
func (d *device) Install(context.Context, provisioning.Install) (provisioning.InstallReply, error) {
	d.installs.Add(1)
	return provisioning.InstallReply{}, d.installErr
}
func (d *device) SelfTest(context.Context, provisioning.SelfTest) error { return nil }
func (d *device) Poll(context.Context, provisioning.Poll) (provisioning.PollReply, error) {
	return provisioning.PollReply{Done: true, Passed: true}, nil
}
func (d *device) Bye(context.Context) error { return nil }

func cable(t *testing.T) *provtest.Cable {
	c, err := provtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Pull)
	return c
}

func serve(t *testing.T, c *provtest.Cable, d provisioning.Handler) {
	go provisioning.Serve(t.Context(), c.Device, d, slog.New(slog.DiscardHandler))
}

func hubAnswering(t *testing.T, status int, body any) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func run(t *testing.T, line io.ReadWriter, hub string) (string, error) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := laptop.Run(ctx, laptop.Options{Line: line, Port: "/dev/ttyACM0", Hub: hub, Token: "ktge_x", Out: &out,
		LineTimeout: 200 * time.Millisecond, Attempts: 2, PollInterval: 10 * time.Millisecond})
	return out.String(), err
}

func wantOut(t *testing.T, out string, err error, sentinel error, texts ...string) {
	t.Helper()
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("error %v, want %v", err, sentinel)
	}
	for _, s := range texts {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestGarbageOnTheLine(t *testing.T) {
	c := cable(t)
	go func() {
		rng := rand.New(rand.NewPCG(5, 6))
		buf := make([]byte, 256)
		for {
			n, err := c.Device.Read(buf)
			if err != nil {
				return
			}
			for i := range buf[:n] {
				buf[i] = byte(rng.UintN(256)) &^ 0x01 // never a start byte
			}
			c.Device.Write(buf[:n])
		}
	}()
	out, err := run(t, c.Laptop, "http://127.0.0.1:1")
	wantOut(t, out, err, provisioning.ErrGarbage, "data acak di kabel", "baud rate", "GAGAL / FAILED")
}

func TestOlderProtocol(t *testing.T) {
	c := cable(t)
	// A kiosk of a future protocol that no longer speaks version 1.
	go func() {
		r := provisioning.NewReader(c.Device)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			b, _ := json.Marshal(provisioning.ErrorReply{Code: provisioning.CodeVersion, Message: "speaks 2..3", Min: 2, Max: 3})
			provisioning.WriteFrame(c.Device, provisioning.Frame{Seq: f.Seq, Type: provisioning.TypeError, Payload: b})
		}
	}()
	out, err := run(t, c.Laptop, "http://127.0.0.1:1")
	var ve *provisioning.VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a version error", err)
	}
	wantOut(t, out, err, nil, "versi protokol tidak cocok", "update kentonganctl")
}

func TestHubUnreachable(t *testing.T) {
	c := cable(t)
	d := &device{}
	serve(t, c, d)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	out, err := run(t, c.Laptop, "http://"+addr)
	var he *laptop.HubError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want a hub error", err)
	}
	wantOut(t, out, err, nil, "hub tidak dapat dihubungi", "the kiosk was not changed")
	if d.installs.Load() != 0 {
		t.Fatal("the kiosk was asked to install without the hub's answer")
	}
}

func TestHubRefuses(t *testing.T) {
	c := cable(t)
	serve(t, c, &device{})
	var body enroll.ErrorBody
	body.Error.Code, body.Error.Reason, body.Error.Message = "unauthorized", enroll.ReasonTokenExpired, "token expired at 10:00"
	out, err := run(t, c.Laptop, hubAnswering(t, http.StatusUnauthorized, body))
	wantOut(t, out, err, enroll.ErrTokenExpired, "kedaluwarsa", "token expired at 10:00")
}

func TestDiskFull(t *testing.T) {
	c := cable(t)
	serve(t, c, &device{installErr: provisioning.Refuse(provisioning.CodeDiskFull, "no space in /var/lib/kentongan")})
	out, err := run(t, c.Laptop, hubAnswering(t, http.StatusOK, enroll.Response{DeviceID: "ciakar-rw03", CertPEM: "c", CAPEM: "a"}))
	wantOut(t, out, err, provisioning.ErrRefused, "penyimpanan kios penuh", "nothing was changed", "install       GAGAL/FAILED")
}

func TestAllPassed(t *testing.T) {
	c := cable(t)
	serve(t, c, &device{})
	out, err := run(t, c.Laptop, hubAnswering(t, http.StatusOK, enroll.Response{DeviceID: "ciakar-rw03"}))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantOut(t, out, err, nil, "SELESAI / DONE", "RINGKASAN / SUMMARY")
}
