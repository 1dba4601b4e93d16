package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// fakeTB records failures instead of ending the test, so that proc's own failures can be checked.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	fatal  string
	errors []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	panic(f) // like the real one, Fatalf does not return
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// fatalOf runs fn and returns the message it failed f with, or "" if it did not.
func fatalOf(f *fakeTB, fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			if r != f {
				panic(r)
			}
			msg = f.fatal
		}
	}()
	fn()
	return ""
}

func child(t *testing.T) string {
	t.Helper()
	return filepath.Join(Build(t, "./test/proc/testdata/child"), "child")
}

var reStarted = regexp.MustCompile(`msg="child started" pid=(\d+)`)

func TestBuildOncePerProcess(t *testing.T) {
	a := Build(t, "./test/proc/testdata/child")
	info, err := os.Stat(filepath.Join(a, "child"))
	if err != nil {
		t.Fatalf("no binary after Build: %v", err)
	}
	if b := Build(t, "./test/proc/testdata/child"); b != a {
		t.Fatalf("second Build gave %s, want the first's %s", b, a)
	}
	if again, err := os.Stat(filepath.Join(a, "child")); err != nil || !again.ModTime().Equal(info.ModTime()) {
		t.Fatalf("second Build rebuilt the binary (%v)", err)
	}
}

func TestBuildFailureFailsWithCompilerOutput(t *testing.T) {
	f := &fakeTB{TB: t}
	msg := fatalOf(f, func() { Build(f, "./test/proc/testdata/no-such-package") })
	if !strings.Contains(msg, "go build") || !strings.Contains(msg, "no-such-package") {
		t.Fatalf("Build of a missing package failed with %q; want the go build error naming it", msg)
	}
	msg = fatalOf(f, func() { Build(f) })
	if !strings.Contains(msg, "no packages") {
		t.Fatalf("Build of nothing failed with %q; want a clear refusal", msg)
	}
}

func TestWaitLineReturnsSubmatchFromEitherStream(t *testing.T) {
	p := Start(t, child(t), "serve")
	pid := p.WaitLine(reStarted, 30*time.Second)
	if pid != fmt.Sprint(p.Pid()) {
		t.Fatalf("WaitLine gave pid %q, want %d", pid, p.Pid())
	}
	if got := p.WaitLine(regexp.MustCompile(`on stdout`), 30*time.Second); got != "on stdout" {
		t.Fatalf("WaitLine without a group gave %q, want the whole match", got)
	}
	if p.Name() != "child" {
		t.Fatalf("Name() = %q, want the binary's base name", p.Name())
	}
	if p.Exited() {
		t.Fatal("Exited() true for a running process")
	}
}

func TestStopIsCleanExit(t *testing.T) {
	p := StartWith(t, Options{Name: "kiosk-a"}, child(t), "serve")
	p.WaitLine(reStarted, 30*time.Second)
	p.Stop(30 * time.Second)
	if err := p.Wait(); err != nil {
		t.Fatalf("after Stop, Wait() = %v; want a clean exit", err)
	}
	if !strings.Contains(p.Tail(1), "stopping cleanly") {
		t.Fatalf("last line %q; want the child's clean shutdown", p.Tail(1))
	}
	if n := len(p.Lines()); n != 3 {
		t.Fatalf("Lines() has %d lines, want 3:\n%s", n, p.Tail(10))
	}
	p.Stop(time.Second) // stopping a stopped process does nothing
	p.Kill()
}

func TestKillIsSIGKILL(t *testing.T) {
	p := Start(t, child(t), "ignore-term")
	p.WaitLine(reStarted, 30*time.Second)
	p.Kill()
	if !p.Exited() {
		t.Fatal("Exited() false after Kill")
	}
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("after Kill, Wait() = %v; want killed by a signal", err)
	}
	p.Kill() // killing a dead process does nothing
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	f := &fakeTB{TB: t}
	p := Start(f, child(t), "ignore-term")
	p.WaitLine(reStarted, 30*time.Second)
	p.Stop(500 * time.Millisecond)
	if !p.Exited() {
		t.Fatal("a process ignoring SIGTERM still runs after Stop")
	}
	if len(f.errors) != 1 || !strings.Contains(f.errors[0], "did not stop on SIGTERM") {
		t.Fatalf("Stop reported %q; want one error saying SIGTERM was ignored", f.errors)
	}
}

func TestWaitLineFailsOnExitWithTheLog(t *testing.T) {
	f := &fakeTB{TB: t}
	p := Start(f, child(t), "exit")
	msg := fatalOf(f, func() { p.WaitLine(regexp.MustCompile(`never logged`), 30*time.Second) })
	if !strings.Contains(msg, "exited") || !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "giving up") {
		t.Fatalf("WaitLine failed with %q; want the exit status and the log", msg)
	}
	// A line logged just before the exit is still found.
	if got := p.WaitLine(regexp.MustCompile(`msg="(giving up)"`), 30*time.Second); got != "giving up" {
		t.Fatalf("WaitLine after the exit gave %q", got)
	}
}

func TestWaitLineTimesOut(t *testing.T) {
	f := &fakeTB{TB: t}
	p := Start(f, child(t), "serve")
	msg := fatalOf(f, func() { p.WaitLine(regexp.MustCompile(`never logged`), 200*time.Millisecond) })
	if !strings.Contains(msg, "did not log") || !strings.Contains(msg, "never logged") {
		t.Fatalf("WaitLine failed with %q; want what it waited for", msg)
	}
	msg = fatalOf(f, func() { p.WaitLine(nil, time.Second) })
	if !strings.Contains(msg, "no pattern") {
		t.Fatalf("WaitLine(nil) failed with %q; want a clear refusal", msg)
	}
}

func TestStartOfMissingBinaryFails(t *testing.T) {
	f := &fakeTB{TB: t}
	msg := fatalOf(f, func() { Start(f, filepath.Join(t.TempDir(), "nothing")) })
	if !strings.Contains(msg, "start nothing") {
		t.Fatalf("Start of a missing binary failed with %q; want it named", msg)
	}
}

// A line longer than the reader keeps must not leave the process blocked on a full pipe.
func TestLongLineDoesNotBlockTheProcess(t *testing.T) {
	p := Start(t, child(t), "long-line")
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child still running after writing a long line; log:\n%s", p.Tail(3))
	}
	if !strings.Contains(p.Tail(1), "log no longer read") {
		t.Fatalf("last line %.200q; want a note that the log was cut", p.Tail(1))
	}
}

func TestRemoveStaleKeepsRecentAndOthers(t *testing.T) {
	tmp := t.TempDir()
	now := time.Now()
	for name, age := range map[string]time.Duration{
		dirPrefix + "old":    48 * time.Hour,
		dirPrefix + "recent": time.Hour,
		"someone-else-old":   48 * time.Hour,
	} {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	removeStale(tmp, now)
	for name, want := range map[string]bool{dirPrefix + "old": false, dirPrefix + "recent": true, "someone-else-old": true} {
		if _, err := os.Stat(filepath.Join(tmp, name)); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", name, err == nil, want)
		}
	}
}
