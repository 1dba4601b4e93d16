// Package provtest is a USB cable for tests of provisioning: a pty pair whose ends stand for the
// kiosk's /dev/ttyGS0 and the laptop's /dev/ttyACM0, which a test can pull out.
package provtest

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/creack/pty"
	"github.com/kentongan/kentongan/drivers/serialport"
	"golang.org/x/sys/unix"
)

// Cable is a pty pair. Device is the slave, in raw mode as a serial line is; Laptop is the
// master. Both are pollable, so Pull wakes a reader blocked on either end.
type Cable struct {
	Device io.ReadWriteCloser
	Laptop io.ReadWriteCloser

	once   sync.Once
	master *os.File
	slave  *os.File
}

// New opens a cable; the caller must Pull it when done.
func New() (*Cable, error) {
	m, sl, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	// pty.Open leaves the master blocking (it calls Fd); a non-blocking duplicate goes through
	// the runtime poller, so closing it wakes a blocked Read.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		sl.Close()
		return nil, fmt.Errorf("duplicate pty master: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		sl.Close()
		return nil, fmt.Errorf("make pty master non-blocking: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := serialport.MakeRaw(sl); err != nil {
		master.Close()
		sl.Close()
		return nil, err
	}
	return &Cable{Device: sl, Laptop: master, master: master, slave: sl}, nil
}

// Pull closes both ends, as pulling the USB cable does: blocked reads on either end fail.
func (c *Cable) Pull() {
	c.once.Do(func() {
		c.master.Close()
		c.slave.Close()
	})
}
