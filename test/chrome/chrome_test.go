package chrome

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kentongan/kentongan/test/poll"
)

const wait = 30 * time.Second

// serve serves one HTML page on this machine, the only host the browser can reach.
func serve(t *testing.T, html string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, html)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// TestNewRunsStartAndPages: the browser starts, Options.Start holds for the pages opened later,
// Options.Flags reach the browser, and Do and Eval drive a page.
func TestNewRunsStartAndPages(t *testing.T) {
	ctx := New(t, Options{
		Flags: []chromedp.ExecAllocatorOption{chromedp.Flag("user-agent", "kentongan-test")},
		Start: []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(640, 480)},
	})
	url := serve(t, `<!doctype html><title>t</title><p id="p">halo</p>`)
	Do(t, ctx, wait, "open the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#p`)))
	if got := Eval[string](t, ctx, wait, `document.getElementById("p").textContent`); got != "halo" {
		t.Errorf("text = %q, want halo", got)
	}
	if got := Eval[int](t, ctx, wait, `window.innerWidth`); got != 640 {
		t.Errorf("viewport width = %d, want the 640 that Start set", got)
	}
	if got := Eval[string](t, ctx, wait, `navigator.userAgent`); got != "kentongan-test" {
		t.Errorf("user agent = %q, want the one Flags set", got)
	}
}

// recorder is a testing.TB that keeps what Errorf reports instead of failing, so that a test can
// see that the browser's console fails the test using it.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestConsoleExceptionFailsTest: a script exception in the page fails the test at its end, naming
// the exception.
func TestConsoleExceptionFailsTest(t *testing.T) {
	rec := &recorder{}
	t.Run("page", func(t *testing.T) {
		rec.TB = t
		ctx := New(rec, Options{})
		// A second watch on the same tab, whose findings the test can poll: it reports like the
		// one New started, and waiting for it means the exception has reached the watchers.
		w := watchConsole(rec, ctx)
		url := serve(t, `<!doctype html><title>t</title><script>throw new Error("kentongan-boom")</script>`)
		Do(rec, ctx, wait, "open the page", chromedp.Navigate(url))
		poll.True(t, wait, "the watcher to see the exception", func() bool { return len(w.seen()) > 0 })
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errors) == 0 {
		t.Fatal("a script exception in the page did not fail the test")
	}
	for _, e := range rec.errors {
		if !strings.Contains(e, "kentongan-boom") {
			t.Errorf("reported %q, want the exception's message", e)
		}
	}
}
