package proc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failTail is how many of the last log lines a failure shows.
const failTail = 40

// Options shape how a process is started.
type Options struct {
	// Name names the process in failures and echoed lines; the binary's base name if empty.
	Name string
	// Echo copies each log line to the test binary's stderr as "[name] line", to watch a run.
	Echo bool
}

// Proc is a running binary whose log lines (stdout and stderr together) a test can wait for.
// It is killed when the test that started it ends.
type Proc struct {
	tb   testing.TB
	name string
	cmd  *exec.Cmd

	mu    sync.Mutex
	lines []string

	more chan struct{} // a new line came
	done chan struct{} // the process is gone and its log read to the end
	err  error         // cmd.Wait's, set before done closes
}

// Start starts bin with args, named after the binary.
func Start(tb testing.TB, bin string, args ...string) *Proc {
	tb.Helper()
	return StartWith(tb, Options{}, bin, args...)
}

// StartWith starts bin with args as o says. A binary that cannot be started fails tb.
func StartWith(tb testing.TB, o Options, bin string, args ...string) *Proc {
	tb.Helper()
	name := o.Name
	if name == "" {
		name = filepath.Base(bin)
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{tb: tb, name: name, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read(out, o.Echo)
	tb.Cleanup(p.Kill)
	return p
}

func (p *Proc) read(out io.Reader, echo bool) {
	defer close(p.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.add(sc.Text())
		if echo {
			fmt.Fprintf(os.Stderr, "[%s] %s\n", p.name, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		// A line too long to keep: note it, and keep draining so that the process never blocks
		// on a full pipe.
		p.add(fmt.Sprintf("proc: log no longer read: %v", err))
		io.Copy(io.Discard, out)
	}
	p.err = p.cmd.Wait()
}

func (p *Proc) add(line string) {
	p.mu.Lock()
	p.lines = append(p.lines, line)
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// Name is the process's name in failures.
func (p *Proc) Name() string { return p.name }

// Pid is the process's ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// WaitLine waits up to timeout for a log line matching re and returns the last submatch of the
// first such line (the whole match when re has no group). The process exiting first, or the
// timeout passing, fails the test with the end of the log.
func (p *Proc) WaitLine(re *regexp.Regexp, timeout time.Duration) string {
	p.tb.Helper()
	if re == nil {
		p.tb.Fatalf("%s: WaitLine with no pattern", p.name)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if m := p.Find(re); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-p.more:
		case <-time.After(50 * time.Millisecond):
		case <-p.done:
			// The last lines may have come with the exit.
			if m := p.Find(re); m != nil {
				return m[len(m)-1]
			}
			p.tb.Fatalf("%s exited (%v) before logging %s:\n%s", p.name, p.err, re, p.Tail(failTail))
		case <-deadline.C:
			p.tb.Fatalf("%s did not log %s within %v:\n%s", p.name, re, timeout, p.Tail(failTail))
		}
	}
}

// Find returns the submatches of re in the first log line so far that matches it, or nil.
func (p *Proc) Find(re *regexp.Regexp) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if m := re.FindStringSubmatch(l); m != nil {
			return m
		}
	}
	return nil
}

// Lines returns a copy of the log so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Tail returns the last n lines of the log so far, joined by newlines.
func (p *Proc) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-max(n, 0)):], "\n")
}

// Exited reports whether the process is gone.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to be gone and returns how it ended, as exec.Cmd.Wait does.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Kill sends SIGKILL, as a power cut, and waits for the process to be gone. Killing a process
// that is already gone does nothing.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL) // fails only when it has just exited
	}
	<-p.done
}

// Stop asks the process to shut down cleanly with SIGTERM and waits for it; one still running
// after timeout is an error of the test, and is killed.
func (p *Proc) Stop(timeout time.Duration) {
	p.tb.Helper()
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.tb.Errorf("%s did not stop on SIGTERM within %v; killed:\n%s", p.name, timeout, p.Tail(20))
		p.Kill()
	}
}
