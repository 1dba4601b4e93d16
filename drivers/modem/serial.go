package modem

import (
	"fmt"
	"io"

	"github.com/kentongan/kentongan/drivers/serialport"
)

// OpenFunc opens the modem's port. It is injectable so that tests can use pipes or ptys.
type OpenFunc func() (io.ReadWriteCloser, error)

// DefaultBaud is the rate every supported modem answers at: the SIM800L auto-bauds to it and
// the USB modems ignore it.
const DefaultBaud = 115200

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
		p, err := serialport.Open(device, baud)
		if err != nil {
			return nil, fmt.Errorf("open modem port: %w", err)
		}
		return p, nil
	}
}
