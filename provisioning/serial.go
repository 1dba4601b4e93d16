package provisioning

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
)

// DefaultBaud is the line's rate. The USB gadget ignores it; a USB-serial adapter on the UART
// must be set to it on both ends.
const DefaultBaud = 115200

// serialReadTimeout lets a blocked read notice Close, which cannot interrupt it on a tty.
const serialReadTimeout = 200 * time.Millisecond

// hangupReads is how many immediate empty reads in a row mean the other end hung up.
const hangupReads = 5

// OpenSerial opens a serial device (/dev/ttyGS0 on the kiosk, /dev/ttyACM0 on the laptop) at
// baud (DefaultBaud if 0), 8N1. Reads block until data comes; they fail, wrapping io.EOF, once
// the device is gone or hung up (the cable pulled), and after Close.
func OpenSerial(device string, baud int) (io.ReadWriteCloser, error) {
	if device == "" {
		return nil, errors.New("open serial port: no device given")
	}
	if baud == 0 {
		baud = DefaultBaud
	}
	if baud < 0 {
		return nil, fmt.Errorf("open serial port %s: bad baud rate %d", device, baud)
	}
	p, err := serial.OpenPort(&serial.Config{Name: device, Baud: baud, ReadTimeout: serialReadTimeout})
	if err != nil {
		return nil, fmt.Errorf("open serial port %s at %d baud: %w", device, baud, err)
	}
	return &serialPort{port: p, device: device}, nil
}

// serialPort turns a tty's ways of saying "nothing yet" (an empty read after the timeout) and
// "gone" (empty reads at once, or the device node vanishing) into blocking and io.EOF.
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
			return 0, err
		}
		if _, err := os.Stat(s.device); err != nil {
			return 0, fmt.Errorf("serial device %s gone: %w", s.device, io.EOF)
		}
		if time.Since(start) < serialReadTimeout/4 {
			if fast++; fast >= hangupReads {
				return 0, fmt.Errorf("serial device %s hung up: %w", s.device, io.EOF)
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
