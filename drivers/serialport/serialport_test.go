package serialport_test

import (
	"errors"
	"testing"

	"github.com/kentongan/kentongan/drivers/serialport"
)

// Bad arguments are refused before any device is touched, and a missing device names itself.
// The read semantics over a real pty are tested by the modem and provisioning packages, which
// open their lines through this one.
func TestOpenRefusesBadArguments(t *testing.T) {
	if _, err := serialport.Open("", 115200); !errors.Is(err, serialport.ErrInvalid) {
		t.Errorf("no device: %v, want ErrInvalid", err)
	}
	if _, err := serialport.Open("/dev/ttyUSB9", -1); !errors.Is(err, serialport.ErrInvalid) {
		t.Errorf("negative baud: %v, want ErrInvalid", err)
	}
	_, err := serialport.Open("/nonexistent/ttyX", 115200)
	if err == nil || errors.Is(err, serialport.ErrInvalid) {
		t.Fatalf("missing device: %v, want an open error", err)
	}
	if got := err.Error(); got != "open serial port /nonexistent/ttyX at 115200 baud: open /nonexistent/ttyX: no such file or directory" {
		t.Errorf("missing device: %q", got)
	}
}
