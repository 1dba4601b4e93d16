// Package serialport opens a tty (a UART, a USB modem, a USB serial gadget, a pty in tests) with
// github.com/tarm/serial and gives it the semantics a protocol engine wants: reads block until
// data comes, and fail wrapping io.EOF once the device is gone or hung up, or after Close.
package serialport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
)

// ErrInvalid is returned for a missing device name or a bad baud rate.
var ErrInvalid = errors.New("serialport: invalid argument")

// readTimeout makes a read on the tty return now and then, so that Close, which cannot
// interrupt a blocking read on a tty, takes effect within this time.
const readTimeout = 200 * time.Millisecond

// hangupReads is how many reads in a row that return nothing at once (rather than after the
// read timeout) mean the tty was hung up: an unplugged USB device reads as empty forever.
const hangupReads = 5

// Open opens device at baud, 8N1.
func Open(device string, baud int) (io.ReadWriteCloser, error) {
	if device == "" {
		return nil, fmt.Errorf("open serial port: %w: no device given", ErrInvalid)
	}
	if baud <= 0 {
		return nil, fmt.Errorf("open serial port %s: %w: baud rate %d", device, ErrInvalid, baud)
	}
	p, err := serial.OpenPort(&serial.Config{Name: device, Baud: baud, ReadTimeout: readTimeout})
	if err != nil {
		return nil, fmt.Errorf("open serial port %s at %d baud: %w", device, baud, err)
	}
	return &port{port: p, device: device}, nil
}

// port turns the tty's ways of saying "nothing yet" and "gone" into blocking and io.EOF. With a
// read timeout, a read that times out returns no bytes, which os.File reports as io.EOF; a
// hung-up tty (USB unplugged) also reads nothing, but at once.
type port struct {
	port   *serial.Port
	device string
	closed atomic.Bool
}

func (s *port) Read(b []byte) (int, error) {
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
			return 0, fmt.Errorf("serial device %s gone: %w", s.device, io.EOF)
		}
		if time.Since(start) < readTimeout/4 {
			if fast++; fast >= hangupReads {
				return 0, fmt.Errorf("serial device %s hung up: %w", s.device, io.EOF)
			}
		} else {
			fast = 0
		}
	}
}

func (s *port) Write(b []byte) (int, error) { return s.port.Write(b) }

func (s *port) Close() error {
	s.closed.Store(true)
	return s.port.Close()
}
