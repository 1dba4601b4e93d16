package poll

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records a failure instead of ending the test, so that poll's own failures can be checked.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // like the real one, Fatalf does not return
}

func TestUntilReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(30 * time.Millisecond)
		n.Store(1)
	}()
	Until(t, 5*time.Second, "n to be set", func() (bool, string) { return n.Load() == 1, "" })
}

func TestUntilFailsNamingWhatAndLastDetail(t *testing.T) {
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				panic(r)
			}
		}()
		Until(f, 20*time.Millisecond, "the LED", func() (bool, string) { return false, "still pending" })
	}()
	if !strings.Contains(f.failed, "the LED") || !strings.Contains(f.failed, "still pending") {
		t.Fatalf("failure %q does not name what was awaited and the last detail", f.failed)
	}
	g := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		True(g, 10*time.Millisecond, "the queue", func() bool { return false })
	}()
	if !strings.Contains(g.failed, "the queue") || strings.Contains(g.failed, "last:") {
		t.Fatalf("failure %q", g.failed)
	}
}
