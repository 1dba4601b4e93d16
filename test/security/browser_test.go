package security

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/test/poll"
)

// tripwire runs in every document before the page's own scripts: an injected script that
// calls alert, prompt or confirm, or an injected handler that does, is counted.
const tripwire = `window.__xss = 0;
for (const f of ["alert", "prompt", "confirm"]) { window[f] = function () { window.__xss++; }; }`

// newChromium starts a headless chromium on a fresh profile; without one it skips, or fails
// with CI=true, so that CI cannot pass by testing nothing.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			msg := "chromium is not installed; install it with: apt-get install -y chromium"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		path = p
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()))
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, chromedp.Navigate("about:blank"),
			chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
				_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: tripwire})
				return chromedp.Void{}, err
			}))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium (%s): %v", path, err)
		}
	case <-time.After(wait):
		t.Fatalf("chromium (%s) did not start within %v", path, wait)
	}
	watchConsole(t, ctx)
	return ctx
}

// watchConsole fails the test for any script exception and any refusal by the page's content
// security policy: an injected script that the policy stopped is still an injection.
func watchConsole(t *testing.T, ctx context.Context) {
	var (
		mu   sync.Mutex
		bad  []string
		done = make(chan struct{})
	)
	cctx, cancel := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bad {
			t.Errorf("browser console: %s", b)
		}
	})
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestXSSInBrowser: SMS texts carrying markup, on the operator's queue (at page load and as a
// live event) and on the ticket page, in a real browser: no injected script runs, no injected
// element exists, and the text is visible literally.
func TestXSSInBrowser(t *testing.T) {
	ctx := newChromium(t)
	h := startHub(t, "pos-web")
	k := h.plainKiosk("pos-web")
	h.createUser("sec-op", account.RoleOperator, "", "kata sandi yang panjang sekali")
	first := smsTicket(t, k, xssProbes[0], "+6281300000000")

	run(t, ctx, "log in",
		chromedp.Navigate(h.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="name"]`), "sec-op"),
		chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), "kata sandi yang panjang sekali"),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#queue`)),
	)
	// The rest arrive while the queue is open: the live path renders them too.
	var made []webTicket
	for i, p := range xssProbes[1:] {
		made = append(made, smsTicket(t, k, p, fmt.Sprintf("+62813%07d", i+1)))
	}
	checkPage := func(what string, probes []string) {
		t.Helper()
		for _, p := range probes {
			poll.True(t, wait, what+": text "+p+" visible", func() bool {
				return evalJS[bool](t, ctx, fmt.Sprintf(`document.body.innerText.includes(%s)`, jsonQuote(p)))
			})
		}
		injected := evalJS[int](t, ctx, `document.querySelectorAll('img[src="x"], svg[onload], [onerror], [onload]').length +
			Array.from(document.scripts).filter(s => s.text.includes("alert(")).length`)
		if injected != 0 {
			t.Errorf("%s: %d injected elements in the DOM", what, injected)
		}
		if n := evalJS[int](t, ctx, `window.__xss`); n != 0 {
			t.Errorf("%s: an injected script ran %d times", what, n)
		}
	}
	// The queue shows no SMS text, only that the tickets are there; the ticket page shows it.
	poll.True(t, wait, "the live queue shows every ticket", func() bool {
		return evalJS[int](t, ctx, `document.querySelectorAll("#queue-rows tr").length`) == len(xssProbes)
	})
	checkPage("queue, live", nil)
	run(t, ctx, "reload the queue", chromedp.Navigate(h.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#queue`)))
	checkPage("queue, loaded", nil)
	for i, tk := range append([]webTicket{first}, made...) {
		run(t, ctx, "open a ticket", chromedp.Navigate(h.base+"/tickets/"+tk.id), chromedp.WaitReady(chromedp.CSS(`body`)))
		checkPage("ticket page "+tk.number, xssProbes[i:i+1])
	}
	// The tripwire itself works: a call to alert is counted.
	if n := evalJS[int](t, ctx, `(alert(0), window.__xss)`); n != 1 {
		t.Errorf("the tripwire counted %d calls of alert, want 1", n)
	}
}
