//go:build linux

package gpiocdev_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiocdev"
	"github.com/kentongan/kentongan/drivers/gpio/gpiocdev/simdev"
	"github.com/kentongan/kentongan/test/poll"
)

// The tests below run against the kernel's GPIO character device on chips made with gpio-sim.
// Debian's kernel has no gpio-sim, so they skip here; the virtual kiosk (test/vkiosk) runs them
// inside a guest that has it: build with `CGO_ENABLED=0 go test -c ./drivers/gpio/gpiocdev` and run
// the binary as root in the guest.

// wait bounds every wait for the kernel: generous, because a guest under TCG on a loaded host
// is slow; it only matters when something is broken.
const wait = 20 * time.Second

// pace separates steps whose order the test checks, so that the kernel has reported one edge
// before the next happens (it reads the level when it reports, so two changes inside one
// report would merge). It paces; nothing is asserted by it.
const pace = 100 * time.Millisecond

var devices atomic.Int32

func simChip(t *testing.T, lines int, names map[int]string) (*simdev.Device, *gpiocdev.Chip) {
	t.Helper()
	if err := simdev.Available(); err != nil {
		t.Skip(err)
	}
	dev, err := simdev.New(fmt.Sprintf("kt%d-%d", os.Getpid(), devices.Add(1)), lines, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dev.Close(); err != nil {
			t.Error(err)
		}
	})
	chip, err := gpiocdev.Open(dev.Chip(), gpiocdev.WithCheckInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := chip.Close(); err != nil {
			t.Error(err)
		}
	})
	return dev, chip
}

func nextEdge(t *testing.T, p gpio.PinIn) gpio.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	ev, err := p.WaitForEdge(ctx)
	if err != nil {
		t.Fatalf("waiting for an edge on %s: %v", p.Name(), err)
	}
	return ev
}

func pull(t *testing.T, dev *simdev.Device, offset int, l gpio.Level) {
	t.Helper()
	if err := dev.Pull(offset, l); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p gpio.PinIn) gpio.Level {
	t.Helper()
	v, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKernelButtonPressAndRelease(t *testing.T) {
	dev, chip := simChip(t, 8, nil)
	p, err := chip.OpenIn(3, gpio.WithPullUp, gpio.WithBothEdges)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != gpio.High {
		t.Fatalf("released button with pull-up reads %s", got)
	}
	if p.Name() != "GPIO3" {
		t.Fatalf("unnamed line's name %q, want GPIO3", p.Name())
	}

	before := time.Now()
	pull(t, dev, 3, gpio.Low)
	ev := nextEdge(t, p)
	after := time.Now()
	if ev.Level != gpio.Low {
		t.Fatalf("press edge to %s", ev.Level)
	}
	// The kernel's timestamp, put on our clock: between the press and its arrival (with room
	// for the two clocks being read a moment apart).
	if ev.Time.Before(before.Add(-time.Millisecond)) || ev.Time.After(after.Add(time.Millisecond)) {
		t.Fatalf("edge time %v not within [%v, %v]", ev.Time, before, after)
	}
	if got := read(t, p); got != gpio.Low {
		t.Fatalf("pressed button reads %s", got)
	}
	pull(t, dev, 3, gpio.High)
	if ev := nextEdge(t, p); ev.Level != gpio.High {
		t.Fatalf("release edge to %s", ev.Level)
	}
}

func TestKernelQueuesEdgesForABusyReader(t *testing.T) {
	dev, chip := simChip(t, 4, nil)
	p, err := chip.OpenIn(1, gpio.WithPullUp)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High} {
		pull(t, dev, 1, l)
		time.Sleep(pace)
	}
	var prev time.Time
	for i, want := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High} {
		ev := nextEdge(t, p)
		if ev.Level != want {
			t.Fatalf("edge %d to %s, want %s", i, ev.Level, want)
		}
		if ev.Time.Before(prev) {
			t.Fatalf("edge %d at %v is before the one before it (%v)", i, ev.Time, prev)
		}
		prev = ev.Time
	}
}

func TestKernelDebounceSwallowsBounce(t *testing.T) {
	dev, chip := simChip(t, 4, nil)
	const debounce = 300 * time.Millisecond
	p, err := chip.OpenIn(2, gpio.WithPullUp, gpio.WithDebounce(debounce))
	if err != nil {
		t.Fatal(err)
	}
	// A contact bouncing for a few milliseconds before it settles closed.
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		pull(t, dev, 2, l)
	}
	ev := nextEdge(t, p)
	if ev.Level != gpio.Low {
		t.Fatalf("first debounced edge to %s, want Low", ev.Level)
	}
	released := time.Now()
	pull(t, dev, 2, gpio.High)
	// Every edge of the bounce would have been queued before the release's: the next edge
	// must be the release, stamped after it.
	ev = nextEdge(t, p)
	if ev.Level != gpio.High || ev.Time.Before(released) {
		t.Fatalf("after the settled press came an edge to %s at %v (release at %v): the bounce leaked", ev.Level, ev.Time, released)
	}
}

func TestKernelActiveLow(t *testing.T) {
	dev, chip := simChip(t, 4, nil)
	in, err := chip.OpenIn(0, gpio.WithPullUp, gpio.WithActiveLow)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, in); got != gpio.Low {
		t.Fatalf("released active-low button reads %s, want Low", got)
	}
	pull(t, dev, 0, gpio.Low)
	if ev := nextEdge(t, in); ev.Level != gpio.High {
		t.Fatalf("pressing an active-low button gave an edge to %s, want High", ev.Level)
	}

	out, err := chip.OpenOut(1, gpio.WithActiveLow)
	if err != nil {
		t.Fatal(err)
	}
	wire := func() gpio.Level {
		v, err := dev.Value(1)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := wire(); got != gpio.High {
		t.Fatalf("active-low output, initially off: wire %s, want High", got)
	}
	if err := out.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if got := wire(); got != gpio.Low {
		t.Fatalf("active-low output on: wire %s, want Low", got)
	}
}

func TestKernelOutputIsDrivenLowOnClose(t *testing.T) {
	dev, chip := simChip(t, 4, nil)
	out, err := chip.OpenOut(2, gpio.WithInitial(gpio.High))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := dev.Value(2); v != gpio.High {
		t.Fatalf("initial High: wire %s", v)
	}
	if err := out.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if v, _ := dev.Value(2); v != gpio.Low {
		t.Fatalf("Out(Low): wire %s", v)
	}
	if err := out.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	// Chip.Close releases what is still open; the line is free for the next program.
	if err := chip.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Out(gpio.High); !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("Out after Close: %v, want ErrClosed", err)
	}
	again, err := gpiocdev.Open(dev.Chip())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	p, err := again.OpenIn(2)
	if err != nil {
		t.Fatalf("line not released by Close: %v", err)
	}
	p.Close()
}

func TestKernelBusyLineNamesItsHolder(t *testing.T) {
	_, chip := simChip(t, 4, nil)
	held, err := chip.OpenOut(1, gpio.WithConsumer("kentongand-status"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = chip.OpenIn(1, gpio.WithPullUp)
	if !errors.Is(err, gpio.ErrBusy) {
		t.Fatalf("second request: %v, want ErrBusy", err)
	}
	var le *gpio.LineError
	if !errors.As(err, &le) || le.Chip != chip.Name() || le.Offset != 1 || le.Line != "GPIO1" {
		t.Fatalf("error does not name chip and line: %#v", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), `in use by "kentongand-status"`) {
		t.Fatalf("error does not name the holder: %v", err)
	}
}

func TestKernelNoSuchLine(t *testing.T) {
	_, chip := simChip(t, 4, nil)
	_, err := chip.OpenIn(4)
	if !errors.Is(err, gpio.ErrNoLine) || !strings.Contains(err.Error(), "lines 0 to 3") {
		t.Fatalf("offset 4 of 4 lines: %v", err)
	}
	t.Log(err)
	_, err = chip.OpenOutByName("NO_SUCH_LINE")
	t.Log(err)
	if !errors.Is(err, gpio.ErrNoLine) || !strings.Contains(err.Error(), chip.Name()) {
		t.Fatalf("missing name: %v, want ErrNoLine naming the chips searched", err)
	}
}

func TestKernelLinesByNameOnAnyChip(t *testing.T) {
	_, chip := simChip(t, 4, map[int]string{2: "KT_LED"})
	other, _ := simChip(t, 8, map[int]string{5: "KT_BUTTON"})

	out, err := chip.OpenOutByName("KT_LED")
	if err != nil {
		t.Fatal(err)
	}
	if out.Name() != "KT_LED" {
		t.Fatalf("name %q", out.Name())
	}
	// A name on another chip is found there, as gpiofind does.
	in, err := chip.OpenInByName("KT_BUTTON", gpio.WithPullUp)
	if err != nil {
		t.Fatal(err)
	}
	pull(t, other, 5, gpio.Low)
	if ev := nextEdge(t, in); ev.Level != gpio.Low {
		t.Fatalf("edge to %s", ev.Level)
	}
	chip.Close()
	// Closing the chip released the line on the other chip too.
	p, err := gpiocdev.Open(other.Chip())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if l, err := p.OpenInByName("KT_BUTTON"); err != nil {
		t.Fatalf("line on the other chip not released: %v", err)
	} else {
		l.Close()
	}
}

func TestKernelWaitEndsWithContextAndClose(t *testing.T) {
	_, chip := simChip(t, 2, nil)
	p, err := chip.OpenIn(0, gpio.WithPullUp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.WaitForEdge(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := p.WaitForEdge(t.Context())
		errc <- err
	}()
	p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, gpio.ErrClosed) {
			t.Fatalf("wait during Close: %v, want ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("WaitForEdge did not return after Close")
	}
}

func TestKernelChipVanishingIsAnError(t *testing.T) {
	dev, chip := simChip(t, 4, nil)
	in, err := chip.OpenIn(0, gpio.WithPullUp)
	if err != nil {
		t.Fatal(err)
	}
	out, err := chip.OpenOut(1)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := in.WaitForEdge(t.Context())
		errc <- err
	}()
	if err := dev.Remove(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Log(err)
		if !errors.Is(err, gpio.ErrNoChip) || !strings.Contains(err.Error(), chip.Name()) {
			t.Fatalf("wait on a vanished chip: %v, want ErrNoChip naming the chip", err)
		}
	case <-time.After(wait):
		t.Fatal("WaitForEdge did not notice that its chip went away")
	}
	if _, err := in.Read(); !errors.Is(err, gpio.ErrNoChip) {
		t.Fatalf("read on a vanished chip: %v", err)
	}
	if err := out.Out(gpio.High); !errors.Is(err, gpio.ErrNoChip) {
		t.Fatalf("set on a vanished chip: %v", err)
	}
	// Closing what is left must not hang or panic.
	in.Close()
	out.Close()
}

// TestKernelPermissionDenied opens a chip as nobody, in a child process, and checks that the
// error tells the technician what to do.
func TestKernelPermissionDenied(t *testing.T) {
	if chip := os.Getenv("GPIOCDEV_TEST_AS_NOBODY"); chip != "" {
		_, err := gpiocdev.Open(chip)
		fmt.Println(err)
		if !errors.Is(err, gpio.ErrPermission) {
			os.Exit(3)
		}
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to drop to nobody")
	}
	dev, _ := simChip(t, 2, nil)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKernelPermissionDenied$")
	cmd.Env = append(os.Environ(), "GPIOCDEV_TEST_AS_NOBODY="+dev.Chip())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "open /dev/"+dev.Chip()+": gpio: permission denied for") || !strings.Contains(string(out), "usermod -aG") {
		t.Fatalf("error does not say what to do:\n%s", out)
	}
}

// TestKernelEdgesUnderReaderStall: edges that come while nobody waits are returned in order
// afterwards, even more than the kernel's own buffer holds; the newest always survives.
func TestKernelEdgesKeepTheNewestWhenFull(t *testing.T) {
	dev, chip := simChip(t, 2, nil)
	p, err := chip.OpenIn(0, gpio.WithPullUp)
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		pull(t, dev, 0, gpio.Low)
		pull(t, dev, 0, gpio.High)
	}
	// Whatever was dropped on the way, the last edge reported is the release, and the line
	// reads released.
	poll.True(t, wait, "the line to read High", func() bool { return read(t, p) == gpio.High })
	var last gpio.Event
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		ev, err := p.WaitForEdge(ctx)
		cancel()
		if err != nil {
			break
		}
		last = ev
	}
	if last.Level != gpio.High {
		t.Fatalf("last edge to %s, want High", last.Level)
	}
}
