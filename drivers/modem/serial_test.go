//go:build linux

package modem_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kentongan/kentongan/drivers/modem"
)

// openPTY returns the master side of a new pseudo-terminal and the path of its slave, which
// stands in for the modem's tty.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	// Opened non-blocking and wrapped with NewFile so that the runtime poller serves it and
	// Close interrupts a read in progress, as a vanished device would.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("pty number: %v", err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// answerOK answers every command line with OK, until the master is closed.
func answerOK(m *os.File) {
	r := bufio.NewReader(m)
	for {
		if _, err := r.ReadString('\r'); err != nil {
			return
		}
		if _, err := m.Write([]byte("\r\nOK\r\n")); err != nil {
			return
		}
	}
}

func TestSerialPortOverPTY(t *testing.T) {
	master, path := openPTY(t)
	defer master.Close()
	go answerOK(master)

	rw, err := modem.SerialOpener(path, 0)()
	if err != nil {
		t.Fatal(err)
	}
	at := modem.NewAT(rw, nil, testLogger(t))
	defer at.Close()
	ctx := context.Background()
	if _, err := at.Command(ctx, "AT", wait); err != nil {
		t.Fatal(err)
	}
	// Several read timeouts pass with nothing to read: that is not end-of-file.
	time.Sleep(time.Second)
	select {
	case <-at.Done():
		t.Fatalf("reader stopped on an idle port: %v", at.Err())
	default:
	}
	if _, err := at.Command(ctx, "AT+CSQ", wait); err != nil {
		t.Fatalf("command after idling: %v", err)
	}

	// The other end goes away, as an unplugged USB modem does.
	master.Close()
	select {
	case <-at.Done():
	case <-time.After(wait):
		t.Fatal("reader still running after the pty's master closed")
	}
	if _, err := at.Command(ctx, "AT", wait); !errors.Is(err, modem.ErrClosed) {
		t.Fatalf("command on a vanished port: %v, want ErrClosed", err)
	}
}

func TestSerialPortCloseStopsReader(t *testing.T) {
	master, path := openPTY(t)
	defer master.Close()
	rw, err := modem.SerialOpener(path, 115200)()
	if err != nil {
		t.Fatal(err)
	}
	at := modem.NewAT(rw, nil, testLogger(t))
	if err := at.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-at.Done():
	case <-time.After(wait):
		t.Fatal("reader still running after Close")
	}
}

func TestSerialOpenerErrors(t *testing.T) {
	if _, err := modem.SerialOpener("", 0)(); !errors.Is(err, modem.ErrInvalid) {
		t.Errorf("no device: %v, want ErrInvalid", err)
	}
	if _, err := modem.SerialOpener("/dev/ttyUSB2", -5)(); !errors.Is(err, modem.ErrInvalid) {
		t.Errorf("negative baud: %v, want ErrInvalid", err)
	}
	_, err := modem.SerialOpener("/nonexistent/ttyUSB9", 0)()
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ttyUSB9") {
		t.Errorf("missing device: %v, want an error naming it", err)
	}
}
