package provisioning

import (
	"io"

	"github.com/kentongan/kentongan/drivers/serialport"
)

// DefaultBaud is the line's rate. The USB gadget ignores it; a USB-serial adapter on the UART
// must be set to it on both ends.
const DefaultBaud = 115200

// OpenSerial opens a serial device (/dev/ttyGS0 on the kiosk, /dev/ttyACM0 on the laptop) at
// baud (DefaultBaud if 0), 8N1. Reads block until data comes; they fail, wrapping io.EOF, once
// the device is gone or hung up (the cable pulled), and after Close.
func OpenSerial(device string, baud int) (io.ReadWriteCloser, error) {
	if baud == 0 {
		baud = DefaultBaud
	}
	return serialport.Open(device, baud)
}
