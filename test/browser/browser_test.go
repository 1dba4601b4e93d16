package browser

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/test/poll"
)

var ciakar = post{ID: "ciakar-rw03", Name: "Pos Ronda RW 03 Ciakar",
	Site: hub.Site{Kecamatan: "Panongan", Kelurahan: "Ciakar", RW: "03", RT: "01", Lat: -6.2745, Lon: 106.5223}}

// TestPanicAppearsLiveAndAcknowledgeReachesTheKiosk is the operator's path: log in, a resident
// presses the panic button while the queue is open, the ticket appears without a reload, the
// operator acknowledges it on the page, and the kiosk's LED shows it.
func TestPanicAppearsLiveAndAcknowledgeReachesTheKiosk(t *testing.T) {
	ctx := newBrowser(t)
	h := startHub(t, ciakar)
	h.addUser("siti", "Siti Rahmawati", account.RoleOperator, "", "kentongan-siti-112")
	k := startKiosk(t, kioskConfig(ciakar.ID, h.m.BrokerURL(), filepath.Join(t.TempDir(), "kiosk")))

	login(t, ctx, h.base, "siti", "kentongan-siti-112")
	waitLive(t, ctx)
	if n := eval[int](t, ctx, `document.querySelectorAll("#queue-rows tr[data-id]").length`); n != 0 {
		t.Fatalf("queue has %d tickets before any press", n)
	}
	// A mark on this page's window: a reload would lose it.
	eval[bool](t, ctx, `window.kentonganTestMark = true`)

	k.press("darurat")
	tk := h.waitTicket(ciakar.ID, 1)
	row := fmt.Sprintf(`#queue-rows tr[data-number=%q]`, tk.Number)
	do(t, ctx, "see the new ticket in the queue", chromedp.WaitVisible(chromedp.CSS(row)))
	if !eval[bool](t, ctx, `window.kentonganTestMark === true`) {
		t.Fatal("the page was reloaded to show the new ticket")
	}
	text := eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).innerText`, row))
	for _, want := range []string{"DARURAT", "baru", "Pos Ronda RW 03 Ciakar", "Triase 112"} {
		if !strings.Contains(text, want) {
			t.Errorf("queue row %q lacks %q", text, want)
		}
	}
	if eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).dataset.due || ""`, row+" .timer")) == "" {
		t.Error("the new emergency has no deadline timer")
	}
	if got := k.led(); got != "received" {
		t.Errorf("kiosk LED before the acknowledgement: %q, want received", got)
	}

	do(t, ctx, "acknowledge from the queue",
		chromedp.Click(chromedp.CSS(row+" button.ack")),
		chromedp.WaitVisible(chromedp.CSS(".flash.ok")),
	)
	poll.Until(t, wait, "the queue to show the ticket acknowledged", func() (bool, string) {
		s := eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, row))
		return strings.Contains(s, "ditanggapi"), s
	})
	poll.Until(t, wait, "the kiosk's LED to show acknowledged", func() (bool, string) {
		s := k.led()
		return s == "acknowledged", s
	})
	events, err := h.m.Service.Events(t.Context(), tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.To != hub.StatusAcknowledged || last.Actor != "siti" {
		t.Errorf("last event %+v, want an acknowledgement by siti", last)
	}

	// The ticket page shows the same, with its history.
	do(t, ctx, "open the ticket",
		chromedp.Navigate(h.base+"/tickets/"+tk.ID),
		chromedp.WaitVisible(chromedp.CSS("#history")),
	)
	hist := eval[string](t, ctx, `document.getElementById("history").innerText`)
	if !strings.Contains(hist, "siti") || !strings.Contains(hist, "baru → ditanggapi") {
		t.Errorf("history %q lacks the acknowledgement by siti", hist)
	}
}

// TestAgencyUserSeesOnlyTheirTickets: Damkar's staff see the fire, not the medical emergency
// routed to PSC 119, neither on the page nor through the API.
func TestAgencyUserSeesOnlyTheirTickets(t *testing.T) {
	ctx := newBrowser(t)
	h := startHub(t, ciakar)
	h.addUser("damkar-piket", "Piket Damkar", account.RoleAgency, "damkar", "kentongan-damkar-113")
	k := startKiosk(t, kioskConfig(ciakar.ID, h.m.BrokerURL(), filepath.Join(t.TempDir(), "kiosk")))

	k.press("kebakaran")
	fire := h.waitTicket(ciakar.ID, 1)
	k.press("medis")
	medical := h.waitTicket(ciakar.ID, 2)
	if fire.Agency != "damkar" || medical.Agency == "damkar" {
		t.Fatalf("routing: fire to %q, medical to %q; the test needs damkar and another", fire.Agency, medical.Agency)
	}

	login(t, ctx, h.base, "damkar-piket", "kentongan-damkar-113")
	do(t, ctx, "see Damkar's ticket", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-number=%q]`, fire.Number))))
	page := eval[string](t, ctx, `document.body.innerHTML`)
	if strings.Contains(page, medical.Number) || strings.Contains(page, medical.ID) {
		t.Errorf("Damkar's queue shows %s, routed to %s", medical.Number, medical.Agency)
	}
	if !strings.Contains(eval[string](t, ctx, `document.body.innerText`), "Tampilan instansi") {
		t.Error("no agency view banner")
	}

	// A live event for the other agency's ticket does not reach the page either.
	waitLive(t, ctx)
	k.press("medis")
	other := h.waitTicket(ciakar.ID, 3)
	k.press("kebakaran")
	own := h.waitTicket(ciakar.ID, 4)
	do(t, ctx, "see Damkar's new ticket live", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-number=%q]`, own.Number))))
	if strings.Contains(eval[string](t, ctx, `document.body.innerHTML`), other.Number) {
		t.Errorf("Damkar's live queue shows %s of %s", other.Number, other.Agency)
	}

	// The other agency's ticket, asked for directly: the page and the API refuse.
	for _, path := range []string{"/tickets/" + medical.ID, "/api/v1/tickets/" + medical.ID, "/api/v1/tickets/" + medical.Number} {
		if got := httpStatus(t, ctx, path); got != http.StatusForbidden {
			t.Errorf("GET %s as Damkar: %d, want 403", path, got)
		}
	}
	if got := httpStatus(t, ctx, "/api/v1/tickets/"+fire.ID); got != http.StatusOK {
		t.Errorf("GET Damkar's own ticket through the API: %d, want 200", got)
	}
	token, err := h.m.IssueToken(t.Context(), "damkar-api", account.RoleAgency, "damkar")
	if err != nil {
		t.Fatal(err)
	}
	if got := apiStatus(t, h.base+"/api/v1/tickets/"+medical.ID, token); got != http.StatusForbidden {
		t.Errorf("API token of Damkar reading PSC 119's ticket: %d, want 403", got)
	}
	do(t, ctx, "open the other agency's ticket",
		chromedp.Navigate(h.base+"/tickets/"+medical.ID),
		chromedp.WaitVisible(chromedp.CSS("section.error")),
	)
	if s := eval[string](t, ctx, `document.body.innerText`); strings.Contains(s, medical.Number) {
		t.Errorf("the refusal page names the ticket: %q", s)
	}
}
