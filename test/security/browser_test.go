package security

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/test/chrome"
	"github.com/kentongan/kentongan/test/poll"
)

// tripwire runs in every document before the page's own scripts: an injected script that
// calls alert, prompt or confirm, or an injected handler that does, is counted.
const tripwire = `window.__xss = 0;
for (const f of ["alert", "prompt", "confirm"]) { window[f] = function () { window.__xss++; }; }`

// newChromium starts a headless chromium (see test/chrome) with the tripwire in every document.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	return chrome.New(t, chrome.Options{
		Timeout: wait,
		Start: []chromedp.Action[chromedp.Void]{
			chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
				_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: tripwire})
				return chromedp.Void{}, err
			}),
		},
	})
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	chrome.Do(t, ctx, wait, what, steps...)
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return chrome.Eval[T](t, ctx, wait, expr)
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
