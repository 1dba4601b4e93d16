package vkiosk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

// Address of the host's loopback as the guest sees it through QEMU's user-mode networking.
const HostAddr = "10.0.2.2"

// ModemPort is the guest's serial port wired to Options.ModemPath: the second 8250 UART (COM2),
// the first being the console. ModemDevice is its device, for kentongand's modem.device.
const (
	ModemPort   = "ttyS1"
	ModemDevice = "/dev/" + ModemPort
)

// ErrExited is returned when QEMU exits while the harness waits for the guest.
var ErrExited = errors.New("vkiosk: QEMU exited")

// Options configure Boot.
type Options struct {
	Artefacts Artefacts
	Initramfs string // from BuildInitramfs
	// WorkDir receives the guest's console log (console.log); empty: a new temporary directory.
	WorkDir string
	// QEMU is the emulator binary (default qemu-system-x86_64 from $PATH).
	QEMU     string
	MemoryMB int // default 384
	CPUs     int // default 2
	// BootTimeout bounds the wait from starting QEMU to the guest's control server answering
	// (default 3 minutes: under TCG on a loaded machine the boot takes several times its usual
	// 5–10 s, and the timeout only matters when something is broken).
	BootTimeout time.Duration
	// ModemPath, when set, is a host serial device that QEMU connects to the guest's ModemPort:
	// the slave of a pty on whose master a simulated modem answers (modemtest.Sim's Path). It
	// must exist before Boot and stay for the guest's life; QEMU holds it open.
	ModemPath string
	Logger    *slog.Logger
}

// Guest is a running virtual kiosk.
type Guest struct {
	// Health is what the guest reported when it became ready.
	Health guestapi.Health
	// BootTime is from starting QEMU to the control server's first answer.
	BootTime time.Duration
	// Console is the path of the guest's console log: the kernel's messages, /init's and
	// kentongand's.
	Console string

	log    *slog.Logger
	cmd    *exec.Cmd
	exited chan struct{} // closed when QEMU has exited
	stderr *bytes.Buffer // QEMU's own complaints; read only after exited
	base   string        // control server, through QEMU's port forward
	client *http.Client

	closeOnce sync.Once
	closeErr  error
}

// Boot starts QEMU and waits until the guest's control server answers. On error the console
// log's tail is part of the message.
func Boot(ctx context.Context, o Options) (*Guest, error) {
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 384
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 3 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WorkDir == "" {
		d, err := os.MkdirTemp("", "vkiosk-")
		if err != nil {
			return nil, fmt.Errorf("boot virtual kiosk: %w", err)
		}
		o.WorkDir = d
	}
	if _, err := exec.LookPath(o.QEMU); err != nil {
		return nil, fmt.Errorf("boot virtual kiosk: %w (run test/vkiosk/build.sh)", err)
	}
	var lastErr error
	// The forwarded port is picked free and then handed to QEMU, so another process can take
	// it in between; QEMU then refuses to start and another port is tried.
	for attempt := 0; attempt < 3; attempt++ {
		g, err := boot(ctx, o)
		if err == nil {
			return g, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "host forwarding rule") {
			break
		}
	}
	return nil, lastErr
}

func boot(ctx context.Context, o Options) (*Guest, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("boot virtual kiosk: %w", err)
	}
	console := filepath.Join(o.WorkDir, "console.log")
	_ = os.Remove(console)
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max",
		"-smp", strconv.Itoa(o.CPUs), "-m", strconv.Itoa(o.MemoryMB),
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", "file:" + console,
		// A guest that reboots or panics ends QEMU instead of booting again.
		"-no-reboot",
		"-kernel", o.Artefacts.Kernel, "-initrd", o.Initramfs,
		"-append", "console=ttyS0 panic=-1 loglevel=4",
		"-netdev", fmt.Sprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-:%d", port, guestapi.Port),
		// romfile= leaves out the network boot ROM: the kernel is loaded directly.
		"-device", "e1000,netdev=net0,romfile=",
	}
	if o.ModemPath != "" {
		// The second -serial is COM2 (I/O 0x2f8, IRQ 3), which the kernel's 8250 driver finds
		// as ttyS1. QEMU's serial backend sets the host tty raw (OPOST off included) when it
		// opens it and again whenever the guest sets the line, so bytes pass unchanged both
		// ways. In QEMU's option syntax a comma in a value is written twice.
		args = append(args,
			"-chardev", "serial,id=modem,path="+strings.ReplaceAll(o.ModemPath, ",", ",,"),
			"-serial", "chardev:modem")
	}
	cmd := exec.Command(o.QEMU, args...)
	stderr := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.QEMU, err)
	}
	g := &Guest{
		Console: console,
		log:     o.Logger,
		cmd:     cmd,
		exited:  make(chan struct{}),
		stderr:  stderr,
		base:    "http://127.0.0.1:" + strconv.Itoa(port),
		client:  &http.Client{Timeout: 2 * time.Minute},
	}
	go func() {
		_ = cmd.Wait()
		close(g.exited)
	}()
	o.Logger.Info("virtual kiosk booting", "pid", cmd.Process.Pid, "control", g.base, "console", console)

	bootCtx, cancel := context.WithTimeout(ctx, o.BootTimeout)
	defer cancel()
	if err := g.waitHealth(bootCtx); err != nil {
		g.kill()
		return nil, fmt.Errorf("boot virtual kiosk: %w\n%s", err, g.Diagnostics(40))
	}
	g.BootTime = time.Since(start)
	o.Logger.Info("virtual kiosk ready", "boot", g.BootTime, "kernel", g.Health.Kernel, "chip", g.Health.Chip)
	return g, nil
}

func (g *Guest) waitHealth(ctx context.Context) error {
	probe := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.base+guestapi.PathHealth, nil)
		resp, err := probe.Do(req)
		if err == nil {
			var h guestapi.Health
			derr := json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && derr == nil && h.Ready {
				g.Health = h
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("%w before the guest was ready (%s)", ErrExited, g.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("guest not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Diagnostics is the QEMU error output, if QEMU has exited, and the last n lines of the
// console: what a failed test should print.
func (g *Guest) Diagnostics(n int) string {
	var b strings.Builder
	select {
	case <-g.exited:
		if s := strings.TrimSpace(g.stderr.String()); s != "" {
			fmt.Fprintf(&b, "QEMU (%s): %s\n", g.cmd.ProcessState, s)
		}
	default:
	}
	fmt.Fprintf(&b, "--- last %d lines of the guest console %s ---\n%s", n, g.Console, g.ConsoleTail(n))
	return b.String()
}

// ConsoleTail is the last n lines of the console log.
func (g *Guest) ConsoleTail(n int) string {
	data, err := os.ReadFile(g.Console)
	if err != nil {
		return fmt.Sprintf("(console log unreadable: %v)\n", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// Exited is closed when QEMU has exited.
func (g *Guest) Exited() <-chan struct{} { return g.exited }

// Close stops kentongand, powers the guest off and waits for QEMU, killing it if the guest does
// not go down in time.
func (g *Guest) Close() error {
	g.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := g.do(ctx, http.MethodPost, guestapi.PathPowerOff, nil, nil, nil); err != nil {
			g.log.Warn("power off request failed; killing QEMU", "err", err)
		}
		select {
		case <-g.exited:
		case <-time.After(30 * time.Second):
			g.kill()
			g.closeErr = errors.New("vkiosk: the guest did not power off within 30s; QEMU killed")
		}
	})
	return g.closeErr
}

func (g *Guest) kill() {
	_ = g.cmd.Process.Kill()
	<-g.exited
}

// ControlError is a non-2xx answer of the guest's control server.
type ControlError struct {
	Path    string
	Status  int
	Message string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("guest %s: %d: %s", e.Path, e.Status, e.Message)
}

func (g *Guest) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u := g.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("guest %s: %w", path, err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		select {
		case <-g.exited:
			return fmt.Errorf("guest %s: %w (%v)", path, ErrExited, err)
		default:
		}
		return fmt.Errorf("guest %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("guest %s: read answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e guestapi.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &ControlError{Path: path, Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("guest %s: decode %q: %w", path, data, err)
		}
	}
	return nil
}

func lineQuery(line int) url.Values { return url.Values{"line": {strconv.Itoa(line)}} }

// Pull sets a line's simulated pull (guestapi.PullUp or guestapi.PullDown). On a button line
// with the daemon's pull-up, PullDown is the button pressed.
func (g *Guest) Pull(ctx context.Context, line int, pull string) error {
	q := lineQuery(line)
	q.Set("pull", pull)
	return g.do(ctx, http.MethodPost, guestapi.PathPull, q, nil, nil)
}

// Value reads a line's current value; on an LED line, true is lit.
func (g *Guest) Value(ctx context.Context, line int) (bool, error) {
	var v guestapi.Value
	err := g.do(ctx, http.MethodGet, guestapi.PathValue, lineQuery(line), nil, &v)
	return v.Value, err
}

// Sequence runs steps on a line with the guest's timers and answers when they are done.
func (g *Guest) Sequence(ctx context.Context, line int, steps ...guestapi.Step) (guestapi.SequenceResult, error) {
	body, err := json.Marshal(guestapi.Sequence{Line: line, Steps: steps})
	if err != nil {
		return guestapi.SequenceResult{}, fmt.Errorf("encode sequence: %w", err)
	}
	var res guestapi.SequenceResult
	err = g.do(ctx, http.MethodPost, guestapi.PathSequence, nil, body, &res)
	return res, err
}

// Sample reads a line's value in the guest for d and returns its changes.
func (g *Guest) Sample(ctx context.Context, line int, d time.Duration) (guestapi.Samples, error) {
	q := lineQuery(line)
	q.Set("ms", strconv.FormatInt(d.Milliseconds(), 10))
	var s guestapi.Samples
	err := g.do(ctx, http.MethodGet, guestapi.PathSample, q, nil, &s)
	return s, err
}

// StartDaemon (re)starts kentongand with config (YAML) after releasing every simulated button.
func (g *Guest) StartDaemon(ctx context.Context, config []byte) (guestapi.DaemonState, error) {
	var st guestapi.DaemonState
	err := g.do(ctx, http.MethodPost, guestapi.PathDaemonStart, nil, config, &st)
	return st, err
}

// StopDaemon stops kentongand gracefully.
func (g *Guest) StopDaemon(ctx context.Context) (guestapi.DaemonState, error) {
	var st guestapi.DaemonState
	err := g.do(ctx, http.MethodPost, guestapi.PathDaemonStop, nil, nil, &st)
	return st, err
}

// DaemonState reports whether kentongand runs and how its last run ended.
func (g *Guest) DaemonState(ctx context.Context) (guestapi.DaemonState, error) {
	var st guestapi.DaemonState
	err := g.do(ctx, http.MethodGet, guestapi.PathDaemonState, nil, nil, &st)
	return st, err
}

// SelfTest drives a line through the GPIO character device in the guest, without kentongand,
// with the kernel's debounce when debounce > 0.
func (g *Guest) SelfTest(ctx context.Context, line int, debounce time.Duration) (guestapi.SelfTest, error) {
	q := lineQuery(line)
	if debounce > 0 {
		q.Set("debounce_ms", strconv.FormatInt(debounce.Milliseconds(), 10))
	}
	var st guestapi.SelfTest
	err := g.do(ctx, http.MethodPost, guestapi.PathSelfTest, q, nil, &st)
	return st, err
}

// SerialExchange writes out to a serial port of the guest (e.g. ModemPort), opened raw at
// 115200 baud, and reads what comes back until it contains until or window has passed; the
// port is closed afterwards. It is the serial plumbing without kentongand, which must not have
// the port open meanwhile.
func (g *Guest) SerialExchange(ctx context.Context, port string, out []byte, until string, window time.Duration) (guestapi.SerialExchange, error) {
	q := url.Values{"port": {port}, "ms": {strconv.FormatInt(window.Milliseconds(), 10)}}
	if until != "" {
		q.Set("until", until)
	}
	var res guestapi.SerialExchange
	err := g.do(ctx, http.MethodPost, guestapi.PathSerial, q, out, &res)
	return res, err
}

// SerialPort is the guest's port name (e.g. ModemPort) as the kernel found it at boot; false
// when QEMU gave that port no UART.
func (g *Guest) SerialPort(name string) (guestapi.SerialPort, bool) {
	for _, p := range g.Health.Serial {
		if p.Name == name {
			return p, true
		}
	}
	return guestapi.SerialPort{}, false
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port to forward: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
