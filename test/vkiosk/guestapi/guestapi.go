// Package guestapi is the control protocol between the virtual kiosk's /init (package
// vkiosk/guestinit, inside the QEMU guest) and the host-side harness (package vkiosk): plain HTTP
// with JSON bodies on Port, which QEMU forwards from a host loopback port.
//
// Timing-sensitive work — a 50 ms brush, contact bounce, sampling an LED — is done inside the
// guest from one request, because the round trip through QEMU's user-mode network is neither
// short nor steady under TCG.
package guestapi

import (
	"fmt"
	"time"
)

// Port is the guest TCP port of the control server.
const Port = 8000

// Paths of the control server. Line offsets go in the query (?line=N).
const (
	// PathHealth answers Health once the chip is live and the network is up.
	PathHealth = "/health"
	// PathPull sets a line's simulated pull: POST with ?line=N&pull=pull-up|pull-down.
	PathPull = "/line/pull"
	// PathValue answers a line's current value ("0" or "1") as Value.
	PathValue = "/line/value"
	// PathSequence runs a Sequence on one line and answers SequenceResult.
	PathSequence = "/line/sequence"
	// PathSample samples a line's value for ?ms=N and answers Samples.
	PathSample = "/line/sample"
	// PathDaemonStart writes the request body as kentongand's config and starts it; answers
	// DaemonState. A running daemon is stopped first.
	PathDaemonStart = "/daemon/start"
	// PathDaemonStop stops kentongand (SIGTERM, then SIGKILL) and answers DaemonState.
	PathDaemonStop = "/daemon/stop"
	// PathDaemonState answers DaemonState.
	PathDaemonState = "/daemon/state"
	// PathSelfTest requests ?line=N through the GPIO character device (go-gpiocdev) as an
	// input with pull-up and both-edge events (and the kernel's debounce with
	// &debounce_ms=M), drives it through the simulator, releases it and answers SelfTest: the
	// kernel plumbing, without kentongand.
	PathSelfTest = "/selftest"
	// PathSerial opens a serial port of the guest raw at 115200 baud (?port=ttyS1), writes the
	// request body to it, reads until the answer contains ?until= or ?ms=N have passed, closes
	// it and answers SerialExchange: the serial plumbing, without kentongand. kentongand must not
	// have the port open meanwhile.
	PathSerial = "/serial/exchange"
	// PathPowerOff powers the guest off.
	PathPowerOff = "/poweroff"
)

// Pull values understood by gpio-sim's sim_gpioN/pull attribute. A kiosk button is a switch to
// ground on a line with pull-up: PullDown is the button pressed, PullUp released.
const (
	PullUp   = "pull-up"
	PullDown = "pull-down"
)

// Health describes the guest once it is ready.
type Health struct {
	Ready   bool   `json:"ready"`
	Kernel  string `json:"kernel"`   // uname release
	Chip    string `json:"chip"`     // GPIO character device name, e.g. gpiochip0
	DevName string `json:"dev_name"` // gpio-sim platform device, e.g. gpio-sim.0
	Lines   int    `json:"lines"`
	BootMS  int64  `json:"boot_ms"` // guest uptime when /init had the chip and network ready
	// Serial lists the 8250 ports that have a UART behind them, as the kernel found them.
	Serial []SerialPort `json:"serial,omitempty"`
}

// SerialPort is a serial port of the guest with a UART, from /proc/tty/driver/serial.
type SerialPort struct {
	Name string `json:"name"` // e.g. ttyS1
	UART string `json:"uart"` // e.g. 16550A
	Port string `json:"port"` // I/O port, e.g. 000002F8
	IRQ  int    `json:"irq"`
}

// Value is a line's current level.
type Value struct {
	Line  int  `json:"line"`
	Value bool `json:"value"`
}

// Step sets a line's pull and then waits.
type Step struct {
	Pull string `json:"pull"`
	MS   int    `json:"ms"`
}

// Sequence is run on one line, step after step, with the guest's own timers.
type Sequence struct {
	Line  int    `json:"line"`
	Steps []Step `json:"steps"`
}

// Validate checks a sequence before any step runs, so that a bad step does not leave a
// half-run sequence behind.
func (s Sequence) Validate(lines int) error {
	if s.Line < 0 || s.Line >= lines {
		return fmt.Errorf("line %d: the chip has lines 0..%d", s.Line, lines-1)
	}
	if len(s.Steps) == 0 {
		return fmt.Errorf("sequence on line %d has no steps", s.Line)
	}
	for i, st := range s.Steps {
		if st.Pull != PullUp && st.Pull != PullDown {
			return fmt.Errorf("step %d: pull %q is neither %q nor %q", i, st.Pull, PullUp, PullDown)
		}
		if st.MS < 0 || st.MS > 600_000 {
			return fmt.Errorf("step %d: ms %d out of range 0..600000", i, st.MS)
		}
	}
	return nil
}

// SequenceResult says how long each step actually lasted in the guest.
type SequenceResult struct {
	ActualMS []float64 `json:"actual_ms"`
}

// Change is a line value seen at At after the start of sampling.
type Change struct {
	At    time.Duration `json:"at_ns"`
	Value bool          `json:"value"`
}

// Samples is a line's value over a window: the value at the start and every change after it.
type Samples struct {
	Line     int           `json:"line"`
	Duration time.Duration `json:"duration_ns"`
	Reads    int           `json:"reads"` // how often the value was read: the resolution
	Initial  bool          `json:"initial"`
	Changes  []Change      `json:"changes"`
}

// DaemonState is kentongand's process state inside the guest.
type DaemonState struct {
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	Exit    string `json:"exit,omitempty"` // how the last run ended, e.g. "exit status 1"
}

// SelfTest is what the guest saw on a line requested through the character device.
type SelfTest struct {
	Chip  string   `json:"chip"`
	Line  int      `json:"line"`
	Name  string   `json:"name"`  // the line's name as the kernel reports it
	Edges []string `json:"edges"` // "falling" / "rising", in order
	// KernelTimestamps is true when every edge carried a non-zero kernel timestamp.
	KernelTimestamps bool `json:"kernel_timestamps"`
}

// SerialExchange is what a serial port of the guest answered to the bytes written to it.
type SerialExchange struct {
	Port  string `json:"port"`
	Wrote int    `json:"wrote"`
	Read  []byte `json:"read"`
	// Matched is true when Read contains the awaited text; false when the window ran out.
	Matched bool `json:"matched"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
