package scaleout

import (
	"bufio"
	"fmt"
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

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// hubBinary builds kentongan-hub once per test run, as test/e2e does.
func hubBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "kentongan-scaleout-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir, "./cmd/kentongan-hub")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "kentongan-hub")
}

// proc is a running binary whose log lines the test can wait for.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []string
	done chan struct{}
}

func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
			if os.Getenv("SCALEOUT_LOG") != "" {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", name, sc.Text())
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.signal(syscall.SIGKILL) })
	return p
}

// find returns the last submatch of re's first match in the log so far, and whether it matched.
func (p *proc) find(re *regexp.Regexp) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		if m := re.FindStringSubmatch(l); m != nil {
			return m[len(m)-1], true
		}
	}
	return "", false
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs[max(0, len(p.logs)-30):], "\n")
}

// waitLog waits for re in the log; the process exiting first fails the test with its log.
func (p *proc) waitLog(re *regexp.Regexp, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s, ok := p.find(re); ok {
			return s
		}
		if p.exited() {
			p.t.Fatalf("%s exited before logging %v:\n%s", p.name, re, p.tail())
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not log %v within %v:\n%s", p.name, re, timeout, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig and, for SIGKILL, waits for the process to be gone.
func (p *proc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-p.done
	}
}
