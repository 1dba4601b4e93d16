// Package mosquittotest runs a private Mosquitto broker for a test: Debian's /usr/sbin/mosquitto
// with a generated configuration in a temporary directory, on a free 127.0.0.1 port, stopped
// when the test ends.
//
// The configuration is the one docs/scale-out.md recommends, so that tests exercise what
// production runs: Nagle off (set_tcp_nodelay; with it on, every QoS 1 round trip waits about
// 44 ms for a delayed ACK), no limit on in-flight or queued messages (Mosquitto's defaults of 20
// and 1000 drop QoS 1 messages to a slow subscriber), and persistence in the temporary directory
// so that Restart keeps sessions and queued messages.
//
// When mosquitto is not installed, Start fails the test if $CI is "true" and skips it otherwise.
package mosquittotest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DebianPath is where Debian's mosquitto package installs the broker.
const DebianPath = "/usr/sbin/mosquitto"

// startTimeout bounds how long the broker may take to listen; generous for loaded CI machines.
const startTimeout = 20 * time.Second

// ErrNotInstalled means no mosquitto binary was found.
var ErrNotInstalled = errors.New("mosquitto is not installed (apt-get install mosquitto)")

// Options configure a Broker. The zero value is an anonymous broker.
type Options struct {
	// PasswordFile is a mosquitto_passwd file; with it, anonymous clients are refused.
	PasswordFile string
	// ACLFile is a mosquitto acl_file; "" allows every client every topic.
	ACLFile string
	// Extra lines are appended to the generated configuration, for a test that needs a setting
	// of its own.
	Extra []string
	// Verbose logs every connection and message (log_type all) into the broker's log.
	Verbose bool
}

// Broker is a running mosquitto.
type Broker struct {
	tb   testing.TB
	bin  string
	dir  string
	conf string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the mosquitto executable: Debian's, or one on PATH.
func Binary() (string, error) {
	if _, err := os.Stat(DebianPath); err == nil {
		return DebianPath, nil
	}
	p, err := exec.LookPath("mosquitto")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Start runs a broker for tb and stops it at cleanup.
func Start(tb testing.TB, opts Options) *Broker {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true but %v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	b := &Broker{tb: tb, bin: bin, dir: tb.TempDir()}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	// A port freed just now may be taken by someone else before mosquitto binds it: retry.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("mosquittotest: %v", err)
		}
		b.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := os.WriteFile(b.conf, []byte(b.config(opts, port)), 0o600); err != nil {
			tb.Fatalf("mosquittotest: write config: %v", err)
		}
		if lastErr = b.start(); lastErr == nil {
			tb.Cleanup(b.stop)
			return b
		}
	}
	tb.Fatalf("mosquittotest: %v", lastErr)
	return nil
}

func (b *Broker) config(opts Options, port int) string {
	lines := []string{
		"listener " + strconv.Itoa(port) + " 127.0.0.1",
		"set_tcp_nodelay true",
		// 0 is "no limit": QoS 1 messages wait instead of being dropped.
		"max_inflight_messages 0",
		"max_queued_messages 0",
		"persistence true",
		"persistence_location " + b.dir + "/",
		// Save often, so that a Kill (SIGKILL) loses little of what a restart should find.
		"autosave_interval 1",
		"log_dest file " + filepath.Join(b.dir, "mosquitto.log"),
		"log_timestamp_format %Y-%m-%dT%H:%M:%S",
	}
	if os.Geteuid() == 0 {
		// As root, mosquitto drops to the "mosquitto" user, who cannot write the test's
		// temporary directory.
		lines = append(lines, "user root")
	}
	if opts.PasswordFile != "" {
		lines = append(lines, "allow_anonymous false", "password_file "+opts.PasswordFile)
	} else {
		lines = append(lines, "allow_anonymous true")
	}
	if opts.ACLFile != "" {
		lines = append(lines, "acl_file "+opts.ACLFile)
	}
	if opts.Verbose {
		lines = append(lines, "log_type all")
	}
	lines = append(lines, opts.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs the process and waits until it accepts connections or exits.
func (b *Broker) start() error {
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Dir = b.dir
	out, err := os.OpenFile(filepath.Join(b.dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open broker output: %w", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited at start-up: %s", b.logTail())
		default:
		}
		if time.Now().After(deadline) {
			b.kill()
			return fmt.Errorf("mosquitto not listening on %s after %v: %s", b.addr, startTimeout, b.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logTail is the end of the broker's own log and of its output, for failure messages.
func (b *Broker) logTail() string {
	var parts []string
	for _, f := range []string{"stderr.log", "mosquitto.log"} {
		data, err := os.ReadFile(filepath.Join(b.dir, f))
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		parts = append(parts, f+":\n"+string(data))
	}
	if len(parts) == 0 {
		return "(no output)"
	}
	return strings.Join(parts, "\n")
}

// Log is the broker's log so far.
func (b *Broker) Log() string {
	data, _ := os.ReadFile(filepath.Join(b.dir, "mosquitto.log"))
	return string(data)
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as an MQTT URL (tcp://127.0.0.1:port).
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Dir is the broker's directory: configuration, persistence file and log.
func (b *Broker) Dir() string { return b.dir }

// Kill stops the broker with SIGKILL, as a crash would: what it had not saved is lost.
func (b *Broker) Kill() {
	b.tb.Helper()
	b.kill()
}

func (b *Broker) kill() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the broker gracefully (SIGTERM: it saves its database) if it is running, and
// starts it again on the same port, with the sessions and messages it saved.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.stopGracefully()
	var err error
	// The old socket may linger for a moment; mosquitto sets SO_REUSEADDR, so retries are brief.
	for range 20 {
		if err = b.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.tb.Fatalf("mosquittotest: restart: %v", err)
}

func (b *Broker) stopGracefully() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (b *Broker) stop() { b.stopGracefully() }
