package provisioning_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/provisioning"
	"github.com/kentongan/kentongan/provisioning/provtest"
)

// fakeDevice counts what it was asked to do.
type fakeDevice struct {
	mu       sync.Mutex
	calls    map[provisioning.Type]int
	install  provisioning.Install
	events   []provisioning.Event
	refuseIn error
}

func (d *fakeDevice) count(t provisioning.Type) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls == nil {
		d.calls = map[provisioning.Type]int{}
	}
	d.calls[t]++
}

func (d *fakeDevice) n(t provisioning.Type) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[t]
}

func (d *fakeDevice) Hello(context.Context, provisioning.Hello) (provisioning.HelloReply, error) {
	d.count(provisioning.TypeHello)
	return provisioning.HelloReply{Hardware: provisioning.Hardware{Board: "Raspberry Pi 4 Model B Rev 1.4", Serial: "10000000abcdef01"},
		Firmware: "kentongand test", State: provisioning.StateBlank, FreeBytes: 1 << 30}, nil
}

func (d *fakeDevice) CSR(context.Context) (provisioning.CSRReply, error) {
	d.count(provisioning.TypeCSR)
	return provisioning.CSRReply{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...\n"}, nil
}

func (d *fakeDevice) Install(_ context.Context, in provisioning.Install) (provisioning.InstallReply, error) {
	d.count(provisioning.TypeInstall)
	if d.refuseIn != nil {
		return provisioning.InstallReply{}, d.refuseIn
	}
	d.mu.Lock()
	d.install = in
	d.mu.Unlock()
	return provisioning.InstallReply{}, nil
}

func (d *fakeDevice) SelfTest(context.Context, provisioning.SelfTest) error {
	d.count(provisioning.TypeSelfTest)
	d.mu.Lock()
	d.events = append(d.events, provisioning.Event{Step: provisioning.StepLEDs, Status: provisioning.StepOK})
	d.mu.Unlock()
	return nil
}

func (d *fakeDevice) Poll(_ context.Context, p provisioning.Poll) (provisioning.PollReply, error) {
	d.count(provisioning.TypePoll)
	d.mu.Lock()
	defer d.mu.Unlock()
	return provisioning.PollReply{Events: d.events[min(p.After, len(d.events)):], Done: true, Passed: true}, nil
}

func (d *fakeDevice) Bye(context.Context) error {
	d.count(provisioning.TypeBye)
	return nil
}

// session is a device serving over a pty cable, and a client at the laptop's end. tamper, if
// set, rewrites what the laptop writes; drop, if set, rewrites what the device answers.
type session struct {
	cable  *provtest.Cable
	dev    *fakeDevice
	client *provisioning.Client
	served chan error
}

type rewriter struct {
	w io.Writer
	f func(b []byte) []byte
}

func (r rewriter) Write(b []byte) (int, error) {
	if out := r.f(b); out != nil {
		if _, err := r.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func newSession(t *testing.T, dev *fakeDevice, tamper, drop func([]byte) []byte, opts ...provisioning.ClientOption) *session {
	t.Helper()
	cable, err := provtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cable.Pull)
	var devSide io.ReadWriter = cable.Device
	if drop != nil {
		devSide = struct {
			io.Reader
			io.Writer
		}{cable.Device, rewriter{cable.Device, drop}}
	}
	var laptop io.ReadWriter = cable.Laptop
	if tamper != nil {
		laptop = struct {
			io.Reader
			io.Writer
		}{cable.Laptop, rewriter{cable.Laptop, tamper}}
	}
	s := &session{cable: cable, dev: dev, served: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { s.served <- provisioning.Serve(ctx, devSide, dev, slog.New(slog.DiscardHandler)) }()
	opts = append([]provisioning.ClientOption{provisioning.WithTimeout(time.Second)}, opts...)
	s.client = provisioning.NewClient(laptop, opts...)
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSessionOverPty(t *testing.T) {
	dev := &fakeDevice{}
	s := newSession(t, dev, nil, nil)
	ctx := ctxT(t)
	hr, err := s.client.Hello(ctx, "kentonganctl test")
	if err != nil {
		t.Fatal(err)
	}
	if hr.Version != provisioning.Version || hr.Hardware.Serial != "10000000abcdef01" || hr.State != provisioning.StateBlank {
		t.Fatalf("hello reply: %+v", hr)
	}
	csr, err := s.client.CSR(ctx)
	if err != nil || !strings.Contains(csr.CSRPEM, "CERTIFICATE REQUEST") {
		t.Fatalf("csr: %+v, %v", csr, err)
	}
	// A large install, as a real certificate chain and config make one.
	in := provisioning.Install{DeviceID: "kiosk-0042", CertPEM: strings.Repeat("A", 20000), Buttons: []provisioning.Button{{Name: "darurat", Pin: 17}}}
	if _, err := s.client.Install(ctx, in); err != nil {
		t.Fatal(err)
	}
	if dev.install.DeviceID != "kiosk-0042" || len(dev.install.CertPEM) != 20000 || dev.install.Buttons[0].Pin != 17 {
		t.Fatalf("device got %+v", dev.install.Buttons)
	}
	if err := s.client.SelfTest(ctx, provisioning.SelfTest{}); err != nil {
		t.Fatal(err)
	}
	pr, err := s.client.Poll(ctx, 0)
	if err != nil || !pr.Done || len(pr.Events) != 1 {
		t.Fatalf("poll: %+v, %v", pr, err)
	}
	if err := s.client.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-s.served; err != nil {
		t.Fatalf("Serve after bye: %v", err)
	}
}

// TestLostAnswerNotRedone: an answer lost on the way back makes the laptop ask again; the
// device answers the repeat from memory and installs once.
func TestLostAnswerNotRedone(t *testing.T) {
	dev := &fakeDevice{}
	var mu sync.Mutex
	dropped := false
	drop := func(b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if !dropped && dev.n(provisioning.TypeInstall) == 1 {
			dropped = true
			return nil
		}
		return b
	}
	s := newSession(t, dev, nil, drop, provisioning.WithTimeout(300*time.Millisecond))
	ctx := ctxT(t)
	if _, err := s.client.Hello(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Install(ctx, provisioning.Install{DeviceID: "kiosk-1"}); err != nil {
		t.Fatal(err)
	}
	if !dropped {
		t.Fatal("the answer was never dropped: the test did not test")
	}
	if n := dev.n(provisioning.TypeInstall); n != 1 {
		t.Fatalf("installed %d times, want 1", n)
	}
}

// TestTamperedFrame: a request damaged on the way is refused with a NAK and sent again; the
// damaged one is never carried out.
func TestTamperedFrame(t *testing.T) {
	dev := &fakeDevice{}
	var mu sync.Mutex
	var tampered int
	tamper := func(b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if len(b) > 20 && bytes.Contains(b, []byte("kiosk-1")) && tampered == 0 {
			tampered++
			c := bytes.Clone(b)
			i := bytes.Index(c, []byte("kiosk-1"))
			c[i+6] = '2' // kiosk-1 becomes kiosk-2
			return c
		}
		return b
	}
	// A long timeout: the NAK, not the timer, must bring the second attempt.
	s := newSession(t, dev, tamper, nil, provisioning.WithTimeout(20*time.Second))
	ctx := ctxT(t)
	if _, err := s.client.Install(ctx, provisioning.Install{DeviceID: "kiosk-1"}); err != nil {
		t.Fatal(err)
	}
	if tampered != 1 {
		t.Fatal("nothing was tampered with")
	}
	if dev.install.DeviceID != "kiosk-1" || dev.n(provisioning.TypeInstall) != 1 {
		t.Fatalf("device installed %q %d times", dev.install.DeviceID, dev.n(provisioning.TypeInstall))
	}
}

func TestRefusal(t *testing.T) {
	dev := &fakeDevice{refuseIn: provisioning.Refuse(provisioning.CodeDiskFull, "no space left in /var/lib/kentongan")}
	s := newSession(t, dev, nil, nil)
	_, err := s.client.Install(ctxT(t), provisioning.Install{DeviceID: "kiosk-1"})
	var re *provisioning.RemoteError
	if !errors.As(err, &re) || re.Code != provisioning.CodeDiskFull || !errors.Is(err, provisioning.ErrRefused) {
		t.Fatalf("got %v, want a disk_full refusal", err)
	}
}

// TestVersionMismatch: a laptop that speaks only an older (or newer) protocol is told so,
// and the device does nothing else.
func TestVersionMismatch(t *testing.T) {
	dev := &fakeDevice{}
	s := newSession(t, dev, nil, nil)
	err := s.client.Call(ctxT(t), provisioning.TypeHello, provisioning.Hello{MinVersion: 0, MaxVersion: 0}, nil)
	var re *provisioning.RemoteError
	if !errors.As(err, &re) || re.Code != provisioning.CodeVersion || re.Min != provisioning.MinVersion || re.Max != provisioning.Version {
		t.Fatalf("got %v, want a version refusal naming the device's versions", err)
	}
	if dev.n(provisioning.TypeHello) != 0 {
		t.Fatal("the handler was asked despite the version mismatch")
	}
}

// TestGarbageLine: a line that carries only noise (a wrong baud rate) is reported as garbage,
// not as silence.
func TestGarbageLine(t *testing.T) {
	cable, err := provtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer cable.Pull()
	// The far end echoes noise for everything it hears, as a mismatched UART does.
	go func() {
		rng := rand.New(rand.NewPCG(3, 4))
		buf := make([]byte, 256)
		for {
			n, err := cable.Device.Read(buf)
			if err != nil {
				return
			}
			for i := range buf[:n] {
				buf[i] = byte(rng.UintN(256))
			}
			cable.Device.Write(buf[:n])
		}
	}()
	c := provisioning.NewClient(cable.Laptop, provisioning.WithTimeout(100*time.Millisecond), provisioning.WithAttempts(3))
	_, err = c.Hello(ctxT(t), "t")
	var le *provisioning.LineError
	if !errors.As(err, &le) || !errors.Is(err, provisioning.ErrGarbage) || le.Attempts != 3 || le.Received == 0 {
		t.Fatalf("got %v, want garbage after 3 attempts", err)
	}
}

func TestSilentLine(t *testing.T) {
	cable, err := provtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer cable.Pull()
	go io.Copy(io.Discard, cable.Device)
	c := provisioning.NewClient(cable.Laptop, provisioning.WithTimeout(50*time.Millisecond), provisioning.WithAttempts(2))
	if _, err := c.Hello(ctxT(t), "t"); !errors.Is(err, provisioning.ErrNoAnswer) {
		t.Fatalf("got %v, want no answer", err)
	}
}

// TestCablePulled: both sides see the line close, and say so.
func TestCablePulled(t *testing.T) {
	dev := &fakeDevice{}
	s := newSession(t, dev, nil, nil)
	ctx := ctxT(t)
	if _, err := s.client.Hello(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	s.cable.Pull()
	if _, err := s.client.CSR(ctx); !errors.Is(err, provisioning.ErrClosed) {
		t.Fatalf("laptop: got %v, want ErrClosed", err)
	}
	select {
	case err := <-s.served:
		if !errors.Is(err, provisioning.ErrClosed) {
			t.Fatalf("device: got %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after the cable was pulled")
	}
}
