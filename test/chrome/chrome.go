// Package chrome starts Debian's chromium for the tests that drive a real browser (test/browser,
// test/security), so that finding or installing it, refusing to pass without it under CI, the
// flags this machine needs and the watch on the page's console are written once: a fix to how
// the browser starts reaches every browser test.
//
// Without chromium a test skips, saying how to install it; with CI=true it fails instead, so that
// a CI machine without the browser cannot pass by testing nothing. Run as root on a machine with
// apt-get, the first test installs it (KENTONGAN_NO_INSTALL=1 stops that), so that the README's
// one test command covers the browser tests on a fresh machine.
package chrome

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultPath is where Debian's chromium package puts the browser.
const DefaultPath = "/usr/bin/chromium"

// DefaultTimeout is how long New waits for the browser to start when Options.Timeout is zero. It
// is generous because CI machines are slow and loaded; it only matters when something is broken.
const DefaultTimeout = 30 * time.Second

// installOnce is process-wide because what it guards is: the machine's installed packages. One
// attempt per test binary, not one apt-get run per test when the install fails.
var installOnce sync.Once

// Path returns the browser's path, installing Debian's chromium first when it can, or skips tb
// (fails it under CI=true) when there is none.
func Path(tb testing.TB) string {
	tb.Helper()
	installOnce.Do(install)
	if _, err := os.Stat(DefaultPath); err == nil {
		return DefaultPath
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed; install it with: apt-get install -y chromium"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return p
}

// install installs Debian's chromium when it is missing and the tests run as root on a machine
// with apt-get. It reports on stderr rather than failing: Path then skips or fails the test with
// the usual message.
func install() {
	if _, err := os.Stat(DefaultPath); err == nil {
		return
	}
	if os.Geteuid() != 0 || os.Getenv("KENTONGAN_NO_INSTALL") != "" {
		return
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return
	}
	fmt.Fprintln(os.Stderr, "chrome: chromium missing; installing Debian's chromium with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "chromium", "fonts-dejavu-core"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "chrome: apt-get %v: %v\n", args, err)
			return
		}
	}
}

// Options are what a test adds to the browser New starts.
type Options struct {
	// Timeout is how long the browser may take to start; zero means DefaultTimeout.
	Timeout time.Duration
	// Flags are allocator options added to the ones every test needs, e.g. a window size.
	Flags []chromedp.ExecAllocatorOption
	// Start runs once the browser shows about:blank, before New returns: settings that must hold
	// for every page the test opens (a viewport, a script evaluated in every new document).
	Start []chromedp.Action[chromedp.Void]
}

// New starts a headless chromium with a fresh profile and returns a tab's context; the browser is
// closed when tb ends. At tb's end, any script exception and any content-security-policy refusal
// the browser's console saw fail tb (see watchConsole).
//
// Every host but this machine resolves to nothing, so that a test never reaches the internet (the
// map's tile server, or an address an injected script names) and works offline.
func New(tb testing.TB, o Options) context.Context {
	tb.Helper()
	path := Path(tb)
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs the tests as root, where chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(tb.TempDir()),
	}
	opts = append(opts, o.Flags...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so that a broken install fails here clearly. Not with a deadline:
	// the first run's context owns the browser, which would die with it.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, append([]chromedp.Action[chromedp.Void]{chromedp.Navigate("about:blank")}, o.Start...)...)
	}()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("start chromium (%s): %v", path, err)
		}
	case <-time.After(timeout):
		tb.Fatalf("chromium (%s) did not start within %v", path, timeout)
	}
	watchConsole(tb, ctx)
	return ctx
}

// watchConsole fails tb, at its end, for any script exception in the page and any
// content-security-policy refusal: both mean part of a page does not work in a real browser (or
// that an injected script got as far as the policy), which a test of the server alone cannot see.
// Failed loads (the map's tiles, which cannot resolve here) are expected and ignored.
func watchConsole(tb testing.TB, ctx context.Context) *console {
	c := &console{}
	done := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
				c.mu.Lock()
				c.bad = append(c.bad, fmt.Sprintf("%s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				c.mu.Unlock()
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		for _, b := range c.seen() {
			tb.Errorf("browser console: %s", b)
		}
	})
	return c
}

// console is what watchConsole has seen so far.
type console struct {
	mu  sync.Mutex
	bad []string
}

func (c *console) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}

// Do runs browser steps within timeout, failing tb with what they were for when they fail.
func Do(tb testing.TB, ctx context.Context, timeout time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page within timeout.
func Eval[T any](tb testing.TB, ctx context.Context, timeout time.Duration, expr string) T {
	tb.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}
