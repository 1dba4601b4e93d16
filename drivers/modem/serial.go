package modem

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
)

// OpenFunc opens the modem's port. It is injectable so that tests can use pipes or ptys.
type OpenFunc func() (io.ReadWriteCloser, error)

// DefaultBaud is the rate every supported modem answers at: the SIM800L auto-bauds to it and
// the USB modems ignore it.
const DefaultBaud = 115200

// serialReadTimeout makes a read on the port return now and then, so that Close, which cannot
// interrupt a blocking read on a tty, takes effect within this time.
const serialReadTimeout = 200 * time.Millisecond

// hangupReads is how many reads in a row that return nothing at once (rather than after the
// read timeout) mean the tty was hung up: an unplugged USB modem reads as empty forever.
const hangupReads = 5

// SerialOpener opens device (e.g. /dev/ttyUSB2) with tarm/serial at baud (DefaultBaud if 0),
// 8N1, with a read timeout so that reads return and Close takes effect. The port it returns
// reads end-of-file once the device is gone.
func SerialOpener(device string, baud int) OpenFunc {
	return func() (io.ReadWriteCloser, error) {
		if device == "" {
			return nil, fmt.Errorf("open modem port: %w: no device given", ErrInvalid)
		}
		if baud == 0 {
			baud = DefaultBaud
		}
		if baud < 0 {
			return nil, fmt.Errorf("open modem port %s: %w: baud rate %d", device, ErrInvalid, baud)
		}
		p, err := serial.OpenPort(&serial.Config{Name: device, Baud: baud, ReadTimeout: serialReadTimeout})
		if err != nil {
			return nil, fmt.Errorf("open modem port %s at %d baud: %w", device, baud, err)
		}
		return &serialPort{port: p, device: device}, nil
	}
}

// serialPort turns the tty's ways of saying "nothing yet" and "gone" into what the engine
// expects. With a read timeout, a read that times out returns no bytes, which os.File reports as
// io.EOF; a hung-up tty (USB unplugged) also reads nothing, but at once.
type serialPort struct {
	port   *serial.Port
	device string
	closed atomic.Bool
}

func (s *serialPort) Read(b []byte) (int, error) {
	fast := 0
	for {
		start := time.Now()
		n, err := s.port.Read(b)
		if n > 0 {
			return n, nil
		}
		if s.closed.Load() {
			return 0, os.ErrClosed
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err // EIO from a vanished USB device
		}
		if _, err := os.Stat(s.device); err != nil {
			return 0, fmt.Errorf("modem device %s gone: %w", s.device, io.EOF)
		}
		if time.Since(start) < serialReadTimeout/4 {
			if fast++; fast >= hangupReads {
				return 0, fmt.Errorf("modem device %s hung up: %w", s.device, io.EOF)
			}
		} else {
			fast = 0
		}
	}
}

func (s *serialPort) Write(b []byte) (int, error) { return s.port.Write(b) }

func (s *serialPort) Close() error {
	s.closed.Store(true)
	return s.port.Close()
}
